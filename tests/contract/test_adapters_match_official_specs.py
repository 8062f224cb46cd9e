"""Our provider adapters' real requests, checked against the providers' own
OpenAPI descriptions while they talk to the sandbox. The sandbox and the
adapters could agree on a mistake; the official spec cannot."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from providers.base import OutboundMessage, WhatsAppTemplate
from providers.twilio.adapter import TwilioClient, TwilioSmsProvider, TwilioVoiceProvider
from providers.whatsapp.adapter import WhatsAppCloudProvider
from runner.stack import Stack
from tests.contract.openapi_check import TWILIO_SPEC, WHATSAPP_SPEC, sent_request_checker

CALLBACKS = "https://clarion.example"


def message(channel: str, address: str, **extra: object) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=f"dlv_{secrets.token_hex(12)}",
        notification_id=f"ntf_{secrets.token_hex(12)}",
        channel=channel,
        address=address,
        subject="",
        body="Your order ORD-1001 & co shipped",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def twilio(stack: Stack) -> AsyncIterator[TwilioClient]:
    client = TwilioClient(
        api_base=stack.sandbox_url,
        account_sid="AC00000000000000000000000000000000",
        auth_token="sandbox-twilio-token",
        request_hooks=[sent_request_checker(TWILIO_SPEC)],
    )
    yield client
    await client.aclose()


async def test_sms_request_matches_twilio_spec(twilio: TwilioClient) -> None:
    accepted = await TwilioSmsProvider(twilio, "+15005550006", callback_base=CALLBACKS).send(
        message("sms", "+14155550123")
    )
    assert accepted.provider_message_id.startswith("SM")


async def test_voice_request_matches_twilio_spec(twilio: TwilioClient) -> None:
    accepted = await TwilioVoiceProvider(twilio, "+15005550006", callback_base=CALLBACKS).send(
        message("voice", "+14155550123")
    )
    assert accepted.provider_message_id.startswith("CA")


async def test_whatsapp_template_request_matches_meta_spec(stack: Stack) -> None:
    provider = WhatsAppCloudProvider(
        api_base=stack.sandbox_url,
        api_version="v21.0",
        phone_number_id="100000000000002",
        business_account_id="100000000000001",
        access_token="sandbox-meta-token",
    )
    name = f"contract_{secrets.token_hex(4)}"
    # Template management is not in Meta's published messaging spec; only sends are checked.
    await provider.submit_template(
        name=name, language="en_US", body="Hi {{1}}, order {{2}}", examples=["Al", "7"]
    )
    deadline = time.monotonic() + 15
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as sandbox:
        while time.monotonic() < deadline:
            templates = (await sandbox.get("/sandbox/api/templates")).json()["templates"]
            if any(t["name"] == name and t["status"] == "APPROVED" for t in templates):
                break
            await asyncio.sleep(0.2)
    await provider.aclose()

    checked = WhatsAppCloudProvider(
        api_base=stack.sandbox_url,
        api_version="v21.0",
        phone_number_id="100000000000002",
        business_account_id="100000000000001",
        access_token="sandbox-meta-token",
        request_hooks=[sent_request_checker(WHATSAPP_SPEC)],
    )
    try:
        accepted = await checked.send(
            message(
                "whatsapp",
                "+14155550123",
                template=WhatsAppTemplate(name=name, language="en_US", parameters=["Al", "7"]),
            )
        )
    finally:
        await checked.aclose()
    assert accepted.provider_message_id.startswith("wamid.")
