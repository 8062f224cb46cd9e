"""Every adapter classifies HTTP errors through providers.http.response_error:
the same wording ("<Provider> rate limit", "<Provider> unavailable") and
Retry-After honoured on 429 and 503 alike (RFC 9110 section 10.2.3), against
a local HTTP server that answers as each provider does when it is in trouble."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web

from providers.base import OutboundMessage, ProviderError, WhatsAppTemplate
from providers.http import HttpResponse
from providers.sendgrid.adapter import SendGridEmailProvider
from providers.slack.adapter import SlackProvider
from providers.twilio.adapter import TwilioClient, TwilioSmsProvider
from providers.vonage.adapter import VonageSmsProvider
from providers.whatsapp.adapter import WhatsAppCloudProvider

# (status, headers, JSON body) every request gets.
Answer = tuple[int, dict[str, str], Any]


class OneAnswerServer:
    def __init__(self) -> None:
        self.answer: Answer = (503, {}, {})
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        status, headers, body = self.answer
        return web.Response(
            status=status, headers=headers, text=json.dumps(body), content_type="application/json"
        )


@pytest.fixture
async def server() -> AsyncIterator[OneAnswerServer]:
    one = OneAnswerServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", one.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    one.url = f"http://127.0.0.1:{port}"
    yield one
    await runner.cleanup()


def twilio(base: str) -> Any:
    return TwilioSmsProvider(
        TwilioClient(api_base=base, account_sid="AC1", auth_token="t"), "+15550000000"
    )


def vonage(base: str) -> Any:
    return VonageSmsProvider(
        api_base=base, api_key="k", api_secret="s", from_number="+15550000000", callback_base=base
    )


def sendgrid(base: str) -> Any:
    return SendGridEmailProvider(api_base=base, api_key="SG.k", sender="a@b.test")


def slack(base: str) -> Any:
    return SlackProvider(api_base=base, bot_token="xoxb-1")


def whatsapp(base: str) -> Any:
    return WhatsAppCloudProvider(
        api_base=base,
        api_version="v21.0",
        phone_number_id="1",
        business_account_id="2",
        access_token="t",
    )


MESSAGE = OutboundMessage(
    "dlv_1",
    "ntf_1",
    "sms",
    "+14155550100",
    "s",
    "b",
    template=WhatsAppTemplate("t", "en", []),
)

ADAPTERS: dict[str, tuple[Callable[[str], Any], Any]] = {
    # name -> (factory, the error body it sends with a 503)
    "Twilio": (twilio, {"code": 20500, "message": "An internal server error has occurred"}),
    "Vonage": (vonage, {"messages": [{"status": "5"}]}),
    "SendGrid": (sendgrid, {"errors": [{"message": "Service Unavailable"}]}),
    "Slack": (slack, {"ok": False, "error": "service_unavailable"}),
    "WhatsApp": (whatsapp, {"error": {"code": 131016, "message": "Service unavailable"}}),
}


async def failure(make: Callable[[str], Any], server: OneAnswerServer) -> ProviderError:
    provider = make(server.url)
    try:
        with pytest.raises(ProviderError) as raised:
            await provider.send(MESSAGE)
        return raised.value
    finally:
        await provider._client.aclose()


@pytest.mark.parametrize("name", list(ADAPTERS))
async def test_503_with_retry_after_is_unavailable_and_waits(
    name: str, server: OneAnswerServer
) -> None:
    make, body = ADAPTERS[name]
    server.answer = (503, {"Retry-After": "7"}, body)
    error = await failure(make, server)
    assert (error.reason, error.permanent, error.retry_after) == (f"{name} unavailable", False, 7)
    assert not error.outcome_unknown


@pytest.mark.parametrize("name", list(ADAPTERS))
async def test_503_without_retry_after_leaves_the_backoff_to_the_workflow(
    name: str, server: OneAnswerServer
) -> None:
    make, body = ADAPTERS[name]
    server.answer = (503, {}, body)
    error = await failure(make, server)
    assert (error.reason, error.permanent, error.retry_after) == (
        f"{name} unavailable",
        False,
        None,
    )


@pytest.mark.parametrize("name", list(ADAPTERS))
async def test_429_is_a_rate_limit_with_its_retry_after(name: str, server: OneAnswerServer) -> None:
    make, _ = ADAPTERS[name]
    server.answer = (429, {"Retry-After": "2"}, {})
    error = await failure(make, server)
    assert (error.reason, error.permanent, error.retry_after) == (f"{name} rate limit", False, 2)


@pytest.mark.parametrize("name", list(ADAPTERS))
async def test_an_unlisted_refusal_is_permanent_and_names_the_provider(
    name: str, server: OneAnswerServer
) -> None:
    make, _ = ADAPTERS[name]
    # Vonage refuses in a 200 body; the others by a 4xx.
    if name == "Vonage":
        server.answer = (200, {}, {"messages": [{"status": "99"}]})
    elif name == "Slack":
        server.answer = (200, {}, {"ok": False, "error": "something_new"})
    else:
        server.answer = (400, {}, {"code": 99999, "error": {"code": 99999}})
    error = await failure(make, server)
    assert (error.reason, error.permanent) == (f"{name} rejected the message", True)


@pytest.mark.parametrize(
    ("name", "answer", "reason"),
    [
        ("Vonage", (200, {}, {"messages": [{"status": "1"}]}), "Vonage rate limit"),
        ("Slack", (200, {}, {"ok": False, "error": "ratelimited"}), "Slack rate limit"),
        (
            "WhatsApp",
            (400, {}, {"error": {"code": 131056, "message": "pair rate limit hit"}}),
            "WhatsApp rate limit",
        ),
        ("WhatsApp", (400, {}, {"error": {"code": 131000}}), "WhatsApp unavailable"),
    ],
)
async def test_throttling_and_transient_codes_in_the_body(
    name: str, answer: Answer, reason: str, server: OneAnswerServer
) -> None:
    server.answer = answer
    error = await failure(ADAPTERS[name][0], server)
    assert (error.reason, error.permanent) == (reason, False)


async def test_each_providers_own_permanent_table_words_the_reason(
    server: OneAnswerServer,
) -> None:
    server.answer = (400, {}, {"code": 21211, "message": "Invalid 'To' Phone Number"})
    assert (await failure(twilio, server)).reason == "invalid phone number"
    server.answer = (401, {}, {"errors": [{"message": "bad key"}]})
    assert "credentials" in (await failure(sendgrid, server)).reason
    server.answer = (200, {}, {"ok": False, "error": "user_not_found"})
    assert (await failure(slack, server)).reason == "Slack user not found"


def test_retry_after_may_be_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    waited = HttpResponse(503, {"Retry-After": later}, "").retry_after_seconds()
    assert waited is not None and 28 <= waited <= 30
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert HttpResponse(503, {"Retry-After": past}, "").retry_after_seconds() == 0
    assert HttpResponse(503, {"Retry-After": "soon"}, "").retry_after_seconds() is None
