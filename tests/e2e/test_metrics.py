"""Each process's /metrics moves by exactly what a tenant did through Envoy:
sends accepted and refused, an idempotency replay, deliveries by final
status, provider attempts by outcome, receipts and a forged one refused.

Its own stack with tenant labels on, so that no other test's leftover
retries or receipts can move these counters."""

import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from runner.stack import Ports, Stack
from tests.conftest import TEST_SETTINGS, Tenant, signup
from tests.e2e.test_bulk import BULK, wait_bulk_done
from tests.e2e.waiting import wait_for, wait_for_status

SEND = "/api/v1/notifications/send"
Samples = Counter[tuple[str, frozenset[tuple[str, str]]]]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        data_dir=tmp_path_factory.mktemp("metrics"),
        ports=Ports.free(),
        overrides={
            **TEST_SETTINGS,
            "CLARION_METRICS_TENANT_LABELS": "all",
            # The webhook receiver below is on loopback; two tries per event.
            "CLARION_ALLOW_PRIVATE_WEBHOOKS": "true",
            "CLARION_WEBHOOK_RETRY_SCHEDULE": "[0, 0.3]",
            "CLARION_WEBHOOK_POLL_SECONDS": "0.1",
        },
        headless=True,
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    """A tenant's webhook endpoint: 200 on /ok, 500 on anything else."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200 if self.path == "/ok" else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples: Samples = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] += sample.value
    return samples


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much every series of `name` whose labels include `labels` moved."""
    wanted = set(labels.items())
    return sum(after[key] - before[key] for key in after if key[0] == name and wanted <= key[1])


def by_label(
    before: Samples, after: Samples, name: str, label: str, **labels: str
) -> dict[str, float]:
    wanted = set(labels.items())
    totals: dict[str, float] = {}
    for key in after:
        if key[0] == name and wanted <= key[1] and after[key] != before[key]:
            value = dict(key[1])[label]
            totals[value] = totals.get(value, 0) + after[key] - before[key]
    return totals


def phone() -> str:
    return f"+1415556{secrets.randbelow(10_000):04d}"


def send_sms(tenant: Tenant, to: str, **extra: Any) -> httpx.Response:
    return tenant.post(
        SEND,
        {
            "recipient": {"phone": to},
            "notification": {"channels": ["sms"], "body": f"metrics {secrets.token_hex(4)}"},
            **extra,
        },
    )


