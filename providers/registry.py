"""Every provider Clarion speaks. Adding one touches its folder, this file
and the sandbox: nothing in server/ or workflows/ names a provider."""

from providers.base import WebhookHandler
from providers.mailgun import webhooks as mailgun
from providers.settings import ProviderSettings
from providers.twilio import webhooks as twilio
from providers.whatsapp import webhooks as whatsapp


def webhook_handlers(settings: ProviderSettings) -> dict[str, WebhookHandler]:
    """Each callback route (`/callbacks/{route}`) and its handler."""
    return {
        twilio.ROUTE: twilio.TwilioWebhooks(
            auth_token=settings.twilio_auth_token, webhook_base_url=settings.webhook_base_url
        ),
        mailgun.ROUTE: mailgun.MailgunWebhooks(signing_key=settings.mailgun_signing_key),
        whatsapp.ROUTE: whatsapp.WhatsAppWebhooks(
            app_secret=settings.meta_app_secret, verify_token=settings.meta_verify_token
        ),
    }
