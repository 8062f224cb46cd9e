"""WhatsApp Cloud API: templates, messages, signed webhooks, Meta-shaped errors."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from .helpers import (
    META_SECRET,
    META_TOKEN,
    Received,
    Receiver,
    SandboxProcess,
    expected_meta_signature,
)

VERSION = "v21.0"
PHONE_ID = "106540352242922"
WABA_ID = "102290129340398"
AUTH = {"Authorization": f"Bearer {META_TOKEN}"}
HOOK = "/hooks/whatsapp"


def verified(hit: Received) -> Any:
    assert hit.query == "source=meta"
    assert hit.headers["X-Hub-Signature-256"] == expected_meta_signature(META_SECRET, hit.body)
    return hit.json()


def template_event(name: str) -> Any:
    def match(r: Received) -> bool:
        if r.path != HOOK:
            return False
        change = r.json()["entry"][0]["changes"][0]
        return bool(
            change["field"] == "message_template_status_update"
            and change["value"]["message_template_name"] == name
        )

    return match


def status_event(wamid: str) -> Any:
    def match(r: Received) -> bool:
        if r.path != HOOK:
            return False
        value = r.json()["entry"][0]["changes"][0]["value"]
        return any(s["id"] == wamid for s in value.get("statuses", []))

    return match


async def create_template(
    client: httpx.AsyncClient, sandbox: SandboxProcess, name: str, **overrides: Any
) -> httpx.Response:
    payload = {
        "name": name,
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{1}}, your order {{2}} has shipped.",
                "example": {"body_text": [["Ada", "#1042"]]},
            }
        ],
        **overrides,
    }
    return await client.post(
        f"{sandbox.http}/{VERSION}/{WABA_ID}/message_templates", json=payload, headers=AUTH
    )


async def send(
    client: httpx.AsyncClient,
    sandbox: SandboxProcess,
    payload: dict[str, Any],
    headers: dict[str, str] | None = AUTH,
) -> httpx.Response:
    body = {"messaging_product": "whatsapp", **payload}
    return await client.post(
        f"{sandbox.http}/{VERSION}/{PHONE_ID}/messages", json=body, headers=headers
    )


def template_message(to: str, name: str, *params: str) -> dict[str, Any]:
    return {
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
            ],
        },
    }


def text_message(to: str, text: str | None = None) -> dict[str, Any]:
    return {"to": to, "type": "text", "text": {"body": text or f"hello {uuid.uuid4().hex}"}}


def assert_meta_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["type"] == "OAuthException"
    assert error["fbtrace_id"] and error["message"]
    return error


@pytest.fixture(scope="module")
async def approved(sandbox: SandboxProcess, receiver: Receiver) -> str:
    name = f"order_shipped_{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient() as client:
        created = await create_template(client, sandbox, name)
    assert created.status_code == 200, created.text
    assert created.json()["status"] == "PENDING"
    await receiver.wait_for(template_event(name))
    return name


async def test_template_review_lifecycle(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    name = f"welcome_{uuid.uuid4().hex[:8]}"
    created = await create_template(client, sandbox, name)
    payload = created.json()
    assert payload["status"] == "PENDING" and payload["category"] == "UTILITY" and payload["id"]
    listing = await client.get(
        f"{sandbox.http}/{VERSION}/{WABA_ID}/message_templates", params={"name": name}, headers=AUTH
    )
    assert [t["status"] for t in listing.json()["data"]] == ["PENDING"]

    [hit] = await receiver.wait_for(template_event(name))
    event = verified(hit)
    assert event["object"] == "whatsapp_business_account"
    assert event["entry"][0]["id"] == WABA_ID
    value = event["entry"][0]["changes"][0]["value"]
    assert value["event"] == "APPROVED" and value["reason"] == "NONE"
    assert value["message_template_id"] == int(payload["id"])
    assert value["message_template_language"] == "en_US"

    listing = await client.get(
        f"{sandbox.http}/{VERSION}/{WABA_ID}/message_templates", params={"name": name}, headers=AUTH
    )
    assert [t["status"] for t in listing.json()["data"]] == ["APPROVED"]
    duplicate = await create_template(client, sandbox, name)
    assert assert_meta_error(duplicate, 400, 100)["error_subcode"] == 2388024


async def test_rejected_template_trigger(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    name = f"reject_{uuid.uuid4().hex[:8]}"
    assert (await create_template(client, sandbox, name)).status_code == 200
    [hit] = await receiver.wait_for(template_event(name))
    value = verified(hit)["entry"][0]["changes"][0]["value"]
    assert (value["event"], value["reason"]) == ("REJECTED", "INVALID_FORMAT")
    refused = await send(client, sandbox, template_message("15551250000", name, "a", "b"))
    assert_meta_error(refused, 400, 132001)


async def test_template_validation(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    no_example = [{"type": "BODY", "text": "Hi {{1}}"}]
    bad = await create_template(client, sandbox, f"t_{uuid.uuid4().hex[:8]}", components=no_example)
    assert_meta_error(bad, 400, 100)
    bad_name = await create_template(client, sandbox, "Not Valid")
    assert_meta_error(bad_name, 400, 100)


async def test_template_message_is_accepted_and_statuses_are_signed(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver, approved: str
) -> None:
    response = await send(
        client, sandbox, template_message("+1 555 125 0001", approved, "Ada", "#7")
    )
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["messaging_product"] == "whatsapp"
    assert payload["contacts"] == [{"input": "+1 555 125 0001", "wa_id": "15551250001"}]
    wamid = payload["messages"][0]["id"]
    assert wamid.startswith("wamid.")

    hits = await receiver.wait_for(status_event(wamid), count=2)
    statuses = [verified(h)["entry"][0]["changes"][0]["value"]["statuses"][0] for h in hits]
    assert [s["status"] for s in statuses] == ["sent", "delivered"]
    assert all(s["recipient_id"] == "15551250001" and s["timestamp"].isdigit() for s in statuses)
    value = verified(hits[0])["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == PHONE_ID
    assert verified(hits[0])["entry"][0]["changes"][0]["field"] == "messages"

    records = (
        await client.get(
            f"{sandbox.http}/sandbox/api/messages",
            params={"channel": "whatsapp", "to": "+15551250001"},
        )
    ).json()
    assert records["messages"][0]["body"] == "Hi Ada, your order #7 has shipped."
    assert records["messages"][0]["provider_message_id"] == wamid


async def test_template_errors(
    client: httpx.AsyncClient, sandbox: SandboxProcess, approved: str
) -> None:
    unknown = await send(client, sandbox, template_message("15551250002", "no_such_template", "x"))
    error = assert_meta_error(unknown, 400, 132001)
    assert error["message"] == "(#132001) Template name does not exist in the translation"
    wrong_count = await send(client, sandbox, template_message("15551250002", approved, "only one"))
    assert_meta_error(wrong_count, 400, 132000)
    bad_token = await send(
        client, sandbox, text_message("15551250002"), headers={"Authorization": "Bearer wrong"}
    )
    assert_meta_error(bad_token, 401, 190)
    bad_to = await send(client, sandbox, text_message("call-me-maybe"))
    assert_meta_error(bad_to, 400, 131009)
    no_product = await client.post(
        f"{sandbox.http}/{VERSION}/{PHONE_ID}/messages",
        json=text_message("15551250002"),
        headers=AUTH,
    )
    assert_meta_error(no_product, 400, 100)


async def test_phone_triggers(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    assert_meta_error(await send(client, sandbox, text_message("15005550001")), 400, 131026)
    assert_meta_error(await send(client, sandbox, text_message("15005550004")), 400, 131050)

    transient = text_message("15005550202")
    codes = [(await send(client, sandbox, transient)).status_code for _ in range(3)]
    assert codes == [503, 503, 200]

    limited = text_message("15005550429")
    first = await send(client, sandbox, limited)
    assert_meta_error(first, 429, 130429)
    assert first.headers["Retry-After"] == "1"
    assert (await send(client, sandbox, limited)).status_code == 200

    failing = await send(client, sandbox, text_message("15005550301"))
    wamid = failing.json()["messages"][0]["id"]
    hits = await receiver.wait_for(status_event(wamid), count=2)
    statuses = [verified(h)["entry"][0]["changes"][0]["value"]["statuses"][0] for h in hits]
    assert [s["status"] for s in statuses] == ["sent", "failed"]
    assert statuses[1]["errors"][0]["code"] == 131026

    silent = await send(client, sandbox, text_message("15005550302"))
    silent_id = silent.json()["messages"][0]["id"]
    assert await receiver.wait_for(status_event(silent_id), within=0.8) == []


async def test_webhook_verification_handshake(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    result = (await client.post(f"{sandbox.http}/sandbox/api/whatsapp/verify-webhook")).json()
    assert result["ok"] is True and result["response"] == result["challenge"]
    [hit] = receiver.matching(
        lambda r: r.method == "GET" and f"hub.challenge={result['challenge']}" in r.query
    )
    assert "hub.verify_token=sandbox-verify-token" in hit.query


async def test_a_sent_message_cannot_be_looked_up(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    # The Cloud API reports status only by webhook; a lost answer cannot be asked about.
    sent = await send(client, sandbox, text_message("+15551250001"))
    assert sent.status_code == 200, sent.text
    wamid = sent.json()["messages"][0]["id"]
    # Its status arrives the only way Meta gives it: the webhooks.
    assert len(await receiver.wait_for(lambda r: wamid.encode() in r.body, count=2)) == 2
    for path, status in (
        (f"/{VERSION}/{wamid}", 404),
        (f"/{VERSION}/{PHONE_ID}/messages/{wamid}", 404),
        (f"/{VERSION}/{PHONE_ID}/messages", 405),  # the edge only takes POST (a send)
    ):
        response = await client.get(sandbox.http + path, headers=AUTH)
        assert response.status_code == status, path
        assert wamid not in response.text
