"""Every provider Clarion speaks. Adding one touches its folder, this file
and the sandbox: nothing in server/ or workflows/ names a provider."""

from contextlib import AsyncExitStack
from dataclasses import dataclass

from providers.base import Provider, WebhookHandler
from providers.mailgun import webhooks as mailgun
from providers.mailgun.adapter import SmtpEmailProvider
from providers.settings import ProviderSettings
from providers.slack.adapter import SlackProvider
from providers.twilio import webhooks as twilio
from providers.twilio.adapter import TwilioClient, TwilioSmsProvider, TwilioVoiceProvider
from providers.whatsapp import webhooks as whatsapp
from providers.whatsapp.adapter import WhatsAppCloudProvider


@dataclass(frozen=True)
class Providers:
    # The provider that sends each channel.
    by_channel: dict[str, Provider]
    # WhatsApp also reviews templates (TemplateActivities).
    whatsapp: WhatsAppCloudProvider


def build_providers(
    settings: ProviderSettings, *, timeout: float, cleanup: AsyncExitStack
) -> Providers:
    """The outbound adapters, whose HTTP clients `cleanup` closes when the
    worker is done. Each adapter that takes per-message status callbacks
    builds their URLs on settings.webhook_base_url."""
    twilio_client = TwilioClient(
        api_base=settings.twilio_api_base,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        timeout=timeout,
    )
    slack = SlackProvider(
        api_base=settings.slack_api_base, bot_token=settings.slack_bot_token, timeout=timeout
    )
    whatsapp_provider = WhatsAppCloudProvider(
        api_base=settings.meta_api_base,
        api_version=settings.meta_api_version,
        phone_number_id=settings.whatsapp_phone_number_id,
        business_account_id=settings.whatsapp_business_account_id,
        access_token=settings.meta_access_token,
        timeout=timeout,
    )
    for client in (twilio_client, slack, whatsapp_provider):
        cleanup.push_async_callback(client.aclose)
    callbacks = settings.webhook_base_url
    return Providers(
        by_channel={
            "email": SmtpEmailProvider(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.email_from,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                timeout=timeout,
            ),
            "sms": TwilioSmsProvider(
                twilio_client, settings.twilio_from_number, callback_base=callbacks
            ),
            "voice": TwilioVoiceProvider(
                twilio_client, settings.twilio_from_number, callback_base=callbacks
            ),
            "slack": slack,
            "whatsapp": whatsapp_provider,
        },
        whatsapp=whatsapp_provider,
    )


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
