"""Twilio's settings (CLARION_TWILIO_*): SMS over the Messages API, voice over Calls."""

from typing import ClassVar

from pydantic import BaseModel


class TwilioSettings(BaseModel):
    twilio_api_base: str = "http://127.0.0.1:4010"
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    # Also signs status callbacks (X-Twilio-Signature).
    twilio_auth_token: str = "sandbox-twilio-token"
    twilio_from_number: str = "+15005550006"

    # Whose sandbox defaults are public: refused with the sandbox off.
    sandbox_secrets: ClassVar[tuple[str, ...]] = ("twilio_auth_token",)
