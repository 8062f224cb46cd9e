"""The webhooks process (`python -m server webhooks`): sends tenants' queued
events to their endpoints, apart from the send path. Messages are leased
from PostgreSQL (SKIP LOCKED, so several processes can share the work), a
few at a time per endpoint and a bounded number overall, each attempt with a
short timeout: a dead or slow endpoint holds at most its own few slots."""

import asyncio
import ipaddress
import logging
import socket
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from server import metrics
from server.domain import webhooks as rules
from server.domain.errors import ClarionError
from server.settings import Settings
from server.store import tenant_webhooks as store
from server.store.db import Database
from server.store.tenant_webhooks import AttemptOutcome, ClaimedMessage

log = logging.getLogger("clarion.webhooks")

USER_AGENT = "Clarion-Webhooks/1"
# Finished messages (and their attempts) are kept this long for the tenant to see.
RETENTION = timedelta(days=30)
PURGE_EVERY_SECONDS = 3600.0
# How long the recorder gathers answers before committing them together.
RECORD_GATHER_SECONDS = 0.02


class RefusedAddress(OSError):
    """The endpoint's host resolves to an address we must not call."""


class CheckedResolver(ThreadedResolver):
    """Resolves as usual, then refuses the host if any address is not public.
    aiohttp connects to exactly the addresses returned here (with the name
    as Host and SNI), so a second DNS answer cannot swap in another one."""

    def __init__(self, *, allow_private: bool) -> None:
        super().__init__()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        if not self._allow_private:
            try:
                rules.check_addresses(host, [r["host"] for r in results])
            except ClarionError as refused:
                raise RefusedAddress(refused.message) from None
        return results


def check_target(url: str, *, allow_private: bool) -> None:
    """What the resolver cannot see: the scheme, and a literal IP host
    (aiohttp connects to those without resolving)."""
    parts = rules.check_url(url, allow_private=allow_private)
    host = parts.hostname or ""
    if not allow_private:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return
        rules.check_addresses(host, [host])


