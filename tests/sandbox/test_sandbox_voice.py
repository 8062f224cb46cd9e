"""Twilio Voice: Calls API, TwiML <Say> capture, signed call-progress callbacks."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from .helpers import SID, TOKEN, Receiver, SandboxProcess, expected_twilio_signature

CALLS = f"/2010-04-01/Accounts/{SID}/Calls.json"
ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


async def call(
    client: httpx.AsyncClient,
    sandbox: SandboxProcess,
    events: list[str] | None = None,
    **fields: str,
) -> httpx.Response:
    data: dict[str, Any] = {"From": "+15005550006", **fields}
    if events:
        data["StatusCallbackEvent"] = events  # sent repeated, as the helper libraries do
    return await client.post(sandbox.http + CALLS, data=data, auth=(SID, TOKEN))


def twiml(*sentences: str) -> str:
    says = "".join(f'<Say voice="alice">{s}</Say><Pause length="1"/>' for s in sentences)
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{says}<Hangup/></Response>'


async def statuses(receiver: Receiver, path: str, count: int) -> list[dict[str, str]]:
    hits = await receiver.wait_for(lambda r: r.path == path, count=count)
    for hit in hits:
        assert hit.headers["X-Twilio-Signature"] == expected_twilio_signature(
            TOKEN, receiver.url(path), hit.form()
        )
    return [h.form() for h in hits]


async def test_call_with_twiml_reports_progress_and_records_speech(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    path = f"/hooks/voice/{uuid.uuid4().hex}"
    response = await call(
        client,
        sandbox,
        ALL_EVENTS,
        To="+15551240001",
        Twiml=twiml("Your code is 1 2 3.", "Goodbye."),
        StatusCallback=receiver.url(path),
    )
    assert response.status_code == 201, response.text
    resource = response.json()
    assert re.fullmatch(r"CA[0-9a-f]{32}", resource["sid"])
    assert (resource["status"], resource["direction"]) == ("queued", "outbound-api")

    forms = await statuses(receiver, path, 4)
    assert [f["CallStatus"] for f in forms] == ["initiated", "ringing", "in-progress", "completed"]
    assert [f["SequenceNumber"] for f in forms] == ["0", "1", "2", "3"]
    assert all(f["CallSid"] == resource["sid"] and f["AccountSid"] == SID for f in forms)
    assert int(forms[-1]["CallDuration"]) > 0
    assert "CallDuration" not in forms[1]

    listing = await client.get(
        f"{sandbox.http}/sandbox/api/messages", params={"channel": "voice", "to": "+15551240001"}
    )
    [record] = listing.json()["messages"]
    assert record["body"] == "Your code is 1 2 3. Goodbye."
    assert record["status"] == "completed"


async def test_only_completed_is_sent_by_default(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    path = f"/hooks/voice/{uuid.uuid4().hex}"
    response = await call(
        client, sandbox, To="+15551240002", Twiml=twiml("Hi."), StatusCallback=receiver.url(path)
    )
    assert response.status_code == 201
    forms = await statuses(receiver, path, 1)
    assert len(await receiver.wait_for(lambda r: r.path == path, count=2, within=0.6)) == 1
    assert forms[0]["CallStatus"] == "completed"


async def test_busy_and_no_answer_triggers(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    busy_path, quiet_path = f"/hooks/voice/{uuid.uuid4().hex}", f"/hooks/voice/{uuid.uuid4().hex}"
    busy = await call(
        client,
        sandbox,
        ALL_EVENTS,
        To="+15005550304",
        Twiml=twiml("x"),
        StatusCallback=receiver.url(busy_path),
    )
    quiet = await call(
        client,
        sandbox,
        ALL_EVENTS,
        To="+15005550301",
        Twiml=twiml("x"),
        StatusCallback=receiver.url(quiet_path),
    )
    assert busy.status_code == quiet.status_code == 201
    busy_forms = await statuses(receiver, busy_path, 2)
    assert [f["CallStatus"] for f in busy_forms] == ["initiated", "busy"]
    quiet_forms = await statuses(receiver, quiet_path, 3)
    assert [f["CallStatus"] for f in quiet_forms] == ["initiated", "ringing", "no-answer"]
    assert quiet_forms[-1]["CallDuration"] == "0"


async def test_call_url_is_fetched_signed_and_its_twiml_recorded(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    twiml_path, status_path = f"/twiml/{uuid.uuid4().hex}", f"/hooks/voice/{uuid.uuid4().hex}"
    receiver.respond(twiml_path, twiml("Fetched from your server."))
    response = await call(
        client,
        sandbox,
        To="+15551240003",
        Url=receiver.url(twiml_path),
        StatusCallback=receiver.url(status_path),
    )
    assert response.status_code == 201
    [fetch] = await receiver.wait_for(lambda r: r.path == twiml_path)
    assert fetch.method == "POST" and fetch.form()["CallStatus"] == "in-progress"
    assert fetch.headers["X-Twilio-Signature"] == expected_twilio_signature(
        TOKEN, receiver.url(twiml_path), fetch.form()
    )
    forms = await statuses(receiver, status_path, 1)
    assert forms[0]["CallStatus"] == "completed"
    records = (
        await client.get(f"{sandbox.http}/sandbox/api/messages", params={"to": "+15551240003"})
    ).json()["messages"]
    assert records[0]["body"] == "Fetched from your server."


async def test_call_validation_errors(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    cases = [
        ({"Twiml": twiml("x")}, 21201),
        ({"To": "+15551240004", "Twiml": "<Response><Say>unclosed</Response>"}, 12100),
        ({"To": "+15551240004"}, 21205),
        ({"To": "+15005550001", "Twiml": twiml("x")}, 21211),
    ]
    for fields, code in cases:
        response = await call(client, sandbox, None, **fields)
        assert response.status_code == 400, fields
        assert response.json()["code"] == code
