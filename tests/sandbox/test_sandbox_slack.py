"""Slack Web API: conversations.open + chat.postMessage, errors and triggers."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from .helpers import SLACK_TOKEN, SandboxProcess

AUTH = {"Authorization": f"Bearer {SLACK_TOKEN}"}


async def api(
    client: httpx.AsyncClient,
    sandbox: SandboxProcess,
    method: str,
    headers: dict[str, str] | None = AUTH,
    **args: Any,
) -> httpx.Response:
    return await client.post(f"{sandbox.http}/api/{method}", json=args, headers=headers)


async def test_open_dm_and_post_message(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    opened = await api(client, sandbox, "conversations.open", users="U0ALICE01")
    assert opened.status_code == 200
    channel = opened.json()["channel"]["id"]
    assert opened.json()["ok"] is True and channel.startswith("D")
    again = await api(client, sandbox, "conversations.open", users="U0ALICE01")
    assert again.json()["channel"]["id"] == channel  # the same DM every time

    text = f"Build finished {uuid.uuid4().hex}"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    posted = await api(
        client, sandbox, "chat.postMessage", channel=channel, text=text, blocks=blocks
    )
    payload = posted.json()
    assert payload["ok"] is True and payload["channel"] == channel
    assert re.fullmatch(r"\d{10}\.\d{6}", payload["ts"])
    assert payload["message"]["text"] == text and payload["message"]["blocks"] == blocks

    records = (
        await client.get(
            f"{sandbox.http}/sandbox/api/messages", params={"channel": "slack", "to": "U0ALICE01"}
        )
    ).json()["messages"]
    assert records[0]["body"] == text and records[0]["provider_message_id"] == payload["ts"]
    assert records[0]["request"]["blocks"] == blocks


async def test_form_encoded_with_token_argument(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    response = await client.post(
        f"{sandbox.http}/api/chat.postMessage",
        data={"token": SLACK_TOKEN, "channel": "U0BOB0001", "text": "hi from a form"},
    )
    assert response.json()["ok"] is True
    assert response.json()["channel"].startswith("D")


async def test_auth_errors_are_http_200(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    bad = await api(
        client,
        sandbox,
        "chat.postMessage",
        headers={"Authorization": "Bearer nope"},
        channel="U0BOB0001",
        text="x",
    )
    assert (bad.status_code, bad.json()) == (200, {"ok": False, "error": "invalid_auth"})
    missing = await api(client, sandbox, "conversations.open", headers=None, users="U0BOB0001")
    assert missing.json() == {"ok": False, "error": "not_authed"}


async def test_unknown_user_and_channel(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    user = await api(client, sandbox, "conversations.open", users="UNOTFOUND")
    assert user.json() == {"ok": False, "error": "user_not_found"}
    for channel in ("UNOTFOUND", "CNOTFOUND", "D0NEVEROPENED", "not-a-channel"):
        posted = await api(client, sandbox, "chat.postMessage", channel=channel, text="x")
        assert posted.json() == {"ok": False, "error": "channel_not_found"}, channel
    empty = await api(client, sandbox, "chat.postMessage", channel="U0BOB0001")
    assert empty.json() == {"ok": False, "error": "no_text"}


async def test_rate_limit_trigger(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    channel = (await api(client, sandbox, "conversations.open", users="URATELIMIT")).json()
    text = f"rl {uuid.uuid4().hex}"
    first = await api(
        client, sandbox, "chat.postMessage", channel=channel["channel"]["id"], text=text
    )
    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    assert first.json() == {"ok": False, "error": "ratelimited"}
    second = await api(
        client, sandbox, "chat.postMessage", channel=channel["channel"]["id"], text=text
    )
    assert second.status_code == 200 and second.json()["ok"] is True


async def test_server_error_trigger(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    text = f"500 {uuid.uuid4().hex}"
    codes = [
        (await api(client, sandbox, "chat.postMessage", channel="UERROR500", text=text)).status_code
        for _ in range(3)
    ]
    assert codes == [500, 500, 200]
    log = (
        await client.get(
            f"{sandbox.http}/sandbox/api/requests", params={"channel": "slack", "to": "UERROR500"}
        )
    ).json()["requests"]
    assert [r["outcome"] for r in reversed(log)][-3:] == ["transient", "transient", "accepted"]
