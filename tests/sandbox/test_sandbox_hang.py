"""'Accept, then never answer' triggers: the provider has the message, the client never hears."""

from __future__ import annotations

import asyncio
import smtplib
import time
import uuid
from typing import Any

import httpx
import pytest

from .helpers import SID, SLACK_TOKEN, TOKEN, Receiver, SandboxProcess, start_sandbox
from .test_sandbox_email import make_mail
from .test_sandbox_slack import AUTH as SLACK_AUTH
from .test_sandbox_sms import MESSAGES, inspect
from .test_sandbox_voice import CALLS, twiml
from .test_sandbox_whatsapp import AUTH as META_AUTH
from .test_sandbox_whatsapp import PHONE_ID, VERSION, text_message

HANG = "+15005550305"
# Short on purpose: the point is that no answer comes, however long one waits.
CLIENT_TIMEOUT = httpx.Timeout(5.0, read=1.0)


async def never_answered(request: Any) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await request
    assert time.monotonic() - started < 5


async def the_one_accepted(
    client: httpx.AsyncClient, sandbox: SandboxProcess, channel: str, to: str, **match: str
) -> Any:
    """The single message recorded for this test, after checking its create was logged once."""
    records = await inspect(client, sandbox, "messages", channel=channel, to=to)
    [record] = [m for m in records if all(m[k] == v for k, v in match.items())]
    log = await inspect(client, sandbox, "requests", channel=channel, to=to, outcome="accepted")
    assert [r["message_id"] for r in log].count(record["id"]) == 1
    return record


async def twilio_create_unanswered(sandbox: SandboxProcess, path: str, **fields: str) -> None:
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as impatient:
        data = {"To": HANG, "From": "+15005550006", **fields}
        await never_answered(impatient.post(sandbox.http + path, data=data, auth=(SID, TOKEN)))


async def test_twilio_sms_hang_creates_one_message_and_never_answers(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    path = f"/hooks/sms/{uuid.uuid4().hex}"
    text = f"hang {uuid.uuid4().hex}"
    await twilio_create_unanswered(sandbox, MESSAGES, Body=text, StatusCallback=receiver.url(path))
    # The callbacks come as for any message: the platform can learn the outcome.
    hits = await receiver.wait_for(lambda r: r.path == path, count=2)
    assert [h.form()["MessageStatus"] for h in hits] == ["sent", "delivered"]
    sid = hits[0].form()["MessageSid"]
    record = await the_one_accepted(client, sandbox, "sms", HANG, body=text)
    assert record["provider_message_id"] == sid
    # And the list API, the reconciler's way to find it, shows exactly one.
    listed = await client.get(
        sandbox.http + MESSAGES, params={"To": HANG, "PageSize": "1000"}, auth=(SID, TOKEN)
    )
    assert [m["sid"] for m in listed.json()["messages"] if m["body"] == text] == [sid]


async def test_twilio_voice_hang_creates_one_call_and_never_answers(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    path = f"/hooks/voice/{uuid.uuid4().hex}"
    spoken = f"Hang {uuid.uuid4().hex}."
    await twilio_create_unanswered(
        sandbox, CALLS, Twiml=twiml(spoken), StatusCallback=receiver.url(path)
    )
    [hit] = await receiver.wait_for(lambda r: r.path == path)
    assert hit.form()["CallStatus"] == "completed"
    record = await the_one_accepted(client, sandbox, "voice", HANG, body=spoken)
    assert record["provider_message_id"] == hit.form()["CallSid"]


async def test_whatsapp_hang_creates_one_message_and_never_answers(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    payload = {"messaging_product": "whatsapp", **text_message(HANG)}
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as impatient:
        await never_answered(
            impatient.post(
                f"{sandbox.http}/{VERSION}/{PHONE_ID}/messages", json=payload, headers=META_AUTH
            )
        )
    record = await the_one_accepted(client, sandbox, "whatsapp", HANG, body=payload["text"]["body"])
    wamid = record["provider_message_id"].encode()
    hits = await receiver.wait_for(lambda r: wamid in r.body, count=2)
    assert len(hits) == 2  # sent, delivered: webhooks as for any message


def _smtp_without_final_reply(sandbox: SandboxProcess, to: str, subject: str) -> str:
    smtp = smtplib.SMTP(sandbox.smtp_host, sandbox.smtp_port, timeout=5)
    try:
        smtp.ehlo()
        smtp.mail("noreply@clarion.test")
        smtp.rcpt(to)
        smtp.sock.settimeout(1.0)  # type: ignore[union-attr]
        try:
            smtp.data(make_mail(to, subject).as_bytes())
        except smtplib.SMTPServerDisconnected as exc:  # smtplib's wrapping of the read timeout
            return "timed out" if "timed out" in str(exc) else f"disconnected: {exc}"
        return "answered"
    finally:
        smtp.close()


async def test_smtp_hang_queues_the_message_but_never_sends_the_final_reply(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    to = f"hang+{uuid.uuid4().hex[:8]}@example.test"
    subject = f"Hang {uuid.uuid4().hex}"
    outcome = await asyncio.to_thread(_smtp_without_final_reply, sandbox, to, subject)
    assert outcome == "timed out"
    await the_one_accepted(client, sandbox, "email", to, subject=subject)
    [event] = await receiver.wait_for(
        lambda r: r.path == "/hooks/mailgun" and r.json()["event-data"]["recipient"] == to
    )
    assert event.json()["event-data"]["event"] == "delivered"


async def test_slack_hang_posts_the_message_and_never_answers(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    opened = await client.post(
        f"{sandbox.http}/api/conversations.open", json={"users": "UHANG"}, headers=SLACK_AUTH
    )
    channel = opened.json()["channel"]["id"]
    text = f"hang {uuid.uuid4().hex}"
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as impatient:
        await never_answered(
            impatient.post(
                f"{sandbox.http}/api/chat.postMessage",
                data={"token": SLACK_TOKEN, "channel": channel, "text": text},
            )
        )
    history = await client.post(
        f"{sandbox.http}/api/conversations.history", json={"channel": channel}, headers=SLACK_AUTH
    )
    assert [m["text"] for m in history.json()["messages"]].count(text) == 1
    await the_one_accepted(client, sandbox, "slack", "UHANG", body=text)


async def test_sigterm_releases_held_requests_and_exits_cleanly() -> None:
    own = start_sandbox()
    try:
        async with httpx.AsyncClient(timeout=30) as patient:
            held = asyncio.create_task(
                patient.post(
                    own.http + MESSAGES,
                    data={"To": HANG, "From": "+15005550006", "Body": "held at shutdown"},
                    auth=(SID, TOKEN),
                )
            )
            await asyncio.sleep(0.5)
            assert not held.done()
            started = time.monotonic()
            code = await asyncio.to_thread(own.stop)
            assert code == 0 and time.monotonic() - started < 5
            # The connection is dropped without any HTTP answer.
            with pytest.raises(httpx.TransportError):
                await asyncio.wait_for(held, 5)
    finally:
        own.stop()
    assert "Traceback" not in own.stderr(), own.stderr()
