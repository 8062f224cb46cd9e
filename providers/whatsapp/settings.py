"""WhatsApp's settings: Meta's Cloud API (Graph API) and its webhooks."""

from typing import ClassVar

from pydantic import BaseModel


class WhatsAppSettings(BaseModel):
    meta_api_base: str = "http://127.0.0.1:4010"
    meta_api_version: str = "v21.0"
    meta_access_token: str = "sandbox-meta-token"
    # Signs status webhooks (X-Hub-Signature-256).
    meta_app_secret: str = "sandbox-meta-secret"
    # Echoed by the webhook subscription handshake (hub.verify_token).
    meta_verify_token: str = "sandbox-verify-token"
    whatsapp_phone_number_id: str = "100000000000002"
    whatsapp_business_account_id: str = "100000000000001"

    # Whose sandbox defaults are public: refused with the sandbox off.
    sandbox_secrets: ClassVar[tuple[str, ...]] = (
        "meta_access_token",
        "meta_app_secret",
        "meta_verify_token",
    )
