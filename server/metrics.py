"""Every Prometheus metric Clarion exports, and each process's `/metrics`
endpoint (docs/operations.md lists them with their labels and ports).

All processes import the same definitions; each exports those it moves
(the API server its sends, the worker its attempts). Counters that follow a
database write are incremented only once that write commits
(`count_on_commit`), so a rolled-back move or a retried activity is never
counted twice."""

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# Tenant labels stay empty unless configured (see configure_tenant_labels):
# every tenant would be a time series per label combination.
_tenants: frozenset[str] | None = frozenset()

SENDS_ACCEPTED = Counter(
    "clarion_sends_accepted",
    "Send calls (single, bulk, upload) answered with success.",
    ["method", "tenant"],
)
SENDS_REFUSED = Counter(
    "clarion_sends_refused",
    "Send calls refused, by the error reason the caller got.",
    ["method", "reason", "tenant"],
)
API_REQUEST_SECONDS = Histogram(
    "clarion_api_request_duration_seconds",
    "Time the API server spent on each Clarion RPC, by method and outcome.",
    ["method", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERIES = Counter(
    "clarion_deliveries",
    "Deliveries that reached a status (sent, delivered, failed), once each.",
    ["channel", "provider", "status", "tenant"],
)
ATTEMPTS = Counter(
    "clarion_delivery_attempts",
    "Provider calls, by outcome: accepted, transient, permanent or unknown.",
    ["channel", "provider", "outcome"],
)
PROVIDER_CALL_SECONDS = Histogram(
    "clarion_provider_call_duration_seconds",
    "Duration of each provider call (the adapter's request and its answer).",
    ["channel", "provider", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20),
)
CALLBACKS_ACCEPTED = Counter(
    "clarion_callbacks_accepted",
    "Provider webhooks whose signature and receipts were accepted.",
    ["provider"],
)
CALLBACKS_REFUSED = Counter(
    "clarion_callbacks_refused",
    "Provider webhooks refused: bad or stale signature, replayed token, "
    "or a receipt that does not match its delivery.",
    ["provider", "reason"],
)
IDEMPOTENCY_REPLAYS = Counter(
    "clarion_idempotency_replays",
    "Requests whose idempotency key had been seen: answered from the first.",
    ["operation"],
)
SCHEDULE_TO_START_SECONDS = Histogram(
    "clarion_activity_schedule_to_start_seconds",
    "From an activity's scheduling to a worker starting it (task queue wait).",
    ["activity", "local"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

WEBHOOK_ATTEMPTS = Counter(
    "clarion_webhook_attempts",
    "Tenant webhook POSTs, by outcome: delivered (2xx), http_error, timeout, "
    "connection_error, refused_address (private address, not allowed).",
    ["outcome"],
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "clarion_webhook_attempt_duration_seconds",
    "Duration of each tenant webhook POST, by outcome.",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBHOOK_EVENTS = Counter(
    "clarion_webhook_events",
    "Tenant webhook events finished: delivered, or failed once every retry failed.",
    ["event_type", "result", "tenant"],
)
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "clarion_webhook_endpoints_disabled",
    "Tenant webhook endpoints disabled for failing too long.",
)


def configure_tenant_labels(setting: str) -> None:
    """`""` (default): no tenant labels; `"all"`: every tenant; otherwise a
    comma-separated allow-list of tenant ids (others stay unlabelled)."""
    global _tenants
    value = setting.strip()
    if value == "all":
        _tenants = None
    else:
        _tenants = frozenset(t.strip() for t in value.split(",") if t.strip())


def tenant_label(tenant_id: str) -> str:
    if _tenants is None or tenant_id in _tenants:
        return tenant_id
    return ""


def provider_label(provider: str | None) -> str:
    """No provider: the delivery ended before any call (e.g. every breaker open)."""
    return provider or "none"


_PENDING = "clarion_metrics_on_commit"


def count_on_commit(session: AsyncSession, counter: Counter, amount: float = 1) -> None:
    """Increments `counter` (a labelled child) when the session's transaction commits."""
    session.info.setdefault(_PENDING, []).append((counter, amount))


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for counter, amount in session.info.pop(_PENDING, ()):
        counter.inc(amount)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class QueueGauges:
    """The gauges of one queue kept in PostgreSQL, read at scrape time:
    how many items wait, how late the oldest is, and whether the read worked."""

    pending: str
    pending_help: str
    age: str
    age_help: str
    success: str
    # The label each row of the query is reported under; "" for none.
    label: str = ""

    @property
    def names(self) -> tuple[str, str, str]:
        return self.pending, self.age, self.success


OUTBOX = QueueGauges(
    "clarion_outbox_pending",
    "Workflow starts stored but not yet made.",
    "clarion_outbox_oldest_age_seconds",
    "Age of the oldest workflow start still pending.",
    "clarion_outbox_query_success",
    label="kind",
)
WEBHOOK_BACKLOG = QueueGauges(
    "clarion_webhook_messages_pending",
    "Webhook messages not yet delivered or given up (due, or waiting for a retry).",
    "clarion_webhook_oldest_due_seconds",
    "How long the most overdue pending webhook message has been due (0: none is late).",
    "clarion_webhook_backlog_query_success",
)


class QueueCollector(Collector):
    """A queue's depth and age, queried when Prometheus scrapes: the scrape
    runs in prometheus-client's thread, the query on the process's event
    loop, with a timeout, so a slow database costs a gauge, not the scrape.
    Registered only in the process that owns the queue, so QueueGauges names
    them for known_metric_names too."""

    def __init__(
        self,
        gauges: QueueGauges,
        loop: asyncio.AbstractEventLoop,
        query: Callable[[], Coroutine[Any, Any, list[tuple[str, int, float]]]],
        timeout: float = 2.0,
    ) -> None:
        self._gauges = gauges
        self._loop = loop
        self._query = query
        self._timeout = timeout

    def collect(self) -> Iterable[Metric]:
        g = self._gauges
        labels = [g.label] if g.label else []
        depth = GaugeMetricFamily(g.pending, g.pending_help, labels=labels)
        age = GaugeMetricFamily(g.age, g.age_help, labels=labels)
        ok = 1.0
        rows: list[tuple[str, int, float]]
        try:
            rows = asyncio.run_coroutine_threadsafe(self._query(), self._loop).result(self._timeout)
        except Exception as error:
            log.warning("%s query failed: %r", g.pending, error)
            rows, ok = [], 0.0
        for label, count, oldest in rows:
            depth.add_metric([label] if labels else [], count)
            age.add_metric([label] if labels else [], oldest)
        yield depth
        yield age
        yield GaugeMetricFamily(
            g.success, "1 if the last scrape could read the queue, else 0.", value=ok
        )


def serve_metrics(port: int, collectors: Iterable[Collector] = ()) -> None:
    """Serves /metrics on 127.0.0.1:port from a background thread; 0 = off."""
    for collector in collectors:
        REGISTRY.register(collector)
    if port:
        start_http_server(port, addr="127.0.0.1")
        log.info("metrics on http://127.0.0.1:%d/metrics", port)


def known_metric_names() -> set[str]:
    """Every sample name this registry can export (counters' `_total`,
    histograms' `_bucket`/`_sum`/`_count`), for checking dashboards and rules."""
    names: set[str] = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        names.update(sample.name for sample in metric.samples)
        suffixes: dict[str, Any] = {
            "counter": ["_total", "_created"],
            "histogram": ["_bucket", "_sum", "_count", "_created"],
        }
        names.update(metric.name + s for s in suffixes.get(metric.type, []))
    for gauges in (OUTBOX, WEBHOOK_BACKLOG):
        names.update(gauges.names)
    return names
