"""Twilio Programmable Messaging: API contract, callbacks, triggers, no de-duplication."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from .helpers import SID, TOKEN, Receiver, SandboxProcess, expected_twilio_signature

MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"
ERROR_KEYS = {"code", "message", "more_info", "status"}


async def send(
    client: httpx.AsyncClient,
    sandbox: SandboxProcess,
    *,
    auth: tuple[str, str] | None = (SID, TOKEN),
    headers: dict[str, str] | None = None,
    path: str = MESSAGES,
    data: Mapping[str, str] | None = None,
    **fields: str,
) -> httpx.Response:
    form = {**(data or {}), **fields}
    return await client.post(
        sandbox.http + path,
        data=form,
        auth=httpx.USE_CLIENT_DEFAULT if auth is None else auth,
        headers=headers,
    )


async def inspect(
    client: httpx.AsyncClient, sandbox: SandboxProcess, what: str, **params: str
) -> Any:
    response = await client.get(f"{sandbox.http}/sandbox/api/{what}", params=params)
    assert response.status_code == 200
    return response.json()[what]


def body(tag: str) -> str:
    return f"{tag} {uuid.uuid4().hex}"


def assert_twilio_error(response: httpx.Response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    payload = response.json()
    assert ERROR_KEYS <= set(payload)
    assert payload["code"] == code
    assert payload["status"] == status
    assert payload["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


async def test_message_is_queued_and_signed_callbacks_follow(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    path = f"/hooks/sms/{uuid.uuid4().hex}"
    callback = receiver.url(path) + "?tenant=acme&n=1"
    text = body("Hello ✓")
    response = await send(
        client,
        sandbox,
        To="+15551230001",
        From="+15005550006",
        Body=text,
        StatusCallback=callback,
    )
    assert response.status_code == 201, response.text
    msg = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", msg["sid"])
    assert msg["status"] == "queued"
    assert msg["account_sid"] == SID
    assert (msg["to"], msg["from"], msg["body"]) == ("+15551230001", "+15005550006", text)
    assert msg["uri"] == f"/2010-04-01/Accounts/{SID}/Messages/{msg['sid']}.json"
    assert msg["direction"] == "outbound-api" and msg["api_version"] == "2010-04-01"
    assert msg["num_segments"] == "1" and msg["error_code"] is None

    hits = await receiver.wait_for(lambda r: r.path == path, count=2)
    forms = [hit.form() for hit in hits]
    assert [f["MessageStatus"] for f in forms] == ["sent", "delivered"]
    for hit, form in zip(hits, forms, strict=True):
        assert hit.query == "tenant=acme&n=1"
        assert hit.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        # Verified against the URL exactly as configured, query string included.
        assert hit.headers["X-Twilio-Signature"] == expected_twilio_signature(TOKEN, callback, form)
        assert form["MessageSid"] == form["SmsSid"] == msg["sid"]
        assert form["SmsStatus"] == form["MessageStatus"]
        assert form["AccountSid"] == SID and form["ApiVersion"] == "2010-04-01"
        assert (form["To"], form["From"]) == ("+15551230001", "+15005550006")
        assert "ErrorCode" not in form

    [record] = await inspect(client, sandbox, "messages", channel="sms", to="+15551230001")
    assert record["provider_message_id"] == msg["sid"] and record["body"] == text
    assert record["status"] == "delivered"
    assert record["request"]["StatusCallback"] == callback
    assert [(c["event"], c["response_status"]) for c in record["callbacks"]] == [
        ("sent", 200),
        ("delivered", 200),
    ]
    fetched = await client.get(sandbox.http + msg["uri"], auth=(SID, TOKEN))
    assert fetched.json()["status"] == "delivered"
    by_id = await client.get(f"{sandbox.http}/sandbox/api/messages/{record['id']}")
    assert by_id.json()["provider_message_id"] == msg["sid"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"From": "+15005550006", "Body": "x"}, 21604),
        ({"To": "5551234", "From": "+15005550006", "Body": "x"}, 21211),
        ({"To": "+15551230002", "Body": "x"}, 21603),
        ({"To": "+15551230002", "From": "+15005550006"}, 21602),
        ({"To": "+15551230002", "From": "+15005550006", "Body": "x" * 1601}, 21617),
    ],
)
async def test_invalid_requests_get_twilio_errors(
    client: httpx.AsyncClient, sandbox: SandboxProcess, fields: dict[str, str], code: int
) -> None:
    assert_twilio_error(await send(client, sandbox, data=fields), 400, code)


async def test_segments_follow_gsm_and_ucs2_limits(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    for text, segments in [("a" * 160, "1"), ("a" * 161, "2"), ("é" * 160, "1"), ("✓" * 71, "2")]:
        response = await send(client, sandbox, To="+15551230003", From="+15005550006", Body=text)
        assert response.json()["num_segments"] == segments, text[:3]
    ok = await send(client, sandbox, To="+15551230003", From="+15005550006", Body="x" * 1600)
    assert ok.status_code == 201


async def test_authentication_failures(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    fields = {"To": "+15551230004", "From": "+15005550006", "Body": body("auth")}
    wrong = await send(client, sandbox, auth=(SID, "wrong-token"), data=fields)
    assert_twilio_error(wrong, 401, 20003)
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    assert_twilio_error(await send(client, sandbox, auth=None, data=fields), 401, 20003)
    other_account = "AC" + "1" * 32
    assert_twilio_error(
        await send(
            client, sandbox, path=f"/2010-04-01/Accounts/{other_account}/Messages.json", data=fields
        ),
        404,
        20404,
    )
    assert await inspect(client, sandbox, "messages", to="+15551230004") == []
    log = await inspect(client, sandbox, "rejections", channel="sms", to="+15551230004")
    assert [r["status_code"] for r in log] == [404, 401, 401]
    assert log[-1]["error"]["code"] == 20003


@pytest.mark.parametrize(("to", "code"), [("+15005550001", 21211), ("+15005550004", 21610)])
async def test_permanent_rejection_triggers(
    client: httpx.AsyncClient, sandbox: SandboxProcess, to: str, code: int
) -> None:
    text = body("reject")
    for _ in range(2):  # permanent: never turns into a success
        assert_twilio_error(
            await send(client, sandbox, To=to, From="+15005550006", Body=text), 400, code
        )
    assert await inspect(client, sandbox, "messages", channel="sms", to=to) == []
    log = await inspect(client, sandbox, "requests", channel="sms", to=to)
    assert {r["outcome"] for r in log} == {"rejected"}


async def test_transient_failures_then_success_then_reset(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    to, text, other = "+15005550203", body("transient"), body("other")
    statuses = []
    for _ in range(3):
        response = await send(client, sandbox, To=to, From="+15005550006", Body=text)
        assert_twilio_error(response, 503, 20500)
        statuses.append(response.status_code)
        # A different body to the same number has its own count.
        if len(statuses) == 1:
            assert (
                await send(client, sandbox, To=to, From="+15005550006", Body=other)
            ).status_code == 503
    ok = await send(client, sandbox, To=to, From="+15005550006", Body=text)
    assert ok.status_code == 201
    again = await send(client, sandbox, To=to, From="+15005550006", Body=text)
    assert again.status_code == 503  # the count restarted after the success

    log = await inspect(client, sandbox, "requests", channel="sms", to=to)
    outcomes = [r["outcome"] for r in reversed(log)]
    assert outcomes == ["transient"] * 4 + ["accepted", "transient"]
    rejections = await inspect(client, sandbox, "rejections", channel="sms", to=to)
    assert len(rejections) == 5


async def test_rate_limit_once_then_success(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    to, text = "+15005550429", body("ratelimit")
    first = await send(client, sandbox, To=to, From="+15005550006", Body=text)
    assert_twilio_error(first, 429, 20429)
    assert first.headers["Retry-After"] == "1"
    second = await send(client, sandbox, To=to, From="+15005550006", Body=text)
    assert second.status_code == 201


async def test_undelivered_callback_trigger(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    path = f"/hooks/sms/{uuid.uuid4().hex}"
    response = await send(
        client,
        sandbox,
        To="+15005550301",
        From="+15005550006",
        Body=body("fail"),
        StatusCallback=receiver.url(path),
    )
    assert response.status_code == 201
    hits = await receiver.wait_for(lambda r: r.path == path, count=2)
    forms = [h.form() for h in hits]
    assert [f["MessageStatus"] for f in forms] == ["sent", "undelivered"]
    assert forms[1]["ErrorCode"] == "30003"
    assert hits[1].headers["X-Twilio-Signature"] == expected_twilio_signature(
        TOKEN, receiver.url(path), forms[1]
    )
    fetched = await client.get(sandbox.http + response.json()["uri"], auth=(SID, TOKEN))
    assert (fetched.json()["status"], fetched.json()["error_code"]) == ("undelivered", 30003)


async def test_no_callback_trigger(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    path = f"/hooks/sms/{uuid.uuid4().hex}"
    response = await send(
        client,
        sandbox,
        To="+15005550302",
        From="+15005550006",
        Body=body("silent"),
        StatusCallback=receiver.url(path),
    )
    assert response.status_code == 201
    assert await receiver.wait_for(lambda r: r.path == path, within=1.0) == []
    records = await inspect(client, sandbox, "messages", to="+15005550302")
    assert records[0]["callbacks"] == [] and records[0]["status"] == "queued"


async def test_slow_provider_trigger(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    started = time.monotonic()
    response = await send(
        client, sandbox, To="+15005550303", From="+15005550006", Body=body("slow")
    )
    assert response.status_code == 201
    assert time.monotonic() - started >= 2.9


async def test_repeated_create_with_the_same_idempotency_token_makes_two_messages(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    # Real Twilio does not de-duplicate creates by I-Twilio-Idempotency-Token
    # (a webhook header), so a client that retries a create sends twice.
    path = f"/hooks/sms/{uuid.uuid4().hex}"
    fields = {
        "To": "+15551230005",
        "From": "+15005550006",
        "Body": body("idem"),
        "StatusCallback": receiver.url(path),
    }
    token = {"I-Twilio-Idempotency-Token": uuid.uuid4().hex}
    first = await send(client, sandbox, headers=token, data=fields)
    second = await send(client, sandbox, headers=token, data=fields)
    assert first.status_code == second.status_code == 201
    assert first.json()["sid"] != second.json()["sid"]
    hits = await receiver.wait_for(lambda r: r.path == path, count=4)
    assert {h.form()["MessageSid"] for h in hits} == {first.json()["sid"], second.json()["sid"]}
    records = await inspect(client, sandbox, "messages", to="+15551230005")
    assert len(records) == 2
    log = await inspect(client, sandbox, "requests", to="+15551230005")
    assert [r["outcome"] for r in log] == ["accepted", "accepted"]
    assert {r["message_id"] for r in log} == {r["id"] for r in records}


async def test_messaging_service_send(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    path = f"/hooks/sms/{uuid.uuid4().hex}"
    service = "MG" + "a" * 32
    response = await send(
        client,
        sandbox,
        To="+15551230006",
        MessagingServiceSid=service,
        Body=body("svc"),
        StatusCallback=receiver.url(path),
    )
    assert response.status_code == 201
    msg = response.json()
    assert (msg["status"], msg["from"], msg["messaging_service_sid"]) == ("accepted", None, service)
    hits = await receiver.wait_for(lambda r: r.path == path, count=2)
    form = hits[0].form()
    assert form["MessagingServiceSid"] == service and form["From"].startswith("+")
    assert hits[0].headers["X-Twilio-Signature"] == expected_twilio_signature(
        TOKEN, receiver.url(path), form
    )


async def test_callbacks_are_retried_while_the_platform_is_down(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    path = f"/hooks/sms/{uuid.uuid4().hex}"
    receiver.fail(path, 2)
    response = await send(
        client,
        sandbox,
        To="+15551230007",
        From="+15005550006",
        Body=body("retry"),
        StatusCallback=receiver.url(path),
    )
    assert response.status_code == 201
    hits = await receiver.wait_for(lambda r: r.path == path, count=4)
    assert [h.form()["MessageStatus"] for h in hits] == ["sent"] * 3 + ["delivered"]
    assert hits[2].at - hits[1].at > hits[1].at - hits[0].at  # backoff grows
    [record] = await inspect(client, sandbox, "messages", to="+15551230007")
    first = record["callbacks"][0]
    assert first["attempts"] == 3 and first["attempt_statuses"] == [503, 503, 200]


async def test_unreachable_callback_url_does_not_break_the_sandbox(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    response = await send(
        client,
        sandbox,
        To="+15551230008",
        From="+15005550006",
        Body=body("dead"),
        StatusCallback="http://127.0.0.1:1/status",
    )
    assert response.status_code == 201
    deadline = time.monotonic() + 10
    callbacks: list[Any] = []
    while time.monotonic() < deadline:
        [record] = await inspect(client, sandbox, "messages", to="+15551230008")
        callbacks = record["callbacks"]
        if callbacks and callbacks[0]["attempts"] == 4 and len(callbacks) == 2:
            break
        await __import__("asyncio").sleep(0.1)
    assert callbacks[0]["attempts"] == 4  # first try + 3 retries
    assert callbacks[0]["response_status"] is None and callbacks[0]["error"]
    assert (await client.get(sandbox.http + "/healthz")).json() == {"ok": True}
