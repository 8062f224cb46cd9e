"""A fresh platform for one benchmark run, and what several benchmarks do on it."""

import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from runner.stack import Ports, Stack, stop_embedded_postgres


@contextmanager
def fresh_stack(overrides: dict[str, str] | None = None, replicas: int = 1) -> Iterator[Stack]:
    """The platform on its own data folder and free ports."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(
            data_dir=Path(tmp),
            ports=Ports.free(),
            overrides=overrides or {},
            headless=True,
            replicas=replicas,
        )
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
            stop_embedded_postgres(Path(tmp) / "postgres")


@dataclass(frozen=True)
class BenchTenant:
    tenant_id: str
    headers: dict[str, str]


def new_tenant(api: httpx.Client) -> BenchTenant:
    body = api.post(
        "/portal/signup",
        json={
            "name": "Bench",
            "email": f"bench-{secrets.token_hex(6)}@acme.example",
            "password": "benchmark passphrase 42",
        },
    ).json()
    return BenchTenant(body["tenant_id"], {"X-API-Key": body["api_key"]})


def libpq_dsn(stack: Stack) -> str:
    """The stack's database for psycopg (its DATABASE_URL names the driver)."""
    assert stack.database_url
    dsn = make_url(stack.database_url).set(drivername="postgresql")
    return dsn.render_as_string(hide_password=False)


def delivered_count(stack: Stack, tenant_id: str) -> int:
    """The tenant's notifications that reached delivered, read from
    PostgreSQL: polling the list API for it would spend the API server's CPU
    that the benchmark measures."""
    with psycopg.connect(libpq_dsn(stack)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM notifications WHERE tenant_id = %s AND status = 'delivered'",
            (tenant_id,),
        ).fetchone()
    return int(row[0]) if row else 0


def bulk_counts(stack: Stack, bulk_id: str) -> dict[str, int]:
    """How many of the bulk's notifications are in each status, from PostgreSQL."""
    with psycopg.connect(libpq_dsn(stack)) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM notifications WHERE bulk_id = %s GROUP BY status",
            (bulk_id,),
        ).fetchall()
    return {status: int(n) for status, n in rows}


def bulk_last_update(stack: Stack, bulk_id: str) -> float:
    """When the bulk's last notification last changed (Unix seconds, the
    server's clock, which is this box's): the end of a bulk to the
    millisecond, however seldom it was polled."""
    with psycopg.connect(libpq_dsn(stack)) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM max(updated_at)) FROM notifications WHERE bulk_id = %s",
            (bulk_id,),
        ).fetchone()
    return float(row[0]) if row and row[0] is not None else time.time()


def delivery_seconds(stack: Stack, tenant_id: str) -> list[float]:
    """Created -> delivered, in seconds, of each of the tenant's delivered
    notifications (the server's own timestamps)."""
    with psycopg.connect(libpq_dsn(stack)) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM updated_at - created_at) FROM notifications"
            " WHERE tenant_id = %s AND status = 'delivered'",
            (tenant_id,),
        ).fetchall()
    return [float(r[0]) for r in rows]


def sms_burst(
    stack: Stack, tenant: BenchTenant, sends: int, clients: int, tag: str = "bench"
) -> list[float]:
    """`sends` single SMS through Envoy from `clients` threads, each on one
    keep-alive connection, with bodies "`tag` <i>"; the accept latency of
    each, in ms."""
    local = threading.local()

    def send(i: int) -> float:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=stack.api_url, timeout=30)
        started = time.perf_counter()
        response = client.post(
            "/api/v1/notifications/send",
            headers=tenant.headers,
            json={
                "recipient": {"phone": f"+1415558{i % 10_000:04d}"},
                "notification": {"channels": ["sms"], "body": f"{tag} {i}"},
            },
        )
        assert response.status_code == 200, response.text
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(send, range(sends)))


def wait_delivered(stack: Stack, tenant: BenchTenant, count: int, timeout: float = 300) -> int:
    """Waits until `count` of the tenant's notifications are delivered, or
    the timeout; how many are."""
    deadline = time.monotonic() + timeout
    while (done := delivered_count(stack, tenant.tenant_id)) < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return done


def quiesce(stack: Stack, since: datetime, timeout: float = 600) -> None:
    """Waits until every notification accepted since `since` is final, so
    that one scenario's backlog does not slow the next one down."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq_dsn(stack), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM notifications"
                " WHERE created_at >= %s AND status IN ('queued', 'sent')",
                (since,),
            ).fetchone()
            if not row or row[0] == 0:
                return
            time.sleep(1)
