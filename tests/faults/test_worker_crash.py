"""SIGKILL of the worker while single sends and a bulk are in flight: the
supervisor restarts it, every notification ends final, and the sandbox, which
counts every create request, received each message exactly once.

Sizes can be raised for a closing-note run, e.g.
FAULT_SINGLE_SENDS=300 FAULT_BULK_ROWS=2000 pytest -s tests/faults/test_worker_crash.py"""

import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import psycopg

from tests.conftest import Tenant, signup
from tests.e2e.waiting import wait_for
from tests.faults.conftest import StartStack, kill_and_wait_for_restart, sandbox_requests

SINGLE_SENDS = int(os.environ.get("FAULT_SINGLE_SENDS", "120"))
BULK_ROWS = int(os.environ.get("FAULT_BULK_ROWS", "600"))
# The sandbox answers this number after 3 s, so some calls are in flight
# when the worker dies: the provider has the message, the worker never heard.
SLOW_NUMBER = "+15005550303"
FINAL = {"delivered", "failed"}


def _number(kind: int, index: int) -> str:
    # +1 415 7kk nnnn: unique per send, valid for phonenumbers, no sandbox trigger.
    return f"+1415{700 + kind}{index:04d}"


def _single_sends(tenant: Tenant, run: str) -> list[tuple[str, str, str]]:
    """(notification_id, to, body) of every send answered 200; a third go to
    the slow number, each with its own body so that copies can be counted."""

    def send(index: int) -> tuple[str, str, str] | None:
        slow = index % 3 == 0
        to = SLOW_NUMBER if slow else _number(1, index)
        body = f"crash {run} single {index}"
        response = tenant.post(
            "/api/v1/notifications/send",
            {"recipient": {"phone": to}, "notification": {"channels": ["sms"], "body": body}},
        )
        assert response.status_code == 200, response.text
        return response.json()["notification_id"], to, body

    with ThreadPoolExecutor(max_workers=4) as pool:
        sent = [r for r in pool.map(send, range(SINGLE_SENDS)) if r]
    return sent


def _final(tenant: Tenant, notification_id: str) -> dict[str, Any] | None:
    body: dict[str, Any] = tenant.get(f"/api/v1/notifications/{notification_id}").json()
    return body if body["status"] in FINAL else None


def test_worker_killed_twice_during_sends_and_a_bulk_sends_each_message_once(
    own_stack: StartStack,
) -> None:
    # Receipts come late, so that only the attempt marks can tell what was sent.
    platform = own_stack(
        CLARION_PROVIDER_TIMEOUT_SECONDS="5",
        CLARION_DELIVERY_MAX_ATTEMPTS="6",
        SANDBOX_CALLBACK_DELAY="15",
    )
    run = str(int(time.time()))
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        tenant = signup(api)
        bulk = tenant.post(
            "/api/v1/notifications/bulk",
            {
                "channels": ["sms"],
                "body": f"crash {run} bulk",
                "recipients": [{"phone": _number(2, i)} for i in range(BULK_ROWS)],
            },
        )
        assert bulk.status_code == 200, bulk.text
        bulk_id = bulk.json()["bulk_id"]
        singles: list[tuple[str, str, str]] = []
        sender = threading.Thread(target=lambda: singles.extend(_single_sends(tenant, run)))
        sender.start()
        time.sleep(2)
        kill_and_wait_for_restart(platform, "worker")
        time.sleep(3)
        kill_and_wait_for_restart(platform, "worker")
        sender.join(timeout=300)
        assert not sender.is_alive()
        assert len(singles) == SINGLE_SENDS

        outcomes = [wait_for(partial(_final, tenant, n), timeout=180) for n, _, _ in singles]

        def bulk_done() -> dict[str, Any] | None:
            body: dict[str, Any] = tenant.get(f"/api/v1/notifications/bulk/{bulk_id}").json()
            counts = body["counts"]
            done = counts["delivered"] + counts["failed"] == body["total"]
            return body if done and body.get("finished_at") else None

        bulk_result = wait_for(bulk_done, timeout=240, interval=1)
    creates = [r for r in sandbox_requests(platform, channel="sms") if r["outcome"] == "accepted"]
    messages = httpx.get(
        f"{platform.sandbox_url}/sandbox/api/messages",
        params={"channel": "sms", "limit": "100000"},
        timeout=30,
    ).json()["messages"]
    by_body = Counter(m["body"] for m in messages)
    expected = [body for _, _, body in singles]
    single_copies = Counter(by_body[body] for body in expected)
    bulk_copies = Counter(
        Counter(m["to"] for m in messages if m["body"] == f"crash {run} bulk").values()
    )
    assert platform.database_url
    with psycopg.connect(platform.database_url) as db:
        reconciled, unknown = db.execute(
            "SELECT count(*) FILTER (WHERE detail LIKE '%no recorded outcome%'),"
            " count(*) FILTER (WHERE detail LIKE '%outcome unknown%')"
            " FROM delivery_events WHERE kind = 'attempt'"
        ).fetchone() or (0, 0)
        delivered = db.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
        ).fetchone()
    print(
        f"\n{SINGLE_SENDS} single SMS + {BULK_ROWS}-row bulk, worker SIGKILLed twice: "
        f"{len(creates)} creates for {SINGLE_SENDS + BULK_ROWS} messages; "
        f"copies per single send {dict(single_copies)}, per bulk row {dict(bulk_copies)}; "
        f"{reconciled} attempts reconciled after a crash, {unknown} without an answer"
    )
    assert all(o["status"] == "delivered" for o in outcomes), [
        (o["notification_id"], o["status"], o["deliveries"][0]["reason"])
        for o in outcomes
        if o["status"] != "delivered"
    ]
    assert bulk_result["counts"]["delivered"] == BULK_ROWS, bulk_result
    # Exactly one message per send and per bulk row, and no extra creates.
    assert single_copies == Counter({1: SINGLE_SENDS})
    assert bulk_copies == Counter({1: BULK_ROWS})
    assert len(creates) == SINGLE_SENDS + BULK_ROWS
    assert delivered == (SINGLE_SENDS + BULK_ROWS,)
