"""SIGKILL of Temporal while single sends and a bulk are in flight and more
keep arriving: every request is still answered 200 (sends, a bulk and a
WhatsApp template version are stored with their workflow start in the
outbox), the supervisor restarts Temporal, and afterwards every accepted
notification is final, the template reviewed, and the sandbox received each
message exactly once."""

import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from runner.stack import Stack
from tests.conftest import Tenant, signup
from tests.e2e.test_templates import create, wait_approved
from tests.e2e.waiting import wait_for, wait_for_status
from tests.faults.conftest import StartStack, creates_by_number

FINAL = {"delivered", "failed"}
BULK_ROWS = 40


def _number(kind: int, index: int) -> str:
    # +1 415 6kk nnnn: unique per message, valid for phonenumbers, no sandbox trigger.
    return f"+1415{600 + kind}{index:04d}"


class Sender:
    """Single SMS sends, four at a time, until stopped; every answer kept."""

    def __init__(self, tenant: Tenant) -> None:
        self._tenant = tenant
        self._stop = threading.Event()
        self._count = 0
        self._lock = threading.Lock()
        self.answers: list[tuple[str, int, str]] = []  # (phone, status, notification_id)
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> "Sender":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in range(4):
                pool.submit(self._loop)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._count += 1
                phone = _number(1, self._count)
            response = self._tenant.post(
                "/api/v1/notifications/send",
                {"recipient": {"phone": phone}, "notification": {"channels": ["sms"],
                 "body": "outage"}, "idempotency_key": f"outage-{phone}"},
            )  # fmt: skip
            notification_id = response.json().get("notification_id", "")
            with self._lock:
                self.answers.append((phone, response.status_code, notification_id))
            time.sleep(0.05)


def _bulk(tenant: Tenant, kind: int) -> str:
    response = tenant.post(
        "/api/v1/notifications/bulk",
        {
            "channels": ["sms"],
            "body": "outage bulk",
            "recipients": [{"phone": _number(kind, i)} for i in range(BULK_ROWS)],
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["bulk_id"])


def _kill_temporal(platform: Stack) -> None:
    before = platform.pid("temporal")
    os.kill(before, signal.SIGKILL)
    wait_for(lambda: platform.pid("temporal") != before, timeout=30)


def _bulk_finished(tenant: Tenant, bulk_id: str) -> dict[str, Any] | None:
    body: dict[str, Any] = tenant.get(f"/api/v1/notifications/bulk/{bulk_id}").json()
    counts = body["counts"]
    done = counts["delivered"] + counts["failed"] == body["total"]
    return body if done and body.get("finished_at") else None


def test_temporal_killed_mid_traffic_loses_nothing_and_sends_each_message_once(
    own_stack: StartStack,
) -> None:
    platform = own_stack(CLARION_DISPATCH_SWEEP_SECONDS="1", CLARION_WORKFLOW_RECHECK_SECONDS="10")
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        tenant = signup(api)
        with Sender(tenant) as sender:
            time.sleep(2)
            in_flight = _bulk(tenant, 2)
            _kill_temporal(platform)
            # Temporal is down or starting: everything is still accepted.
            during = _bulk(tenant, 3)
            template = create(
                tenant, "outage_notice", {"whatsapp": {"body": "Hi {{name}}", "language": "en_US"}}
            )
            assert template["whatsapp_approval"]["status"] == "pending"
            platform.wait_up("temporal", timeout=60)
            time.sleep(3)
        statuses = Counter(status for _, status, _ in sender.answers)
        assert statuses == Counter({200: len(sender.answers)}), statuses
        accepted = [(phone, n) for phone, _, n in sender.answers]
        for _, notification_id in accepted:
            wait_for_status(tenant, notification_id, FINAL, timeout=180)
        bulks = [wait_for(lambda b=b: _bulk_finished(tenant, b), timeout=180, interval=1)
                 for b in (in_flight, during)]  # fmt: skip
        assert wait_approved(tenant, "outage_notice")["whatsapp_approval"]["status"] != "pending"

    creates = creates_by_number(platform)
    single_copies = Counter(creates[phone] for phone, _ in accepted)
    bulk_copies = Counter(creates[_number(k, i)] for k in (2, 3) for i in range(BULK_ROWS))
    print(
        f"\nTemporal SIGKILLed: {len(accepted)} single sends and 2 x {BULK_ROWS}-row bulks "
        f"accepted; creates per single send {dict(single_copies)}, per bulk row "
        f"{dict(bulk_copies)}"
    )
    assert all(b["counts"]["delivered"] == BULK_ROWS for b in bulks), bulks
    assert single_copies == Counter({1: len(accepted)})
    assert bulk_copies == Counter({1: 2 * BULK_ROWS})
