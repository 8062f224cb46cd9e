"""What the per-tenant limits add to a request: the limiter's own transaction
(take a token, count the send), against a fresh embedded PostgreSQL, beside
a bare `SELECT 1` transaction through the same pool in the same run.

    .venv/bin/python -m bench.limits [--calls 2000]

Concurrent calls of one tenant share its bucket row; of different tenants
they must not wait on each other."""

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text

from bench.send_latency import percentile
from runner.stack import start_embedded_postgres, stop_embedded_postgres
from server.domain.limits import Charge, LimitName
from server.services.limits import Limiter
from server.settings import Settings
from server.store.db import Database, create_engine, migrate
from server.store.tables import tenants


async def _timed(
    calls: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> list[float]:
    times: list[float] = []

    async def worker(w: int) -> None:
        for _ in range(calls // concurrency):
            started = time.perf_counter()
            await one(w)
            times.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return times


def _line(label: str, times: list[float], wall: float) -> None:
    print(
        f"{label:<44} p50 {percentile(times, 0.5):6.2f} ms  p99 {percentile(times, 0.99):6.2f} ms"
        f"  {len(times) / wall:7.0f}/s"
    )


async def measure(database_url: str, calls: int) -> None:
    db = Database(create_engine(database_url, pool_size=16), Settings().database_limits())
    # Limits far above what this loop reaches, so every call is admitted.
    settings = Settings(
        rate_send_per_second=1e6,
        rate_send_burst=1_000_000,
        rate_reads_per_second=1e6,
        rate_reads_burst=1_000_000,
    )
    limiter = Limiter(db, settings.default_limits())
    limits = limiter.defaults
    ids = [f"tnt_bench{i:02d}" for i in range(16)]
    async with db.transaction() as session:
        await session.execute(
            insert(tenants),
            [
                {
                    "id": t,
                    "name": t,
                    "email": f"{t}@b.example",
                    "created_at": datetime.now(UTC),
                }
                for t in ids
            ],
        )

    async def bare(_: int) -> None:
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))

    async def send(tenant: str) -> None:
        await limiter.admit(tenant, limits, Charge(LimitName.SEND, 1, ["sms"]))

    async def read(tenant: str) -> None:
        await limiter.admit(tenant, limits, Charge(LimitName.READS, 1))

    for label, concurrency, one in [
        ("bare SELECT 1 transaction, sequential", 1, bare),
        ("send admit (bucket + daily count), sequential", 1, lambda w: send(ids[0])),
        ("read admit (bucket only), sequential", 1, lambda w: read(ids[0])),
        ("bare SELECT 1 transaction, 16 concurrent", 16, bare),
        ("send admit, 16 concurrent, one tenant", 16, lambda w: send(ids[0])),
        ("send admit, 16 concurrent, 16 tenants", 16, lambda w: send(ids[w])),
    ]:
        await _timed(min(calls, 200), concurrency, one)  # warm up
        started = time.perf_counter()
        times = await _timed(calls, concurrency, one)
        _line(label, times, time.perf_counter() - started)
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            url = start_embedded_postgres(Path(tmp) / "postgres")
            migrate(url)
            asyncio.run(measure(url, args.calls))
        finally:
            stop_embedded_postgres(Path(tmp) / "postgres")


if __name__ == "__main__":
    main()
