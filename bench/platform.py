"""A fresh platform for one benchmark run, and what several benchmarks do on it."""

import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from runner.stack import Ports, Stack, stop_embedded_postgres


@contextmanager
def fresh_stack(overrides: dict[str, str] | None = None) -> Iterator[Stack]:
    """The platform on its own data folder and free ports."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(
            data_dir=Path(tmp), ports=Ports.free(), overrides=overrides or {}, headless=True
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


def delivered_count(stack: Stack, tenant_id: str) -> int:
    """The tenant's notifications that reached delivered, read from
    PostgreSQL: polling the list API for it would spend the API server's CPU
    that the benchmark measures."""
    assert stack.database_url
    dsn = make_url(stack.database_url).set(drivername="postgresql")
    with psycopg.connect(dsn.render_as_string(hide_password=False)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM notifications WHERE tenant_id = %s AND status = 'delivered'",
            (tenant_id,),
        ).fetchone()
    return int(row[0]) if row else 0


def sms_burst(stack: Stack, tenant: BenchTenant, sends: int, clients: int) -> list[float]:
    """`sends` single SMS through Envoy from `clients` threads, each on one
    keep-alive connection; the accept latency of each, in ms."""
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
                "notification": {"channels": ["sms"], "body": f"bench {i}"},
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
