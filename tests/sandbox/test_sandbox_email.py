"""SMTP submission and Mailgun-format event webhooks."""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
import time
import uuid
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from .helpers import MAILGUN_KEY, Received, Receiver, SandboxProcess, expected_mailgun_signature


def make_mail(to: str, subject: str | None = None, message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Clarion <noreply@clarion.test>"
    msg["To"] = to
    msg["Subject"] = subject or f"Subject {uuid.uuid4().hex}"
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content("Hello in plain text.\nSecond line.")
    msg.add_alternative("<p>Hello in <b>HTML</b>.</p>", subtype="html")
    return msg


def _send(sandbox: SandboxProcess, msg: EmailMessage, to: list[str] | None) -> dict[str, Any]:
    with smtplib.SMTP(sandbox.smtp_host, sandbox.smtp_port, timeout=20) as smtp:
        return dict(smtp.send_message(msg, to_addrs=to))


async def send_mail(
    sandbox: SandboxProcess, msg: EmailMessage, to: list[str] | None = None
) -> dict[str, Any]:
    return await asyncio.to_thread(_send, sandbox, msg, to)


def mailgun_event_for(recipient: str) -> Any:
    def match(r: Received) -> bool:
        return r.path == "/hooks/mailgun" and r.json()["event-data"]["recipient"] == recipient

    return match


async def inspect(
    client: httpx.AsyncClient, sandbox: SandboxProcess, what: str, **params: str
) -> Any:
    response = await client.get(f"{sandbox.http}/sandbox/api/{what}", params=params)
    return response.json()[what]


def assert_signed(hit: Received) -> dict[str, Any]:
    assert hit.headers["Content-Type"] == "application/json"
    payload: dict[str, Any] = hit.json()
    sig = payload["signature"]
    assert re.fullmatch(r"\d{10}", sig["timestamp"])
    assert abs(int(sig["timestamp"]) - time.time()) < 60
    assert re.fullmatch(r"[0-9a-f]{50}", sig["token"])
    assert sig["signature"] == expected_mailgun_signature(
        MAILGUN_KEY, sig["timestamp"], sig["token"]
    )
    return payload


async def test_delivered_event_is_signed_and_shaped_like_mailgun(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    to = f"user-{uuid.uuid4().hex[:8]}@example.com"
    msg = make_mail(to, message_id=f"<{uuid.uuid4().hex}@clarion.test>")
    msg["X-Mailgun-Variables"] = json.dumps({"notification_id": "ntf_1"})
    assert await send_mail(sandbox, msg) == {}

    [hit] = await receiver.wait_for(mailgun_event_for(to))
    event = assert_signed(hit)["event-data"]
    assert event["event"] == "delivered"
    assert isinstance(event["timestamp"], float) and isinstance(event["id"], str)
    assert event["recipient"] == to and event["recipient-domain"] == "example.com"
    assert event["delivery-status"]["code"] == 250
    assert "severity" not in event
    headers = event["message"]["headers"]
    assert headers["message-id"] == msg["Message-ID"].strip("<>")
    assert (headers["to"], headers["subject"]) == (to, msg["Subject"])
    assert headers["from"] == "Clarion <noreply@clarion.test>"
    assert event["user-variables"] == {"notification_id": "ntf_1"}

    [record] = await inspect(client, sandbox, "messages", channel="email", to=to)
    assert record["subject"] == msg["Subject"]
    assert record["body"] == "Hello in plain text.\nSecond line.\n"
    assert record["html"] == "<p>Hello in <b>HTML</b>.</p>\n"
    assert record["provider_message_id"] == msg["Message-ID"].strip("<>")
    assert record["status"] == "delivered"
    assert [(c["event"], c["response_status"]) for c in record["callbacks"]] == [("delivered", 200)]


async def test_message_without_message_id_gets_one(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    to = f"noid-{uuid.uuid4().hex[:8]}@example.com"
    await send_mail(sandbox, make_mail(to))
    [hit] = await receiver.wait_for(mailgun_event_for(to))
    [record] = await inspect(client, sandbox, "messages", to=to)
    message_id = hit.json()["event-data"]["message"]["headers"]["message-id"]
    assert message_id == record["provider_message_id"] and "@" in message_id
    assert not message_id.startswith("<")


async def test_reject_trigger_refuses_at_rcpt_and_keeps_other_recipients(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    tag = uuid.uuid4().hex[:8]
    good, bad = f"ok-{tag}@example.com", f"reject+{tag}@example.com"
    refused = await send_mail(sandbox, make_mail(good), [good, bad])
    assert set(refused) == {bad}
    code, reply = refused[bad]
    assert code == 550 and reply.startswith(b"5.1.1")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await send_mail(sandbox, make_mail(bad))
    assert info.value.recipients[bad][0] == 550

    assert await inspect(client, sandbox, "messages", to=bad) == []
    assert len(await inspect(client, sandbox, "messages", to=good)) == 1
    rejections = await inspect(client, sandbox, "rejections", channel="email", to=bad)
    assert [(r["outcome"], r["status_code"]) for r in rejections] == [("rejected", 550)] * 2
    await receiver.wait_for(mailgun_event_for(good))


async def test_tempfail_trigger_451_n_times_then_accepts(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    to = f"tempfail2+{uuid.uuid4().hex[:8]}@example.com"
    for _ in range(2):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            await send_mail(sandbox, make_mail(to))
        code, reply = info.value.recipients[to]
        assert code == 451 and reply.startswith(b"4.3.0")
    assert await send_mail(sandbox, make_mail(to)) == {}
    log = await inspect(client, sandbox, "requests", channel="email", to=to)
    assert [r["outcome"] for r in reversed(log)] == ["transient", "transient", "accepted"]
    [hit] = await receiver.wait_for(mailgun_event_for(to))
    assert hit.json()["event-data"]["event"] == "delivered"


async def test_bounce_trigger_sends_permanent_failure_event(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    to = f"bounce+{uuid.uuid4().hex[:8]}@example.com"
    assert await send_mail(sandbox, make_mail(to)) == {}
    [hit] = await receiver.wait_for(mailgun_event_for(to))
    event = assert_signed(hit)["event-data"]
    assert (event["event"], event["severity"], event["reason"]) == ("failed", "permanent", "bounce")
    assert event["delivery-status"]["code"] == 550
    assert event["delivery-status"]["message"]
    [record] = await inspect(client, sandbox, "messages", to=to)
    assert record["status"] == "failed"


async def test_noreceipt_trigger_sends_no_event(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    to = f"noreceipt+{uuid.uuid4().hex[:8]}@example.com"
    assert await send_mail(sandbox, make_mail(to)) == {}
    assert await receiver.wait_for(mailgun_event_for(to), within=1.0) == []
    [record] = await inspect(client, sandbox, "messages", to=to)
    assert record["callbacks"] == [] and record["status"] == "accepted"


async def test_slow_trigger_delays_rcpt(sandbox: SandboxProcess) -> None:
    started = time.monotonic()
    assert await send_mail(sandbox, make_mail(f"slow+{uuid.uuid4().hex[:8]}@example.com")) == {}
    assert time.monotonic() - started >= 2.9
