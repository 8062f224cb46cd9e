"""Tenant status webhooks through Envoy, received by a real HTTP server this
test starts on 127.0.0.1. Its own stack, with private webhooks allowed (the
receiver is on loopback) and a short retry schedule; the SSRF refusals run
on the shared stack, where private webhooks are off (test_webhook_ssrf.py)."""

import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from runner.stack import Ports, Stack
from tests.conftest import TEST_SETTINGS, Tenant, signup
from tests.e2e.test_metrics import Samples, scrape
from tests.e2e.waiting import wait_for, wait_for_status

SCHEDULE = [0, 0.3, 0.3, 0.3]
TIMEOUT_SECONDS = 5
DISABLE_AFTER = 2
CONCURRENCY = 8


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        data_dir=tmp_path_factory.mktemp("webhooks"),
        ports=Ports.free(),
        overrides={
            **TEST_SETTINGS,
            "CLARION_ALLOW_PRIVATE_WEBHOOKS": "true",
            "CLARION_WEBHOOK_RETRY_SCHEDULE": json.dumps(SCHEDULE),
            "CLARION_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            "CLARION_WEBHOOK_DISABLE_AFTER_FAILED_EVENTS": str(DISABLE_AFTER),
            "CLARION_WEBHOOK_POLL_SECONDS": "0.1",
            # Few slots in all, so that a dead endpoint could take them all
            # but for its own bound (4).
            "CLARION_WEBHOOK_CONCURRENCY": str(CONCURRENCY),
        },
        headless=True,
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def api(platform: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.api_url, timeout=30) as client:
        yield client


