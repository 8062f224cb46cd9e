"""Slack Web API: conversations.open, chat.postMessage, conversations.history, errors, triggers."""

from __future__ import annotations

import json
import re
import time
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


def fresh_user() -> str:
    return "U0" + uuid.uuid4().hex[:9].upper()


async def history(
    client: httpx.AsyncClient, sandbox: SandboxProcess, **args: Any
) -> dict[str, Any]:
    response = await api(client, sandbox, "conversations.history", **args)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_metadata_round_trips_through_history(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    user = fresh_user()
    channel = (await api(client, sandbox, "conversations.open", users=user)).json()["channel"]["id"]
    before = time.time()
    first_meta = {"event_type": "clarion_delivery", "event_payload": {"delivery_id": "dlv_1"}}
    first = await api(
        client, sandbox, "chat.postMessage", channel=channel, text="one", metadata=first_meta
    )
    assert first.json()["ok"] is True
    # Form bodies carry metadata as a JSON string, as Slack's SDKs send it.
    second_meta = {"event_type": "clarion_delivery", "event_payload": {"delivery_id": "dlv_2"}}
    second = await client.post(
        f"{sandbox.http}/api/chat.postMessage",
        data={
            "token": SLACK_TOKEN,
            "channel": user,  # a user id posts to the same DM
            "text": "two",
            "metadata": json.dumps(second_meta),
        },
    )
    assert second.json()["ok"] is True and second.json()["channel"] == channel
    ts1, ts2 = first.json()["ts"], second.json()["ts"]
    assert before <= float(ts1) < float(ts2) <= time.time()

    found = await history(
        client, sandbox, channel=channel, oldest=str(before), include_all_metadata=True
    )
    assert found["ok"] is True and found["has_more"] is False
    assert [(m["ts"], m["text"]) for m in found["messages"]] == [(ts2, "two"), (ts1, "one")]
    assert [m["metadata"] for m in found["messages"]] == [second_meta, first_meta]
    for message in found["messages"]:
        assert message["type"] == "message" and message["bot_id"] and message["user"]
    plain = await history(client, sandbox, channel=channel, oldest=str(before))
    assert all("metadata" not in m for m in plain["messages"])

    # oldest/latest are exclusive unless inclusive is set.
    assert [
        m["ts"] for m in (await history(client, sandbox, channel=channel, oldest=ts1))["messages"]
    ] == [ts2]
    assert [
        m["ts"]
        for m in (await history(client, sandbox, channel=channel, oldest=ts1, inclusive=True))[
            "messages"
        ]
    ] == [ts2, ts1]
    assert [
        m["ts"] for m in (await history(client, sandbox, channel=channel, latest=ts2))["messages"]
    ] == [ts1]
    assert (await history(client, sandbox, channel=channel, oldest=str(time.time() + 5)))[
        "messages"
    ] == []


async def test_history_pages_with_cursor_and_shows_repeated_posts(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    user = fresh_user()
    channel = (await api(client, sandbox, "conversations.open", users=user)).json()["channel"]["id"]
    posted = [
        (await api(client, sandbox, "chat.postMessage", channel=channel, text="again")).json()["ts"]
        for _ in range(3)
    ]
    assert len(set(posted)) == 3  # Slack does not de-duplicate posts either
    page = await history(client, sandbox, channel=channel, limit=2)
    assert [m["ts"] for m in page["messages"]] == posted[:0:-1]
    assert page["has_more"] is True and page["response_metadata"]["next_cursor"]
    rest = await history(
        client, sandbox, channel=channel, limit=2, cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in rest["messages"]] == posted[:1]
    assert rest["has_more"] is False and rest["response_metadata"]["next_cursor"] == ""
    # GET with query arguments works too, as on Slack.
    fetched = await client.get(
        f"{sandbox.http}/api/conversations.history", params={"channel": channel}, headers=AUTH
    )
    assert [m["ts"] for m in fetched.json()["messages"]] == posted[::-1]


async def test_history_and_metadata_errors(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    user = fresh_user()
    channel = (await api(client, sandbox, "conversations.open", users=user)).json()["channel"]["id"]
    for args, error in [
        ({"channel": user}, "channel_not_found"),  # a user id is not a conversation here
        ({"channel": "D0NEVEROPENED"}, "channel_not_found"),
        ({}, "channel_not_found"),
        ({"channel": channel, "oldest": "yesterday"}, "invalid_ts_oldest"),
        ({"channel": channel, "latest": "-1"}, "invalid_ts_latest"),
        ({"channel": channel, "cursor": "not-a-cursor"}, "invalid_cursor"),
    ]:
        assert await history(client, sandbox, **args) == {"ok": False, "error": error}, args
    bad = await api(
        client,
        sandbox,
        "conversations.history",
        headers={"Authorization": "Bearer nope"},
        channel=channel,
    )
    assert bad.json() == {"ok": False, "error": "invalid_auth"}
    missing = await api(client, sandbox, "conversations.history", headers=None, channel=channel)
    assert missing.json() == {"ok": False, "error": "not_authed"}
    for metadata, error in [
        ("{not json", "invalid_metadata_format"),
        ([1, 2], "invalid_metadata_format"),
        ({"event_type": "x"}, "invalid_metadata_schema"),
        ({"event_type": "", "event_payload": {}}, "invalid_metadata_schema"),
    ]:
        posted = await api(
            client, sandbox, "chat.postMessage", channel=channel, text="x", metadata=metadata
        )
        assert posted.json() == {"ok": False, "error": error}, metadata
    assert (await history(client, sandbox, channel=channel))["messages"] == []
