"""SendGrid's settings (CLARION_SENDGRID_*): email over v3 Mail Send, a second email provider."""

from typing import ClassVar

from pydantic import BaseModel


class SendGridSettings(BaseModel):
    sendgrid_api_base: str = "http://127.0.0.1:4010"
    sendgrid_api_key: str = "SG.sandbox-sendgrid-key"
    # The Event Webhook's verification key (base64 DER), from Mail Settings.
    sendgrid_webhook_public_key: str = (
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE47PbjeLl4/7v4q1gfiQCbpI9qtuPBycZSvYW1P7Q"
        "eGluG8YDUq8luU37TQBkFxYWIXK6psHK857iXWW/2vNUlA=="
    )

    # The sandbox's private key is public, so its public key verifies
    # forgeries: refused with the sandbox off when a channel uses sendgrid.
    sandbox_secrets: ClassVar[tuple[str, ...]] = ("sendgrid_api_key", "sendgrid_webhook_public_key")
    provider_name: ClassVar[str] = "sendgrid"
