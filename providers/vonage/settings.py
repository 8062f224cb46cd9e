"""Vonage's settings (CLARION_VONAGE_*): SMS over the SMS API, a second SMS provider."""

from typing import ClassVar

from pydantic import BaseModel


class VonageSettings(BaseModel):
    vonage_api_base: str = "http://127.0.0.1:4010"
    vonage_api_key: str = "sandboxkey"
    vonage_api_secret: str = "sandbox-vonage-secret"
    # Signs delivery receipts (the dashboard's "signature secret" and method).
    vonage_signature_secret: str = "sandbox-vonage-signature-secret"
    vonage_signature_method: str = "sha256"
    vonage_from_number: str = "+15005550006"

    # Whose sandbox defaults are public: refused with the sandbox off, but
    # only when a channel's provider list names vonage.
    sandbox_secrets: ClassVar[tuple[str, ...]] = ("vonage_api_secret", "vonage_signature_secret")
    provider_name: ClassVar[str] = "vonage"