class WebhookSender:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._allow_private = settings.allow_private_webhooks
        self._schedule = list(settings.webhook_retry_schedule)
        self._timeout = settings.webhook_timeout_seconds
        self._per_endpoint = settings.webhook_endpoint_concurrency
        self._concurrency = settings.webhook_concurrency
        self._poll = settings.webhook_poll_seconds
        self._disable_after_events = settings.webhook_disable_after_failed_events
        self._disable_after = timedelta(days=settings.webhook_disable_after_days)
        self._in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        # Attempts made and not yet recorded, and the recorder's wake-up.
        self._outcomes: list[AttemptOutcome] = []
        self._to_record = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None

    async def run(self, stop: asyncio.Event) -> None:
        connector = aiohttp.TCPConnector(
            resolver=CheckedResolver(allow_private=self._allow_private),
            # Every new connection resolves and checks again.
            use_dns_cache=False,
            limit=self._concurrency,
            # No per-host limit: endpoints of many tenants can share a host
            # (one SaaS receiver), and one dead endpoint there would queue
            # them all. The claim bounds each endpoint instead.
            limit_per_host=0,
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"User-Agent": USER_AGENT},
        )
        last_purge = 0.0
        recorder = asyncio.create_task(self._record_continually())
        try:
            while not stop.is_set():
                if time.monotonic() - last_purge > PURGE_EVERY_SECONDS:
                    last_purge = time.monotonic()
                    await self._purge()
                claimed = await self._claim_batch()
                self._wake.clear()
                if claimed < max(1, self._free()):
                    # Nothing more is due now: wait for a slot, an event, or stop.
                    waits = [asyncio.ensure_future(self._wake.wait())]
                    waits.append(asyncio.ensure_future(stop.wait()))
                    await asyncio.wait(waits, timeout=self._poll, return_when="FIRST_COMPLETED")
                    for w in waits:
                        w.cancel()
        finally:
            # Let attempts in flight finish and be recorded.
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self._timeout + 5)
            recorder.cancel()
            await self._record()
            await self._http.close()

    def _free(self) -> int:
        return self._concurrency - sum(self._in_flight.values())

    async def _claim_batch(self) -> int:
        free = self._free()
        if free <= 0:
            return 0
        now = datetime.now(UTC)
        try:
            async with self._db.transaction() as session:
                claimed = await store.claim_due(
                    session,
                    now=now,
                    limit=free,
                    per_endpoint=self._per_endpoint,
                    in_flight=dict(self._in_flight),
                    lease=timedelta(seconds=self._timeout + 30),
                )
        except Exception:
            log.exception("claiming due webhook events failed; retrying")
            return 0
        # Sent once the leases are committed.
        for message in claimed:
            self._in_flight[message.endpoint_id] += 1
            self._start(message)
        return len(claimed)

    def _start(self, message: ClaimedMessage) -> None:
        task = asyncio.create_task(self._deliver(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, message: ClaimedMessage) -> None:
        try:
            outcome = await self._attempt(message)
        except Exception:
            # The lease runs out and another pass sends it again.
            log.exception("webhook attempt at %s failed unexpectedly", message.endpoint_id)
            self._done([message])
            return
        self._outcomes.append(outcome)
        self._to_record.set()

    async def _record_continually(self) -> None:
        while True:
            await self._to_record.wait()
            # Answers that come in together share one commit.
            await asyncio.sleep(RECORD_GATHER_SECONDS)
            self._to_record.clear()
            await self._record()

    async def _record(self) -> None:
        """Records the attempts made since the last call, in one transaction."""
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        try:
            async with self._db.transaction() as session:
                for outcome in batch:
                    if outcome.ok or outcome.next_retry_at is None:
                        finished = metrics.WEBHOOK_EVENTS.labels(
                            outcome.message.event_type,
                            "delivered" if outcome.ok else "failed",
                            metrics.tenant_label(outcome.message.tenant_id),
                        )
                        metrics.count_on_commit(session, finished)
                disabled = await store.record_attempts(
                    session,
                    batch,
                    now=datetime.now(UTC),
                    disable_after_failed_events=self._disable_after_events,
                    disable_after=self._disable_after,
                )
            for endpoint_id, reason in disabled.items():
                metrics.WEBHOOK_ENDPOINTS_DISABLED.inc()
                log.warning("disabled webhook %s: %s", endpoint_id, reason)
        except Exception:
            # Their leases run out and another pass sends them again.
            log.exception("%d webhook attempts were not recorded", len(batch))
        finally:
            self._done([outcome.message for outcome in batch])

    def _done(self, messages: list[ClaimedMessage]) -> None:
        for message in messages:
            self._in_flight[message.endpoint_id] -= 1
            if self._in_flight[message.endpoint_id] <= 0:
                del self._in_flight[message.endpoint_id]
        self._wake.set()

    async def _attempt(self, message: ClaimedMessage) -> AttemptOutcome:
        assert self._http is not None
        attempted_at = datetime.now(UTC)
        started = time.monotonic()
        status: int | None = None
        error = ""
        # For metrics: how the attempt ended short of an HTTP answer.
        failure = "connection_error"
        try:
            check_target(message.url, allow_private=self._allow_private)
            headers = {
                "Content-Type": "application/json",
                "webhook-id": message.event_id,
                "webhook-timestamp": str(int(attempted_at.timestamp())),
                "webhook-signature": rules.signature_header(
                    message.secrets,
                    message_id=message.event_id,
                    timestamp=attempted_at,
                    body=message.body,
                ),
            }
            # A redirect could lead anywhere, an internal address included.
            async with self._http.post(
                message.url, data=message.body.encode(), headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except ClarionError as refused:
            error, failure = refused.message, "refused_address"
        except TimeoutError:
            error, failure = f"no answer within {self._timeout:g} s", "timeout"
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                error, failure = str(exc.os_error), "refused_address"
            else:
                error = str(exc)
        except aiohttp.ClientError as exc:
            error = str(exc) or type(exc).__name__
        seconds = time.monotonic() - started
        duration_ms = int(seconds * 1000)
        ok = status is not None and 200 <= status < 300
        result = "delivered" if ok else ("http_error" if status is not None else failure)
        metrics.WEBHOOK_ATTEMPTS.labels(result).inc()
        metrics.WEBHOOK_ATTEMPT_SECONDS.labels(result).observe(seconds)
        next_retry_at = None
        if not ok:
            delay = rules.next_attempt_delay(self._schedule, message.attempts + 1)
            next_retry_at = datetime.now(UTC) + delay if delay is not None else None
        return AttemptOutcome(
            message=message,
            attempted_at=attempted_at,
            http_status=status,
            error=error[:500],
            duration_ms=duration_ms,
            next_retry_at=next_retry_at,
        )

    async def _purge(self) -> None:
        try:
            async with self._db.transaction() as session:
                removed = await store.purge_finished(session, before=datetime.now(UTC) - RETENTION)
            if removed:
                log.info("purged %d finished webhook events", removed)
        except Exception:
            log.exception("purging finished webhook events failed; retrying next hour")


async def _backlog(db: Database) -> list[tuple[str, int, float]]:
    async with db.transaction() as session:
        count, late = await store.backlog(session, now=datetime.now(UTC))
    return [("", count, late)]


async def serve_webhooks(settings: Settings, db: Database, stop: asyncio.Event) -> None:
    sender = WebhookSender(db, settings)
    metrics.serve_metrics(
        settings.webhooks_metrics_port,
        [
            metrics.QueueCollector(
                metrics.WEBHOOK_BACKLOG, asyncio.get_running_loop(), partial(_backlog, db)
            )
        ],
    )
    # runner/stack.py waits for this line.
    log.info(
        "webhook sender running; private endpoints %s",
        "allowed" if settings.allow_private_webhooks else "refused",
    )
    await sender.run(stop)
