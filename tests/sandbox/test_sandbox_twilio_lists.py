"""Twilio list APIs (Messages.json, Calls.json): filters, paging and errors."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .helpers import SID, TOKEN, SandboxProcess
from .test_sandbox_sms import MESSAGES, assert_twilio_error, body, send
from .test_sandbox_voice import CALLS, call, twiml


def fresh_number() -> str:
    # Unique per test so the shared sandbox's other messages never match.
    return f"+1555{random.randrange(10**6, 10**7)}"


async def listing(
    client: httpx.AsyncClient, sandbox: SandboxProcess, path: str, **params: str
) -> httpx.Response:
    return await client.get(sandbox.http + path, params=params, auth=(SID, TOKEN))


async def wait_listed(
    client: httpx.AsyncClient,
    sandbox: SandboxProcess,
    path: str,
    key: str,
    count: int,
    **params: str,
) -> list[dict[str, Any]]:
    """List until `count` items match (date_sent/start_time appear shortly after the create)."""
    deadline = time.monotonic() + 10
    while True:
        response = await listing(client, sandbox, path, **params)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()[key]
        if len(items) >= count or time.monotonic() > deadline:
            return items
        await asyncio.sleep(0.05)


def utc_day(offset: int = 0) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).strftime("%Y-%m-%d")


async def test_messages_list_filters_by_to_and_date_sent_newest_first(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    to, other = fresh_number(), fresh_number()
    started = datetime.now(UTC) - timedelta(seconds=2)
    created = []
    for n in range(3):
        response = await send(client, sandbox, To=to, From="+15005550006", Body=body(f"n{n}"))
        assert response.status_code == 201
        created.append(response.json())
    await send(client, sandbox, To=other, From="+15005550006", Body=body("other"))

    await wait_listed(client, sandbox, MESSAGES, "messages", 3, To=to, DateSent=utc_day())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # settle, so list and fetch see the same state
        items = (await listing(client, sandbox, MESSAGES, To=to, DateSent=utc_day())).json()
        if {m["status"] for m in items["messages"]} == {"delivered"}:
            break
        await asyncio.sleep(0.05)
    items = items["messages"]
    assert [m["sid"] for m in items] == [m["sid"] for m in reversed(created)]
    for item in items:
        fetched = (await client.get(sandbox.http + item["uri"], auth=(SID, TOKEN))).json()
        assert item == fetched  # the same Message resource that fetch returns
        assert set(item) == set(created[0])  # and that create returns
        assert "status_callback" not in item
        # RFC 2822, as Twilio writes it; date_sent is set once the message is sent.
        assert item["date_sent"].endswith("+0000") and item["date_created"].endswith("+0000")

    since = started.strftime("%Y-%m-%dT%H:%M:%SZ")
    for params, expected in [
        ({"DateSent>": since}, 3),
        ({"DateSent<": since}, 0),
        ({"DateSent>": utc_day()}, 3),  # on or after the day
        ({"DateSent<": utc_day()}, 3),  # on or before the day
        ({"DateSent>": utc_day(1)}, 0),
        ({"DateSent<": utc_day(-1)}, 0),
        ({"DateSent": utc_day(-1)}, 0),
        ({"From": "+15005550006"}, 3),
        ({"From": "+15005559999"}, 0),
    ]:
        response = await listing(client, sandbox, MESSAGES, To=to, **params)
        assert len(response.json()["messages"]) == expected, params
    everyone = (await listing(client, sandbox, MESSAGES, PageSize="1000")).json()["messages"]
    assert {m["to"] for m in everyone} >= {to, other}


async def test_messages_list_pages_with_next_page_uri(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    to = fresh_number()
    text = body("same body twice")  # repeated creates are listed as two messages
    sids = []
    for n in range(5):
        response = await send(
            client, sandbox, To=to, From="+15005550006", Body=text if n < 2 else body(f"p{n}")
        )
        sids.append(response.json()["sid"])
    await wait_listed(client, sandbox, MESSAGES, "messages", 5, To=to, DateSent=utc_day())

    first = await listing(client, sandbox, MESSAGES, To=to, DateSent=utc_day(), PageSize="2")
    page = first.json()
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 2, 0, 1)
    assert page["previous_page_uri"] is None
    assert page["uri"].startswith(f"/2010-04-01/Accounts/{SID}/Messages.json?")
    assert "PageSize=2" in page["first_page_uri"] and "Page=0" in page["first_page_uri"]
    seen = [m["sid"] for m in page["messages"]]
    pages = 1
    while page["next_page_uri"]:
        assert "PageToken=PA" in page["next_page_uri"]
        response = await client.get(sandbox.http + page["next_page_uri"], auth=(SID, TOKEN))
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert page["previous_page_uri"] is not None and page["page"] == pages - 1
        seen += [m["sid"] for m in page["messages"]]
    assert pages == 3 and seen == list(reversed(sids))
    assert [m["body"] for m in page["messages"]] == [text]

    back = await client.get(sandbox.http + page["previous_page_uri"], auth=(SID, TOKEN))
    assert [m["sid"] for m in back.json()["messages"]] == seen[2:4]
    default = (await listing(client, sandbox, MESSAGES, To=to)).json()
    assert default["page_size"] == 50 and len(default["messages"]) == 5


async def test_list_refuses_bad_parameters_and_credentials(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    for params, field in [
        ({"PageSize": "0"}, "PageSize"),
        ({"PageSize": "1001"}, "PageSize"),
        ({"PageSize": "many"}, "PageSize"),
        ({"DateSent": "yesterday"}, "DateSent"),
        ({"DateSent>": "2024-13-40"}, "DateSent>"),
        ({"PageToken": "PAnot-a-sid"}, "PageToken"),
    ]:
        response = await listing(client, sandbox, MESSAGES, **params)
        assert_twilio_error(response, 400, 20422)
        assert field in response.json()["message"], params
    bad_time = await listing(client, sandbox, CALLS, **{"StartTime<": "soon"})
    assert_twilio_error(bad_time, 400, 20422)
    assert "StartTime<" in bad_time.json()["message"]

    wrong = await client.get(sandbox.http + MESSAGES, auth=(SID, "wrong"))
    assert_twilio_error(wrong, 401, 20003)
    assert_twilio_error(await client.get(sandbox.http + CALLS), 401, 20003)
    other = f"/2010-04-01/Accounts/AC{'2' * 32}/Calls.json"
    assert_twilio_error(await client.get(sandbox.http + other, auth=(SID, TOKEN)), 404, 20404)


async def test_calls_list_filters_by_to_status_and_start_time(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    to = fresh_number()
    sids = []
    for n in range(2):
        response = await call(client, sandbox, To=to, Twiml=twiml(f"Call {n}."))
        assert response.status_code == 201, response.text
        sids.append(response.json()["sid"])
    calls = await wait_listed(
        client, sandbox, CALLS, "calls", 2, To=to, Status="completed", StartTime=utc_day()
    )
    assert [c["sid"] for c in calls] == list(reversed(sids))
    for item in calls:
        fetched = (await client.get(sandbox.http + item["uri"], auth=(SID, TOKEN))).json()
        assert item == fetched and item["start_time"].endswith("+0000")
    for params, expected in [
        ({}, 2),
        ({"Status": "busy"}, 0),
        ({"StartTime>": utc_day(1)}, 0),
        ({"StartTime<": utc_day()}, 2),
        ({"From": "+15005550006"}, 2),
    ]:
        response = await listing(client, sandbox, CALLS, To=to, **params)
        assert "messages" not in response.json()
        assert len(response.json()["calls"]) == expected, params
    log = (
        await client.get(
            f"{sandbox.http}/sandbox/api/requests", params={"to": to, "outcome": "read"}
        )
    ).json()["requests"]
    assert log and {r["operation"] for r in log} == {"calls.list"}