@pytest.fixture
def tenant(api: httpx.Client) -> Tenant:
    return signup(api)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """What came in, and how each path answers: "/ok/…" 200, "/fail/…" 500,
    "/fail3/…" 500 to the first three requests of each webhook-id, "/hang/…"
    no answer for 30 s, "/switch/…" 500 until `healthy` is set."""

    url: str
    received: list[Received] = field(default_factory=list)
    healthy: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    tries: Counter[str] = field(default_factory=Counter)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def events(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.at(path)]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            kind = self.path.split("/")[1]
            with state.lock:
                state.received.append(
                    Received(self.path, dict(self.headers.items()), body, time.monotonic())
                )
                state.tries[f"{self.path} {self.headers['webhook-id']}"] += 1
                tries = state.tries[f"{self.path} {self.headers['webhook-id']}"]
            if kind == "hang":
                time.sleep(30)
            ok = (
                kind == "ok"
                or (kind == "fail3" and tries > 3)
                or (kind == "switch" and state.healthy)
            )
            self.send_response(200 if ok else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


def register(tenant: Tenant, url: str, types: list[str]) -> dict[str, Any]:
    response = tenant.post("/api/v1/webhooks", {"url": url, "event_types": types})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["secret"].startswith("whsec_")
    return body


def send_sms(tenant: Tenant, phone: str | None = None) -> str:
    phone = phone or f"+1415556{secrets.randbelow(10_000):04d}"
    response = tenant.post(
        "/api/v1/notifications/send",
        {"recipient": {"phone": phone}, "notification": {"channels": ["sms"], "body": "hi"}},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["notification_id"])


def path(kind: str) -> str:
    return f"/{kind}/{secrets.token_hex(4)}"


ALL_DELIVERY = ["delivery.queued", "delivery.sent", "delivery.delivered", "delivery.failed"]


def test_each_status_change_arrives_signed_and_in_order(tenant: Tenant, receiver: Receiver) -> None:
    where = path("ok")
    created = register(tenant, receiver.url + where, ALL_DELIVERY)
    assert created["webhook"]["enabled"] is True
    notification_id = send_sms(tenant)
    wait_for_status(tenant, notification_id, {"delivered"})

    def all_three() -> list[Received] | None:
        got = receiver.at(where)
        return got if len(got) >= 3 else None

    requests = wait_for(all_three, timeout=20)
    wh = Webhook(created["secret"])
    events = [wh.verify(r.body, r.headers) for r in requests]
    assert [e["type"] for e in events] == ["delivery.queued", "delivery.sent", "delivery.delivered"]
    for event in events:
        assert event["data"]["notification_id"] == notification_id
        assert event["data"]["channel"] == "sms"
        assert event["timestamp"].endswith("Z")
    assert events[1]["data"]["provider"] == "twilio"
    assert len({r.headers["webhook-id"] for r in requests}) == 3
    for r in requests:
        assert r.headers["webhook-signature"].startswith("v1,")
        assert abs(int(r.headers["webhook-timestamp"]) - time.time()) < 60
    # Nothing else for this notification.
    time.sleep(1)
    assert len(receiver.at(where)) == 3


def test_a_failed_delivery_is_reported_with_its_reason(tenant: Tenant, receiver: Receiver) -> None:
    where = path("ok")
    register(tenant, receiver.url + where, ["delivery.failed"])
    notification_id = send_sms(tenant, "+15005550001")
    wait_for_status(tenant, notification_id, {"failed"})
    (event,) = wait_for(lambda: receiver.events(where), timeout=20)
    assert event["type"] == "delivery.failed"
    assert "invalid phone number" in event["data"]["reason"]


def test_three_500s_then_the_fourth_try_delivers(tenant: Tenant, receiver: Receiver) -> None:
    where = path("fail3")
    created = register(tenant, receiver.url + where, ["delivery.queued"])
    webhook_id = created["webhook"]["webhook_id"]
    send_sms(tenant)

    def four() -> list[dict[str, Any]] | None:
        got: list[dict[str, Any]] = tenant.get(f"/api/v1/webhooks/{webhook_id}/attempts").json()[
            "attempts"
        ]
        return got if len(got) == 4 else None

    attempts = wait_for(four, timeout=20)
    # Newest first.
    assert [a["attempt"] for a in attempts] == [4, 3, 2, 1]
    assert [a["http_status"] for a in attempts] == [200, 500, 500, 500]
    assert len({a["event_id"] for a in attempts}) == 1
    assert "next_retry_at" not in attempts[0] and attempts[1]["next_retry_at"]
    assert len(receiver.at(where)) == 4
    page = tenant.get(f"/api/v1/webhooks/{webhook_id}/attempts?page_size=3").json()
    assert len(page["attempts"]) == 3 and page["next_page_token"]
    rest = tenant.get(
        f"/api/v1/webhooks/{webhook_id}/attempts?page_size=3&page_token={page['next_page_token']}"
    ).json()
    assert [a["attempt"] for a in rest["attempts"]] == [1]


def test_after_rotation_both_secrets_sign(tenant: Tenant, receiver: Receiver) -> None:
    where = path("ok")
    created = register(tenant, receiver.url + where, ["delivery.queued"])
    webhook_id = created["webhook"]["webhook_id"]
    rotated = tenant.post(f"/api/v1/webhooks/{webhook_id}:rotate-secret", {})
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != created["secret"]
    assert rotated.json()["webhook"]["previous_secret_expires_at"]
    send_sms(tenant)
    (request,) = wait_for(lambda: receiver.at(where), timeout=20)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (created["secret"], new_secret):
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "delivery.queued"


def test_failing_endpoint_is_disabled_then_replayed_and_enabled(
    tenant: Tenant, receiver: Receiver
) -> None:
    where = path("switch")
    created = register(tenant, receiver.url + where, ["delivery.queued"])
    webhook_id = created["webhook"]["webhook_id"]
    for _ in range(DISABLE_AFTER):
        send_sms(tenant)

    def disabled() -> dict[str, Any] | None:
        body: dict[str, Any] = tenant.get(f"/api/v1/webhooks/{webhook_id}").json()
        return body if not body["enabled"] else None

    webhook = wait_for(disabled, timeout=30)
    assert "2 events in a row failed every attempt" in webhook["disabled_reason"]
    assert "HTTP 500" in webhook["disabled_reason"]
    assert len(receiver.at(where)) == DISABLE_AFTER * len(SCHEDULE)
    # Disabled: new events are not queued for it.
    send_sms(tenant)
    time.sleep(1)
    assert len(receiver.at(where)) == DISABLE_AFTER * len(SCHEDULE)

    enabled = tenant.post(f"/api/v1/webhooks/{webhook_id}:enable", {})
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["enabled"] is True and enabled.json()["disabled_reason"] == ""
    receiver.healthy = True
    event_id = receiver.at(where)[0].headers["webhook-id"]
    replayed = tenant.post(f"/api/v1/webhooks/{webhook_id}/events/{event_id}:replay", {})
    assert replayed.status_code == 200, replayed.text

    def redelivered() -> dict[str, Any] | None:
        attempts = tenant.get(f"/api/v1/webhooks/{webhook_id}/attempts").json()["attempts"]
        newest: dict[str, Any] = attempts[0]
        return newest if newest["http_status"] == 200 else None

    newest = wait_for(redelivered, timeout=20)
    assert newest["event_id"] == event_id and newest["attempt"] == 1
    assert receiver.at(where)[-1].headers["webhook-id"] == event_id
    unknown = tenant.post(f"/api/v1/webhooks/{webhook_id}/events/evt_{'0' * 24}:replay", {})
    assert unknown.status_code == 404


def test_a_dead_endpoint_does_not_delay_another_tenant(
    platform: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    noisy = signup(api)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        refused_port = sock.getsockname()[1]
    register(noisy, receiver.url + path("hang"), ALL_DELIVERY)
    register(noisy, f"http://127.0.0.1:{refused_port}/gone", ALL_DELIVERY)
    for _ in range(20):
        send_sms(noisy)

    # Operators see the backlog: the hanging endpoint's 3 events for each of
    # 20 SMS stay pending (those in flight too) while each attempt hangs.
    def backlog() -> Samples | None:
        samples = scrape(platform.ports.webhooks_metrics)
        pending = samples[("clarion_webhook_messages_pending", frozenset())]
        return samples if pending >= 20 * 3 else None

    gauges = wait_for(backlog, timeout=20)
    assert gauges[("clarion_webhook_backlog_query_success", frozenset())] == 1
    # The hanging endpoint now has 20 notifications' events due, more than
    # all the sender's slots, each attempt hanging until the timeout: were
    # it not held to its own 4 slots, the quiet tenant's event would wait
    # a timeout or more (3.7 s with a 2 s timeout, against 1.1 s with them).
    # Both endpoints are on one host (the receiver), as tenants' endpoints
    # at one SaaS receiver are: the host is no bottleneck either.
    quiet = signup(api)
    where = path("ok")
    register(quiet, receiver.url + where, ["delivery.queued"])
    started = time.monotonic()
    send_sms(quiet)
    (request,) = wait_for(lambda: receiver.at(where), timeout=20, interval=0.05)
    took = request.at - started
    assert took < TIMEOUT_SECONDS - 1, f"the quiet tenant's event took {took:.2f} s"


def test_bulk_rows_and_completion_produce_events(tenant: Tenant, receiver: Receiver) -> None:
    where = path("ok")
    created = register(tenant, receiver.url + where, ["delivery.sent", "bulk.completed"])
    phones = [f"+1415557{secrets.randbelow(10_000):04d}" for _ in range(3)]
    response = tenant.post(
        "/api/v1/notifications/bulk",
        {"channels": ["sms"], "body": "bulk hi", "recipients": [{"phone": p} for p in phones]},
    )
    assert response.status_code == 200, response.text
    bulk_id = response.json()["bulk_id"]

    def complete() -> list[dict[str, Any]] | None:
        events = receiver.events(where)
        done = any(e["type"] == "bulk.completed" for e in events)
        return events if done and len(events) >= 4 else None

    events = wait_for(complete, timeout=60, interval=0.5)
    wh = Webhook(created["secret"])
    for r in receiver.at(where):
        wh.verify(r.body, r.headers)
    sent = [e for e in events if e["type"] == "delivery.sent"]
    assert len(sent) == 3
    assert {e["data"]["bulk_id"] for e in sent} == {bulk_id}
    assert sorted(e["data"]["row_index"] for e in sent) == [0, 1, 2]
    (completed,) = [e for e in events if e["type"] == "bulk.completed"]
    assert completed["data"] == {"bulk_id": bulk_id, "total": 3, "accepted": 3, "refused": 0}


def test_endpoints_are_listed_and_isolated_per_tenant(
    api: httpx.Client, tenant: Tenant, receiver: Receiver
) -> None:
    first = register(tenant, receiver.url + path("ok"), ["delivery.sent"])
    second = register(tenant, receiver.url + path("ok"), ["alert.fired"])
    page = tenant.get("/api/v1/webhooks?page_size=1").json()
    assert [w["webhook_id"] for w in page["webhooks"]] == [second["webhook"]["webhook_id"]]
    assert "secret" not in page["webhooks"][0]
    rest = tenant.get(f"/api/v1/webhooks?page_size=1&page_token={page['next_page_token']}").json()
    assert [w["webhook_id"] for w in rest["webhooks"]] == [first["webhook"]["webhook_id"]]
    other = signup(api)
    webhook_id = first["webhook"]["webhook_id"]
    for response in (
        other.get(f"/api/v1/webhooks/{webhook_id}"),
        other.get(f"/api/v1/webhooks/{webhook_id}/attempts"),
        other.delete(f"/api/v1/webhooks/{webhook_id}"),
        other.post(f"/api/v1/webhooks/{webhook_id}:rotate-secret", {}),
        other.post(f"/api/v1/webhooks/{webhook_id}:enable", {}),
    ):
        assert response.status_code == 404, response.text
    assert other.get("/api/v1/webhooks").json()["webhooks"] == []
    deleted = tenant.delete(f"/api/v1/webhooks/{webhook_id}")
    assert deleted.status_code == 200
    assert tenant.get(f"/api/v1/webhooks/{webhook_id}").status_code == 404


def test_alert_rule_firing_and_resolving_arrive_signed(tenant: Tenant, receiver: Receiver) -> None:
    where = path("ok")
    created = register(tenant, receiver.url + where, ["alert.fired", "alert.resolved"])
    rule = tenant.post(
        "/api/v1/alert-rules",
        {
            "kind": "failure_rate",
            "channel": "sms",
            "threshold_percent": 50,
            "window": "10m",
            "min_sends": 1,
            "notify": {"channel": "email", "to": "oncall@example.com"},
        },
    ).json()
    # Refused by Twilio: 100% failed, so the rule fires.
    wait_for_status(tenant, send_sms(tenant, "+15005550001"), {"failed"})
    wait_for(lambda: receiver.at(where), timeout=30)
    # Two deliveries bring it to 33%: resolved.
    for _ in range(2):
        wait_for_status(tenant, send_sms(tenant), {"delivered"})
    requests = wait_for(lambda: (got := receiver.at(where))[1:] and got, timeout=30)
    wh = Webhook(created["secret"])
    fired, resolved = (wh.verify(r.body, r.headers) for r in requests)
    assert (fired["type"], resolved["type"]) == ("alert.fired", "alert.resolved")
    history = tenant.get(f"/api/v1/alert-rules/{rule['rule_id']}/history").json()["events"]
    for event, entry in zip((resolved, fired), history, strict=True):
        assert event["data"]["rule_id"] == rule["rule_id"]
        assert event["data"]["name"] == "failure rate of sms above 50% over 10m"
        assert event["data"]["notification_id"] == entry["notification_id"]
        assert event["data"]["value"] == entry["value"]
        assert event["data"]["summary"] == entry["summary"]
    assert fired["data"]["value"] == 100.0 and fired["data"]["failed"] == 1
