"""Every provider's settings, composed: server.settings.Settings inherits
these, so each keeps its flat CLARION_* variable name."""

from pydantic import BaseModel

from providers.mailgun.settings import MailgunSettings
from providers.slack.settings import SlackSettings
from providers.twilio.settings import TwilioSettings
from providers.whatsapp.settings import WhatsAppSettings

PROVIDER_SETTINGS: tuple[type[BaseModel], ...] = (
    MailgunSettings,
    TwilioSettings,
    SlackSettings,
    WhatsAppSettings,
)


class ProviderSettings(MailgunSettings, TwilioSettings, SlackSettings, WhatsAppSettings):
    # Base URL that providers use to reach the webhook Envoy's /callbacks
    # routes; signatures are computed over it, so it must be the URL the
    # provider was given.
    webhook_base_url: str = "http://127.0.0.1:8081"

    def sandbox_secrets_left(self) -> list[str]:
        """The secrets still at their public sandbox defaults, by field name."""
        return [
            name
            for model in PROVIDER_SETTINGS
            for name in getattr(model, "sandbox_secrets", ())
            if getattr(self, name) == type(self).model_fields[name].default
        ]
