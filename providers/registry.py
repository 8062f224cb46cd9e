"""Every provider Clarion speaks. Adding one touches its folder, this file
and the sandbox: nothing in server/ or workflows/ names a provider."""

from contextlib import AsyncExitStack
from dataclasses import dataclass
from email.utils import parseaddr

from providers.base import Provider, WebhookHandler
from providers.mailgun import webhooks as mailgun
from providers.mailgun.adapter import SmtpEmailProvider
from providers.sendgrid import webhooks as sendgrid
from providers.sendgrid.adapter import SendGridEmailProvider
from providers.settings import ProviderSettings
from providers.slack.adapter import SlackProvider
from providers.twilio import webhooks as twilio
from providers.twilio.adapter import TwilioClient, TwilioSmsProvider, TwilioVoiceProvider
from providers.vonage import webhooks as vonage
from providers.vonage.adapter import VonageSmsProvider
from providers.whatsapp import webhooks as whatsapp
from providers.whatsapp.adapter import WhatsAppCloudProvider


@dataclass(frozen=True)
class Providers:
    # Each channel's providers by name, in failover order (the first is
    # tried first; channels with one provider have no breaker).
    by_channel: dict[str, dict[str, Provider]]
    # WhatsApp also reviews templates (TemplateActivities).
    whatsapp: WhatsAppCloudProvider


def build_providers(
    settings: ProviderSettings, *, timeout: float, cleanup: AsyncExitStack
) -> Providers:
    """The outbound adapters, whose HTTP clients `cleanup` closes when the
    worker is done. Each adapter that takes per-message status callbacks
    builds their URLs on settings.webhook_base_url. SMS and email follow
    CLARION_SMS_PROVIDERS and CLARION_EMAIL_PROVIDERS."""
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
    sms: dict[str, Provider] = {
        "twilio": TwilioSmsProvider(
            twilio_client, settings.twilio_from_number, callback_base=callbacks
        )
    }
    smtp = SmtpEmailProvider(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.email_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        timeout=timeout,
    )
    cleanup.push_async_callback(smtp.sessions.aclose)
    email: dict[str, Provider] = {"smtp": smtp}
    if "vonage" in settings.provider_chain("sms"):
        vonage_provider = VonageSmsProvider(
            api_base=settings.vonage_api_base,
            api_key=settings.vonage_api_key,
            api_secret=settings.vonage_api_secret,
            from_number=settings.vonage_from_number,
            callback_base=callbacks,
            timeout=timeout,
        )
        cleanup.push_async_callback(vonage_provider.aclose)
        sms["vonage"] = vonage_provider
    if "sendgrid" in settings.provider_chain("email"):
        sendgrid_provider = SendGridEmailProvider(
            api_base=settings.sendgrid_api_base,
            api_key=settings.sendgrid_api_key,
            # SendGrid's from.email is the bare address.
            sender=parseaddr(settings.email_from)[1],
            timeout=timeout,
        )
        cleanup.push_async_callback(sendgrid_provider.aclose)
        email["sendgrid"] = sendgrid_provider
    return Providers(
        by_channel={
            "email": {name: email[name] for name in settings.provider_chain("email")},
            "sms": {name: sms[name] for name in settings.provider_chain("sms")},
            "voice": {
                "twilio": TwilioVoiceProvider(
                    twilio_client, settings.twilio_from_number, callback_base=callbacks
                )
            },
            "slack": {"slack": slack},
            "whatsapp": {"whatsapp": whatsapp_provider},
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
        vonage.ROUTE: vonage.VonageWebhooks(
            signature_secret=settings.vonage_signature_secret,
            signature_method=settings.vonage_signature_method,
        ),
        sendgrid.ROUTE: sendgrid.SendGridWebhooks(public_key=settings.sendgrid_webhook_public_key),
    }
