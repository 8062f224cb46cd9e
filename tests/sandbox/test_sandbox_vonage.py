"""Vonage SMS API: send answers, error statuses, triggers and signed delivery receipts."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

import httpx

from .helpers import Receiver, SandboxProcess

KEY = "sandboxkey"
SECRET = "sandbox-vonage-secret"
SIGNATURE_SECRET = "sandbox-vonage-signature-secret"


def expected_vonage_sig(secret: str, params: dict[str, str]) -> str:
    # developer.vonage.com "Signing Messages": sorted params except sig, each
    # "&k=v" with & and = in values turned into _, then (SHA-256 HMAC method)
    # HMAC the string with the signature secret.
    signed = "".join(
        "&" + k + "=" + v.replace("&", "_").replace("=", "_")
        for k, v in sorted(params.items())
        if k != "sig"
    )
    return hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()


async def send(
    client: httpx.AsyncClient,
    sandbox: SandboxProcess,
    extra: dict[str, str] | None = None,
    *,
    as_json: bool = False,
    **fields: str,
) -> dict[str, Any]:
    params = {"api_key": KEY, "api_secret": SECRET, "from": "Clarion", **(extra or {}), **fields}
    if as_json:
        response = await client.post(sandbox.http + "/sms/json", json=params)
    else:
        response = await client.post(sandbox.http + "/sms/json", data=params)
    # The SMS API answers 200 even for errors; the status is in the body.
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["message-count"] == "1"
    answer: dict[str, Any] = body["messages"][0]
    return answer


async def test_send_then_signed_delivered_receipt(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    text = f"hello {uuid.uuid4().hex}"
    fields = {"to": "14155550100", "text": text, "client-ref": "ref-1"}
    answer = await send(client, sandbox, fields)
    assert answer["status"] == "0"
    assert answer["to"] == "14155550100"
    assert answer["client-ref"] == "ref-1"
    message_id = answer["message-id"]
    uuid.UUID(message_id)
    hooks = await receiver.wait_for(
        lambda r: r.path == "/hooks/vonage" and r.form().get("messageId") == message_id
    )
    assert len(hooks) == 1
    dlr = hooks[0].form()
    assert dlr["status"] == "delivered"
    assert dlr["err-code"] == "0"
    assert dlr["msisdn"] == "14155550100"
    assert dlr["to"] == "Clarion"
    assert dlr["client-ref"] == "ref-1"
    assert dlr["api-key"] == KEY
    assert dlr["timestamp"].isdigit() and dlr["nonce"]
    assert dlr["sig"].lower() == expected_vonage_sig(SIGNATURE_SECRET, dlr)
    # A changed field no longer matches.
    assert dlr["sig"].lower() != expected_vonage_sig(SIGNATURE_SECRET, {**dlr, "status": "failed"})
    found = (
        await client.get(f"{sandbox.http}/sandbox/api/messages", params={"provider": "vonage"})
    ).json()["messages"]
    assert any(m["provider_message_id"] == message_id and m["body"] == text for m in found)


async def test_json_body_and_per_message_callback(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    answer = await send(
        client,
        sandbox,
        as_json=True,
        to="+14155550101",
        text="json",
        callback=receiver.url("/hooks/vonage-own"),
    )
    assert answer["status"] == "0"
    hooks = await receiver.wait_for(
        lambda r: (
            r.path == "/hooks/vonage-own" and r.form().get("messageId") == answer["message-id"]
        )
    )
    assert len(hooks) == 1


async def test_error_statuses(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    bad_key = await client.post(
        sandbox.http + "/sms/json",
        data={"api_key": KEY, "api_secret": "wrong", "from": "C", "to": "14155550100", "text": "x"},
    )
    assert bad_key.json()["messages"][0] == {"status": "4", "error-text": "Bad Credentials"}
    missing = await send(client, sandbox, text="no to")
    assert missing["status"] == "2"
    assert (await send(client, sandbox, to="abc", text="x"))["status"] == "3"
    assert (await send(client, sandbox, to="15005550001", text="x"))["status"] == "3"
    assert (await send(client, sandbox, to="15005550004", text="x"))["status"] == "7"
    callback = await send(client, sandbox, to="14155550100", text="x", callback="nope")
    assert callback["status"] == "23"


async def test_transient_then_success_and_failed_receipt(
    client: httpx.AsyncClient, sandbox: SandboxProcess, receiver: Receiver
) -> None:
    text = f"retry {uuid.uuid4().hex}"
    assert (await send(client, sandbox, to="15005550202", text=text))["status"] == "5"
    assert (await send(client, sandbox, to="15005550202", text=text))["status"] == "5"
    assert (await send(client, sandbox, to="15005550202", text=text))["status"] == "0"
    assert (await send(client, sandbox, to="15005550429", text=text))["status"] == "1"
    failed = await send(client, sandbox, to="15005550301", text=text)
    hooks = await receiver.wait_for(
        lambda r: r.path == "/hooks/vonage" and r.form().get("messageId") == failed["message-id"]
    )
    assert hooks and hooks[0].form()["status"] == "failed"
    assert hooks[0].form()["err-code"] == "3"
    requests = (
        await client.get(
            f"{sandbox.http}/sandbox/api/requests",
            params={"provider": "vonage", "to": "+15005550202"},
        )
    ).json()["requests"]
    outcomes = [r["outcome"] for r in requests if r["operation"] == "sms.send"]
    assert outcomes[:3] == ["accepted", "transient", "transient"]
