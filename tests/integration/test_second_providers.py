"""The Vonage and SendGrid adapters against the sandbox: accepted ids, and
transient (outage, throttling) versus permanent (bad recipient) failures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from providers.base import OutboundMessage, ProviderError
from providers.sendgrid.adapter import SendGridEmailProvider
from providers.vonage.adapter import VonageSmsProvider
from tests.sandbox.helpers import SandboxProcess, start_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    proc = start_sandbox("--callback-delay", "0.1")
    yield proc
    assert proc.stop() == 0


def message(channel: str, address: str, body: str = "") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=f"n-{uuid.uuid4().hex}:{channel}",
        notification_id="n-1",
        channel=channel,
        address=address,
        subject="Subject",
        body=body or f"body {uuid.uuid4().hex}",
    )


def vonage(sandbox: SandboxProcess) -> VonageSmsProvider:
    return VonageSmsProvider(
        api_base=sandbox.http,
        api_key="sandboxkey",
        api_secret="sandbox-vonage-secret",
        from_number="+15005550006",
        callback_base="http://127.0.0.1:1",
    )


def sendgrid(sandbox: SandboxProcess) -> SendGridEmailProvider:
    return SendGridEmailProvider(
        api_base=sandbox.http, api_key="SG.sandbox-sendgrid-key", sender="noreply@clarion.test"
    )


async def requests(sandbox: SandboxProcess, provider: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient() as client:
        got = await client.get(
            sandbox.http + "/sandbox/api/requests", params={"provider": provider}
        )
        found: list[dict[str, object]] = got.json()["requests"]
        return found


async def test_vonage(sandbox: SandboxProcess) -> None:
    provider = vonage(sandbox)
    try:
        accepted = await provider.send(message("sms", "+14155550100", "héllo ✓"))
        uuid.UUID(accepted.provider_message_id)
        with pytest.raises(ProviderError) as invalid:
            await provider.send(message("sms", "+15005550001"))
        assert invalid.value.permanent and invalid.value.reason == "invalid phone number"
        with pytest.raises(ProviderError) as throttled:
            await provider.send(message("sms", "+15005550429"))
        assert not throttled.value.permanent
        async with httpx.AsyncClient() as client:
            await client.post(
                sandbox.http + "/sandbox/api/outage", json={"provider": "vonage", "seconds": 30}
            )
            with pytest.raises(ProviderError) as down:
                await provider.send(message("sms", "+14155550100"))
            assert not down.value.permanent and down.value.reason == "Vonage unavailable"
            await client.delete(sandbox.http + "/sandbox/api/outage")
        sent = [r for r in await requests(sandbox, "vonage") if r["outcome"] == "accepted"]
        assert len(sent) == 1
    finally:
        await provider.aclose()


async def test_sendgrid(sandbox: SandboxProcess) -> None:
    provider = sendgrid(sandbox)
    try:
        accepted = await provider.send(message("email", "user@example.com"))
        assert len(accepted.provider_message_id) == 22
        with pytest.raises(ProviderError) as invalid:
            await provider.send(message("email", "not-an-address"))
        assert invalid.value.permanent
        async with httpx.AsyncClient() as client:
            await client.post(
                sandbox.http + "/sandbox/api/outage", json={"provider": "sendgrid", "seconds": 30}
            )
            with pytest.raises(ProviderError) as down:
                await provider.send(message("email", "user@example.com"))
            assert not down.value.permanent
            await client.delete(sandbox.http + "/sandbox/api/outage")
    finally:
        await provider.aclose()
    wrong = SendGridEmailProvider(api_base=sandbox.http, api_key="SG.wrong", sender="a@b.test")
    try:
        with pytest.raises(ProviderError) as creds:
            await wrong.send(message("email", "user@example.com"))
        assert creds.value.permanent and "credentials" in creds.value.reason
    finally:
        await wrong.aclose()
