"""Email's settings: SMTP submission, and Mailgun-format event webhooks."""

from typing import ClassVar

from pydantic import BaseModel


class MailgunSettings(BaseModel):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    email_from: str = "Clarion <notifications@clarion.local>"
    # Key that signs Mailgun-format email event webhooks.
    mailgun_signing_key: str = "sandbox-mailgun-key"

    # Whose sandbox defaults are public: refused with the sandbox off.
    sandbox_secrets: ClassVar[tuple[str, ...]] = ("mailgun_signing_key",)
