"""Command-line / environment configuration for the sandbox."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    http_port: int = 4010
    smtp_port: int = 2525
    smtp_user: str = ""
    smtp_password: str = ""
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: str = "sandbox-twilio-token"
    mailgun_signing_key: str = "sandbox-mailgun-key"
    mailgun_webhook_url: str = ""
    slack_bot_token: str = "xoxb-sandbox-token"
    meta_access_token: str = "sandbox-meta-token"
    meta_app_secret: str = "sandbox-meta-secret"
    meta_verify_token: str = "sandbox-verify-token"
    whatsapp_webhook_url: str = ""
    whatsapp_waba_id: str = "100000000000001"
    whatsapp_display_phone_number: str = "15550000000"
    vonage_api_key: str = "sandboxkey"
    vonage_api_secret: str = "sandbox-vonage-secret"
    vonage_signature_secret: str = "sandbox-vonage-signature-secret"
    vonage_signature_method: str = "sha256"
    vonage_dlr_url: str = ""
    sendgrid_api_key: str = "SG.sandbox-sendgrid-key"
    sendgrid_webhook_url: str = ""
    # A fixed P-256 key (base64 PKCS#8 DER) so a platform can be configured with
    # its public key ahead of time (see sandbox/README.md); override it anywhere real.
    sendgrid_webhook_private_key: str = (
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJ/BvTNa1GCt21LJuuCJ4ZggIhOzMZuoc"
        "lTpSvSkAYSehRANCAATjs9uN4uXj/u/irWB+JAJukj2q248HJxlK9hbU/tB4aW4bxgNSryW5TftNAGQX"
        "FhYhcrqmwcrznuJdZb/a81SU"
    )
    callback_delay: float = 0.2
    callback_retries: int = 3
    callback_backoff: float = 1.0
    template_review_delay: float = 1.5
    slow_seconds: float = 3.0


# (option, type, help) — the env var is SANDBOX_<OPTION_IN_UPPER_SNAKE>.
_OPTIONS: list[tuple[str, type, str]] = [
    ("host", str, "interface to bind (keep it on loopback)"),
    ("http-port", int, "HTTP port for every provider API (0 = ephemeral)"),
    ("smtp-port", int, "SMTP port (0 = ephemeral)"),
    ("smtp-user", str, "if set, SMTP AUTH PLAIN/LOGIN is required"),
    ("smtp-password", str, "password for --smtp-user"),
    ("twilio-account-sid", str, "Twilio AccountSid accepted by the API"),
    ("twilio-auth-token", str, "Twilio AuthToken (Basic auth + X-Twilio-Signature key)"),
    ("mailgun-signing-key", str, "Mailgun HTTP webhook signing key"),
    ("mailgun-webhook-url", str, "where Mailgun-format events are POSTed (empty = none)"),
    ("slack-bot-token", str, "accepted Slack bot token"),
    ("meta-access-token", str, "accepted Meta Graph API access token"),
    ("meta-app-secret", str, "Meta app secret (X-Hub-Signature-256 key)"),
    ("meta-verify-token", str, "token sent in the WhatsApp webhook verification handshake"),
    ("whatsapp-webhook-url", str, "where WhatsApp webhooks are POSTed (empty = none)"),
    ("whatsapp-waba-id", str, "WhatsApp Business Account id used in message webhooks"),
    ("whatsapp-display-phone-number", str, "display number reported in webhook metadata"),
    ("vonage-api-key", str, "Vonage api_key accepted by the SMS API"),
    ("vonage-api-secret", str, "Vonage api_secret accepted by the SMS API"),
    ("vonage-signature-secret", str, "Vonage signature secret (signs delivery receipts)"),
    ("vonage-signature-method", str, "md5hash | md5 | sha1 | sha256 | sha512"),
    ("vonage-dlr-url", str, "account-level Vonage delivery receipt URL (empty = none)"),
    ("sendgrid-api-key", str, "accepted SendGrid API key (Authorization: Bearer)"),
    ("sendgrid-webhook-url", str, "where SendGrid Event Webhook posts go (empty = none)"),
    ("sendgrid-webhook-private-key", str, "base64 PKCS#8 DER P-256 key signing SendGrid events"),
    ("callback-delay", float, "seconds between accepting a message and its first callback"),
    ("callback-retries", int, "retries of a failed callback POST (after the first try)"),
    ("callback-backoff", float, "first retry delay in seconds; doubles per retry"),
    ("template-review-delay", float, "seconds before a WhatsApp template is approved/rejected"),
    ("slow-seconds", float, "delay applied by the 'slow provider' triggers"),
]


def env_name(option: str) -> str:
    return "SANDBOX_" + option.upper().replace("-", "_")


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    env = os.environ if environ is None else environ
    defaults = Config()
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description=(
            "Local provider sandbox (SMTP/Mailgun, Twilio, Vonage, SendGrid, Slack, WhatsApp)."
        ),
    )
    for option, kind, help_text in _OPTIONS:
        attr = option.replace("-", "_")
        default = getattr(defaults, attr)
        raw = env.get(env_name(option))
        if raw is not None:
            default = kind(raw)
        parser.add_argument(
            f"--{option}",
            type=kind,
            default=default,
            help=f"{help_text} [env {env_name(option)}, default {default!r}]",
        )
    ns = parser.parse_args(argv)
    return Config(**vars(ns))
