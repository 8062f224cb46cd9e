"""Every provider's settings, composed: server.settings.Settings inherits
these, so each keeps its flat CLARION_* variable name."""

from pydantic import BaseModel, Field

from providers.mailgun.settings import MailgunSettings
from providers.sendgrid.settings import SendGridSettings
from providers.slack.settings import SlackSettings
from providers.twilio.settings import TwilioSettings
from providers.vonage.settings import VonageSettings
from providers.whatsapp.settings import WhatsAppSettings

PROVIDER_SETTINGS: tuple[type[BaseModel], ...] = (
    MailgunSettings,
    TwilioSettings,
    SlackSettings,
    WhatsAppSettings,
    VonageSettings,
    SendGridSettings,
)
# Which providers can carry each channel that has more than one; the others
# have one each (providers/registry.py).
CHANNEL_PROVIDERS = {"sms": ("twilio", "vonage"), "email": ("smtp", "sendgrid")}


class ProviderSettings(
    MailgunSettings,
    TwilioSettings,
    SlackSettings,
    WhatsAppSettings,
    VonageSettings,
    SendGridSettings,
):
    # Providers per channel, comma-separated in failover order; a delivery
    # moves to the next after a transient failure, never after a permanent one.
    sms_providers: str = "twilio"
    email_providers: str = "smtp"
    # A provider's circuit breaker opens after this many consecutive transient
    # failures (any worker's) and is probed again after the cool-down.
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0)

    # Base URL that providers use to reach the webhook Envoy's /callbacks
    # routes; signatures are computed over it, so it must be the URL the
    # provider was given.
    webhook_base_url: str = "http://127.0.0.1:8081"

    def sandbox_secrets_left(self) -> list[str]:
        """The secrets still at their public sandbox defaults, by field name;
        a second provider's only when a channel's provider list names it."""
        in_use = {p for channel in CHANNEL_PROVIDERS for p in self.provider_chain(channel)}
        return [
            name
            for model in PROVIDER_SETTINGS
            if getattr(model, "provider_name", None) in (None, *in_use)
            for name in getattr(model, "sandbox_secrets", ())
            if getattr(self, name) == type(self).model_fields[name].default
        ]

    def provider_chain(self, channel: str) -> list[str]:
        """The channel's providers in failover order (CLARION_SMS_PROVIDERS,
        CLARION_EMAIL_PROVIDERS); other channels have one provider each."""
        known = CHANNEL_PROVIDERS[channel]
        variable = f"CLARION_{channel.upper()}_PROVIDERS"
        given = getattr(self, f"{channel}_providers")
        chain = [p.strip() for p in given.split(",") if p.strip()]
        unknown = [p for p in chain if p not in known]
        if unknown or not chain or len(set(chain)) != len(chain):
            raise SystemExit(
                f"clarion: {variable} must list each of {', '.join(known)} at most once, "
                f"in failover order (got {given!r})"
            )
        return chain