def test_counters_move_by_exactly_the_sends_made(platform: Stack) -> None:
    p = platform.ports
    processes = {
        "api": p.api_metrics,
        "bulk": p.bulk_metrics,
        "callbacks": p.callbacks_metrics,
        "worker": p.worker_metrics,
    }
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        tenant = signup(api)
        t = tenant.tenant_id
        before = {name: scrape(port) for name, port in processes.items()}

        # Two plain SMS (one with an idempotency key, then replayed), one that
        # fails twice with 503 before Twilio takes it, one Twilio refuses.
        first = send_sms(tenant, phone(), idempotency_key="metrics-once")
        replay_body = first.request.content
        replay = api.post(SEND, content=replay_body, headers=tenant.headers)
        assert replay.status_code == 200 and replay.json() == first.json()
        ids = [first.json()["notification_id"]]
        for to in (phone(), "+15005550202", "+15005550001"):
            response = send_sms(tenant, to)
            assert response.status_code == 200, response.text
            ids.append(response.json()["notification_id"])
        refused = tenant.post(
            SEND,
            {"recipient": {"phone": phone()}, "notification": {"channels": ["whatsapp"]}},
        )
        assert refused.json()["details"][0]["reason"] == "TEMPLATE_REQUIRED"
        bulk = tenant.post(
            BULK,
            {"channels": ["sms"], "body": "bulk metrics",
             "recipients": [{"phone": phone()}, {"phone": phone()}]},
        )  # fmt: skip
        assert bulk.status_code == 200, bulk.text
        with httpx.Client(base_url=platform.webhook_url, timeout=30) as webhooks:
            forged = webhooks.post(
                f"/callbacks/twilio?delivery_id={ids[0]}",
                data={"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"},
                headers={"X-Twilio-Signature": "forged="},
            )
        assert forged.status_code == 403
        forged_reason = forged.json()["details"][0]["reason"]

        statuses = [wait_for_status(tenant, i, {"delivered", "failed"})["status"] for i in ids]
        assert statuses == ["delivered", "delivered", "delivered", "failed"]
        wait_bulk_done(tenant, bulk.json()["bulk_id"])

    def after(name: str) -> Samples:
        return scrape(processes[name])

    # Receipts are recorded once the webhooks are answered: two per SMS delivered.
    wait_for(
        lambda: (
            moved(before["callbacks"], after("callbacks"), "clarion_callbacks_accepted_total") >= 10
        )
    )
    now = {name: after(name) for name in processes}

    api_before, api_now = before["api"], now["api"]
    assert by_label(api_before, api_now, "clarion_sends_accepted_total", "method", tenant=t) == {
        "SendNotification": 5
    }
    assert by_label(api_before, api_now, "clarion_sends_refused_total", "reason", tenant=t) == {
        "TEMPLATE_REQUIRED": 1
    }
    assert by_label(api_before, api_now, "clarion_idempotency_replays_total", "operation") == {
        "send": 1
    }
    assert by_label(
        before["bulk"], now["bulk"], "clarion_sends_accepted_total", "method", tenant=t
    ) == {"SendBulk": 1}

    # Deliveries: the worker records sent (and failed); receipts delivered.
    reached = Counter[str]()
    for name in ("worker", "callbacks"):
        for status, count in by_label(
            before[name], now[name], "clarion_deliveries_total", "status", tenant=t,
            channel="sms", provider="twilio",
        ).items():  # fmt: skip
            reached[status] += count
    assert reached == {"sent": 5, "delivered": 5, "failed": 1}

    worker_before, worker_now = before["worker"], now["worker"]
    assert by_label(
        worker_before, worker_now, "clarion_delivery_attempts_total", "outcome",
        channel="sms", provider="twilio",
    ) == {"accepted": 5, "transient": 2, "permanent": 1}  # fmt: skip
    assert by_label(
        worker_before, worker_now, "clarion_provider_call_duration_seconds_count", "outcome",
        channel="sms", provider="twilio",
    ) == {"accepted": 5, "transient": 2, "permanent": 1}  # fmt: skip
    # Every provider call ran in an activity that waited on the task queue first.
    assert moved(worker_before, worker_now, "clarion_activity_schedule_to_start_seconds_count") >= 8

    callbacks_before, callbacks_now = before["callbacks"], now["callbacks"]
    assert by_label(
        callbacks_before, callbacks_now, "clarion_callbacks_accepted_total", "provider"
    ) == {"twilio": 10}
    assert by_label(
        callbacks_before, callbacks_now, "clarion_callbacks_refused_total", "reason",
        provider="twilio",
    ) == {forged_reason: 1}  # fmt: skip

    # The outbox is read at scrape time; every start was made.
    assert now["api"][("clarion_outbox_query_success", frozenset())] == 1
    assert moved(api_before, api_now, "clarion_outbox_pending") <= 0


def test_temporal_and_envoy_metrics_stay_reachable(platform: Stack) -> None:
    p = platform.ports
    sdk = httpx.get(f"http://127.0.0.1:{p.worker_sdk_metrics}/metrics", timeout=10).text
    assert "temporal_workflow_task_schedule_to_start_latency" in sdk
    server = httpx.get(f"http://127.0.0.1:{p.temporal_metrics}/metrics", timeout=10).text
    assert "service_requests" in server
    for admin in (p.envoy_admin, p.webhooks_admin):
        stats = httpx.get(f"http://127.0.0.1:{admin}/stats/prometheus", timeout=10).text
        assert "envoy_http_downstream_rq_total" in stats


def test_webhook_deliveries_are_counted_by_outcome(platform: Stack, receiver: str) -> None:
    port = platform.ports.webhooks_metrics
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        tenant = signup(api)
        for path in ("/ok", "/fail"):
            registered = tenant.post(
                "/api/v1/webhooks", {"url": receiver + path, "event_types": ["delivery.delivered"]}
            )
            assert registered.status_code == 200, registered.text
        before = scrape(port)
        sent = send_sms(tenant, phone())
        wait_for_status(tenant, sent.json()["notification_id"], {"delivered"})

    def events() -> dict[str, float]:
        return by_label(
            before, scrape(port), "clarion_webhook_events_total", "result",
            tenant=tenant.tenant_id, event_type="delivery.delivered",
        )  # fmt: skip

    # One event per endpoint: /ok takes it at once, /fail refuses both tries.
    wait_for(lambda: events() == {"delivered": 1, "failed": 1})
    after = scrape(port)
    assert by_label(before, after, "clarion_webhook_attempts_total", "outcome") == {
        "delivered": 1,
        "http_error": 2,
    }
    assert moved(before, after, "clarion_webhook_attempt_duration_seconds_count") == 3
