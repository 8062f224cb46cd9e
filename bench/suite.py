"""`make bench`: every figure of the performance targets beside a ceiling
measured in the same run, on one fresh platform (embedded defaults, free
ports). Prints one table and writes bench/results.json.

    .venv/bin/python -m bench.suite [--quick] [--out bench/results.json]

`--quick` (`make bench-quick`) runs every scenario with smaller sizes, in a
few minutes. Ceilings, in the same run:
- Envoy `direct_response` (a portal file): Envoy alone;
- GET /api/v1/channels/capabilities: JSON -> Envoy -> the interceptor (API
  key, limits) -> a gRPC handler that reads nothing;
- raw `start_workflow` calls, and a raw workflow with one local activity and
  one signal (bench.ceiling), with the dev server's CPU for each; the raw
  workflow is measured again right after the single-send burst, which is
  compared with that second measurement.
"""

import argparse
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.dialects import postgresql

from bench import isolation
from bench.bulk import address, cpu_seconds, rss_mb
from bench.ceiling import ceiling, start_rate
from bench.load import wrk
from bench.platform import (
    BenchTenant,
    bulk_counts,
    bulk_last_update,
    delivery_seconds,
    fresh_stack,
    libpq_dsn,
    new_tenant,
    quiesce,
    sms_burst,
    wait_delivered,
)
from bench.seed import seed
from bench.send_latency import percentile
from runner.stack import Stack
from server.store.notifications import list_query

RESULTS = Path(__file__).with_name("results.json")
# Clarion's own processes, as the CPU target counts them; Temporal and the
# sandbox (which stands in for providers elsewhere) are reported apart.
# The ceilings are the platform's, not the per-tenant limits' (200 reads or
# sends a second by default): the limiter still checks every request.
UNLIMITED = {
    f"CLARION_RATE_{name}_{part}": "1000000"
    for name in ("SEND", "READS")
    for part in ("PER_SECOND", "BURST")
}
OWN = ("api", "api-bulk", "callbacks", "worker", "webhooks", "envoy", "envoy-webhooks", "postgres")


@dataclass(frozen=True)
class Sizes:
    seed_rows: int
    seed_tenants: int
    load_seconds: float
    raw_workflows: int
    burst_sends: int
    latency_seconds: float
    accept_connections: tuple[int, ...]
    list_requests: int
    bulk_rows: int
    # bench.isolation's options: A's burst, then A, B's OTPs and C's bulk together.
    isolation: tuple[str, ...]


FULL = Sizes(
    1_000_000, 50, 10, 2000, 2000, 30, (1, 2, 4, 8, 16, 32), 200, 100_000,
    ("--burst-seconds", "20", "--otp-after", "20", "--bulk-rows", "10000"),
)  # fmt: skip
QUICK = Sizes(
    100_000, 50, 5, 300, 300, 10, (2, 8, 16), 40, 5_000,
    ("--burst-seconds", "8", "--otp-after", "8", "--otp-every", "1", "--bulk-rows", "2000"),
)  # fmt: skip


@dataclass
class Figure:
    key: str
    label: str
    value: float
    unit: str
    # The ceiling this figure is compared with, in the same unit; ratio = value / ceiling.
    ceiling: float | None = None
    ceiling_key: str = ""
    # (">=" or "<=", threshold), on the ratio when there is a ceiling, else on the value.
    target: tuple[str, float] | None = None

    @property
    def ratio(self) -> float | None:
        return self.value / self.ceiling if self.ceiling else None

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        measured = self.ratio if self.ceiling is not None else self.value
        if measured is None:
            return False
        op, threshold = self.target
        return measured >= threshold if op == ">=" else measured <= threshold


@dataclass
class Run:
    sizes: Sizes
    figures: list[Figure] = field(default_factory=list)
    cpu_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    explain: dict[str, str] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        ratio = f" = {figure.ratio:.2f} of {figure.ceiling_key}" if figure.ratio is not None else ""
        print(f"  {figure.label}: {figure.value:.1f} {figure.unit}{ratio}", flush=True)
        return figure

    def value(self, key: str) -> float:
        return next(f.value for f in self.figures if f.key == key)


class PeakMemory:
    """The largest RSS any one process of each child reached, sampled every 0.5 s."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            for child in self._stack.children:
                for pid in [child.process.pid, *_descendants(child.process.pid)]:
                    try:
                        mb = rss_mb(pid)
                    except OSError:
                        continue
                    self.peak[child.name] = max(self.peak.get(child.name, 0.0), mb)


def _descendants(pid: int) -> Iterator[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return
    for child in children:
        yield int(child)
        yield from _descendants(int(child))


def measured_cpu(stack: Stack, work: Callable[[], int]) -> tuple[int, dict[str, float]]:
    """Runs `work`, which returns how many notifications it made; their CPU
    in ms each, by process."""
    roots = {c.process.pid: c.name for c in stack.children}
    before = cpu_seconds(roots)
    count = work()
    after = cpu_seconds(roots)
    per = {n: round((after[n] - before.get(n, 0.0)) * 1000 / max(count, 1), 2) for n in after}
    return count, per


def ceilings(run: Run, stack: Stack, tenant: BenchTenant) -> None:
    print("ceilings", flush=True)
    seconds = run.sizes.load_seconds
    direct = wrk(f"{stack.api_url}/portal/assets/icon.svg", connections=32, seconds=seconds)
    assert direct.errors == 0, f"{direct.errors} failed requests"
    run.add(Figure("envoy_direct_response_rps", "Envoy direct_response",
                   direct.requests_per_s, "req/s"))  # fmt: skip
    empty = wrk(
        f"{stack.api_url}/api/v1/channels/capabilities",
        connections=32,
        seconds=seconds,
        headers=tenant.headers,
    )
    assert empty.errors == 0, f"{empty.errors} failed requests"
    run.add(Figure("noop_handler_rps", "JSON -> Envoy -> gRPC handler reading nothing",
                   empty.requests_per_s, "req/s"))  # fmt: skip
    temporal = f"127.0.0.1:{stack.ports.temporal}"
    run.add(Figure("raw_start_workflow_per_s", "raw start_workflow (16 tasks)",
                   start_rate(temporal, run.sizes.raw_workflows), "/s"))  # fmt: skip
    raw_workflow(run, stack, "raw_workflow", "raw workflow, 1 local activity + 1 signal",
                 "raw workflow")  # fmt: skip


def raw_workflow(run: Run, stack: Stack, key: str, label: str, each: str) -> None:
    """The single-send ceiling: raw workflows' rate (`key`_per_s) and the
    dev server's CPU for each (`key`_temporal_cpu_ms)."""
    roots = {c.process.pid: c.name for c in stack.children}
    before = cpu_seconds(roots)["temporal"]
    rate = ceiling(f"127.0.0.1:{stack.ports.temporal}", run.sizes.raw_workflows)
    # bench.ceiling warms up with 100 workflows before the measured ones.
    used = (cpu_seconds(roots)["temporal"] - before) * 1000 / (run.sizes.raw_workflows + 100)
    run.add(Figure(f"{key}_per_s", label, rate, "/s"))
    run.add(Figure(f"{key}_temporal_cpu_ms", f"Temporal CPU per {each}", used, "ms"))


def reads(run: Run, stack: Stack, tenant: BenchTenant, hot_recipient: str) -> None:
    print("reads on the seeded history", flush=True)
    with psycopg.connect(libpq_dsn(stack)) as conn:
        row = conn.execute(
            "SELECT id FROM notifications WHERE tenant_id = %s LIMIT 1", (tenant.tenant_id,)
        ).fetchone()
    assert row, "the seed wrote nothing for the bench tenant"
    got = wrk(
        f"{stack.api_url}/api/v1/notifications/{row[0]}",
        connections=32,
        seconds=run.sizes.load_seconds,
        headers=tenant.headers,
    )
    assert got.errors == 0, f"{got.errors} failed requests"
    noop = run.value("noop_handler_rps")
    run.add(Figure("get_by_id_rps", "GET /notifications/{id}, 32 connections",
                   got.requests_per_s, "req/s", noop, "noop_handler_rps", (">=", 0.5)))  # fmt: skip
    run.add(Figure("get_by_id_p99_ms", "GET by id p99 at 32 connections", got.p99_ms, "ms"))
    week_ago = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    queries: dict[str, dict[str, Any]] = {
        "newest": {},
        "channel": {"channel": "email"},
        "status": {"status": "failed"},
        "recipient": {"recipient": hot_recipient},
        "time_range": {"created_after": week_ago},
        "channel_status": {"channel": "sms", "status": "delivered"},
    }
    with httpx.Client(base_url=stack.api_url, timeout=30, headers=tenant.headers) as api:
        for name, params in queries.items():
            timings = []
            for _ in range(run.sizes.list_requests):
                started = time.perf_counter()
                answer = api.get("/api/v1/notifications", params={**params, "page_size": 50})
                timings.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.text
            # The next page, by its keyset token, must be as fast as the first.
            token = answer.json().get("next_page_token", "")
            if token:
                started = time.perf_counter()
                api.get("/api/v1/notifications", params={**params, "page_token": token})
                timings.append((time.perf_counter() - started) * 1000)
            run.add(Figure(f"list_{name}_p99_ms", f"list ({name}) p99, one at a time",
                           percentile(timings, 0.99), "ms", target=("<=", 50.0)))  # fmt: skip
            run.explain[name] = _explain(stack, tenant.tenant_id, name, params)


def _explain(stack: Stack, tenant_id: str, name: str, params: dict[str, Any]) -> str:
    created_after = params.get("created_after")
    query = list_query(
        tenant_id=tenant_id,
        channel=params.get("channel"),
        status=params.get("status"),
        recipient=params.get("recipient"),
        created=(datetime.fromisoformat(created_after) if created_after else None, None),
        after=None,
        limit=51,
    )
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with psycopg.connect(libpq_dsn(stack)) as conn:
        plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN {sql}").fetchall())  # type: ignore[call-overload]
    scans = sorted({w for w in plan.replace("(", " ").split() if w in ("Seq", "Index", "Bitmap")})
    print(f"    plan of {name}: {' '.join(scans)}", flush=True)
    return plan


def burst(run: Run, stack: Stack, tenant: BenchTenant) -> None:
    sends = run.sizes.burst_sends
    print(f"single-send burst: {sends} SMS from 16 connections", flush=True)
    elapsed = 0.0

    def work() -> int:
        nonlocal elapsed
        started = time.monotonic()
        sms_burst(stack, tenant, sends, 16)
        done = wait_delivered(stack, tenant, sends)
        elapsed = time.monotonic() - started
        return done

    done, per = measured_cpu(stack, work)
    run.cpu_ms["burst"] = per
    # The ceiling again, right after the burst: this box's speed drifts by
    # half within a run, and a ceiling taken minutes earlier once put the
    # burst at 1.19 of it.
    raw_workflow(run, stack, "burst_raw_workflow", "raw workflow beside the burst",
                 "raw workflow beside the burst")  # fmt: skip
    raw = run.value("burst_raw_workflow_per_s")
    run.add(Figure("burst_delivered_per_s", "burst delivered", done / elapsed, "/s", raw,
                   "burst_raw_workflow_per_s", (">=", 0.9)))  # fmt: skip
    own = sum(per.get(name, 0.0) for name in OWN)
    run.add(Figure("own_cpu_ms_per_send", "Clarion's own CPU per single SMS", own, "ms",
                   target=("<=", 8.0)))  # fmt: skip
    raw_cpu = run.value("burst_raw_workflow_temporal_cpu_ms")
    run.add(Figure("temporal_cpu_ms_per_send", "Temporal CPU per single SMS",
                   per.get("temporal", 0.0), "ms", raw_cpu, "burst_raw_workflow_temporal_cpu_ms",
                   ("<=", 1.2)))  # fmt: skip
    for name, ms in sorted(per.items(), key=lambda item: -item[1]):
        print(f"    {name:<16}{ms:7.2f} ms per send")


def steady_latency(run: Run, stack: Stack, tenant: BenchTenant) -> None:
    rate = run.value("raw_workflow_per_s") / 2
    seconds = run.sizes.latency_seconds
    count = int(rate * seconds)
    print(f"latency at half the ceiling: {rate:.1f} SMS/s for {seconds:g} s", flush=True)
    started = time.monotonic()
    local = threading.local()

    def paced(i: int) -> None:
        time.sleep(max(0.0, started + i / rate - time.monotonic()))
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=stack.api_url, timeout=30)
        client.post(
            "/api/v1/notifications/send",
            headers=tenant.headers,
            json={
                "recipient": {"phone": f"+1415557{i % 10_000:04d}"},
                "notification": {"channels": ["sms"], "body": f"steady {i}"},
            },
        ).raise_for_status()

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(paced, range(count)))
    wait_delivered(stack, tenant, count, timeout=120 + seconds)
    seconds_each = delivery_seconds(stack, tenant.tenant_id)
    run.add(Figure("steady_created_to_delivered_p99_s", "created -> delivered p99",
                   percentile(seconds_each, 0.99) if seconds_each else 1e9, "s",
                   target=("<=", 5.0)))  # fmt: skip


def bulks(run: Run, stack: Stack, headers: dict[str, str]) -> None:
    rows = run.sizes.bulk_rows
    for channel in ("sms", "email"):
        print(f"bulk: a {rows}-row {channel} CSV upload", flush=True)
        field = "phone" if channel == "sms" else "email"
        elapsed, accepted = 0.0, 0

        def work(channel: str = channel, field: str = field) -> int:
            nonlocal elapsed, accepted
            body = f"{field}\n" + "\n".join(address(channel, i) for i in range(rows)) + "\n"
            started = time.time()
            with httpx.Client(base_url=stack.api_url, timeout=600) as api:
                answer = api.post(
                    "/api/v1/notifications/bulk:upload",
                    params={"channel": channel, "subject": "s", "text": "bench bulk"},
                    headers={**headers, "Content-Type": "text/csv"},
                    content=body.encode(),
                )
            answer.raise_for_status()
            upload = answer.json()
            accepted = int(upload["accepted"])
            # Done when every accepted row is final; only delivered rows count.
            while True:
                counts = bulk_counts(stack, upload["bulk_id"])
                if counts.get("delivered", 0) + counts.get("failed", 0) >= accepted:
                    break
                if time.time() - started > 1800:
                    break
                time.sleep(2)
            # Polled every 2 s to leave the cores alone; ended when its last row did.
            elapsed = bulk_last_update(stack, upload["bulk_id"]) - started
            return counts.get("delivered", 0)

        delivered, per = measured_cpu(stack, work)
        run.cpu_ms[f"bulk_{channel}"] = per
        run.add(Figure(f"bulk_{channel}_delivered_per_s", f"{channel} bulk rows delivered",
                       delivered / elapsed, "/s", target=(">=", 600.0)))  # fmt: skip
        if delivered < accepted:
            print(f"    {accepted - delivered} of {accepted} accepted rows not delivered")


def accept(run: Run, stack: Stack, tenant: BenchTenant) -> None:
    print("accept: the highest rate with p99 <= 100 ms", flush=True)
    best, best_p99 = 0.0, 0.0
    for connections in run.sizes.accept_connections:
        load = wrk(
            f"{stack.api_url}/api/v1/notifications/send",
            connections=connections,
            seconds=run.sizes.load_seconds,
            headers=tenant.headers,
            body={
                "recipient": {"phone": "+14155556666"},
                "notification": {"channels": ["sms"], "body": "accept bench"},
            },
        )
        print(f"    {connections:>2} connections: {load.requests_per_s:.0f}/s, "
              f"p99 {load.p99_ms:.0f} ms, {load.errors} errors")  # fmt: skip
        if load.p99_ms <= 100 and load.errors == 0 and load.requests_per_s > best:
            best, best_p99 = load.requests_per_s, load.p99_ms
    raw = run.value("raw_start_workflow_per_s")
    run.add(Figure("accept_per_s_at_p99_100ms", "accept rate with p99 <= 100 ms", best, "/s",
                   raw, "raw_start_workflow_per_s", (">=", 2.0)))  # fmt: skip
    run.add(Figure("accept_p99_ms", "accept p99 at that rate", best_p99, "ms"))


def isolated(run: Run, stack: Stack) -> None:
    print("isolation (bench.isolation)", flush=True)
    found = isolation.run(stack, isolation.options(list(run.sizes.isolation)))
    run.add(Figure("isolation_b_delivered_p99_s", "B's OTP created -> delivered p99 in A's burst",
                   found.b_delivered_p99_s, "s", target=("<=", 1.0)))  # fmt: skip
    run.add(Figure("isolation_b_accept_p99_ms", "B's OTP accept p99 in A's burst",
                   found.b_accept_p99_ms, "ms", target=("<=", 100.0)))  # fmt: skip
    run.add(Figure("isolation_a_mix_over_alone", "A's throughput, mix / alone",
                   found.a_mix_over_alone, "x", target=(">=", 0.9)))  # fmt: skip


def table(run: Run) -> str:
    heads = f"| {'Figure':<46} | {'Measured':>14} | {'Ceiling':>10} | {'Ratio':>6} | {'Target':<8}"
    lines = [
        f"{heads} | Met |",
        f"| {'-' * 46} | {'-' * 14} | {'-' * 10} | {'-' * 6} | {'-' * 8} | --- |",
    ]
    for f in run.figures:
        ceiling_text = f"{f.ceiling:.1f}" if f.ceiling is not None else ""
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else ""
        target = f"{f.target[0]} {f.target[1]:g}" if f.target else ""
        met = {None: "", True: "yes", False: "no"}[f.met]
        lines.append(
            f"| {f.label:<46} | {f.value:>8.1f} {f.unit:<5} | {ceiling_text:>10} | {ratio:>6} "
            f"| {target:<8} | {met:<3} |"
        )
    return "\n".join(lines)


def results(run: Run, peak: dict[str, float], quick: bool) -> dict[str, Any]:
    return {
        "when": datetime.now(UTC).isoformat(),
        "quick": quick,
        "sizes": asdict(run.sizes),
        "load_average_at_end": os.getloadavg(),
        "figures": {
            f.key: {
                "label": f.label,
                "value": round(f.value, 3),
                "unit": f.unit,
                "ceiling": f.ceiling_key or None,
                "ratio": None if f.ratio is None else round(f.ratio, 3),
                "target": f"{f.target[0]} {f.target[1]:g}" if f.target else None,
                "met": f.met,
            }
            for f in run.figures
        },
        "cpu_ms_per_notification": run.cpu_ms,
        "peak_rss_mb": {name: round(mb, 1) for name, mb in sorted(peak.items())},
        "list_plans": run.explain,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--only",
        nargs="*",
        choices=["reads", "burst", "steady", "bulk", "isolation", "accept"],
        help="these scenarios only (the ceilings always run); the default is all",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="API server processes for single sends, and workers (see bench.scale_out)",
    )
    args = parser.parse_args()
    run = Run(QUICK if args.quick else FULL)
    began = time.monotonic()
    with (
        fresh_stack(UNLIMITED, replicas=args.replicas) as stack,
        PeakMemory(stack) as memory,
        httpx.Client(base_url=stack.api_url, timeout=30) as api,
    ):
        lists, singles, steady, bulk, accepting = (new_tenant(api) for _ in range(5))
        started = datetime.now(UTC)
        # The ceilings on an empty database, before the seed's COPY, VACUUM
        # and checkpoint: after them, a handler that reads nothing measured
        # at a quarter of its rate alone.
        ceilings(run, stack, lists)
        print(f"seeding {run.sizes.seed_rows} notifications of {run.sizes.seed_tenants} tenants")
        seeded = seed(
            libpq_dsn(stack), [lists.tenant_id],
            rows=run.sizes.seed_rows, tenants=run.sizes.seed_tenants,
        )  # fmt: skip
        scenarios: dict[str, Callable[[], None]] = {
            "reads": lambda: reads(run, stack, lists, seeded.hot_recipient[lists.tenant_id]),
            "burst": lambda: burst(run, stack, singles),
            "steady": lambda: steady_latency(run, stack, steady),
            "bulk": lambda: bulks(run, stack, bulk.headers),
            "isolation": lambda: isolated(run, stack),
            # Last: the sends it accepts are still being delivered when it ends.
            "accept": lambda: accept(run, stack, accepting),
        }
        for name, scenario in scenarios.items():
            if not args.only or name in args.only:
                # Each starts once the last one's sends are all final.
                quiesce(stack, started)
                scenario()
    peak = memory.peak
    # Temporal's dev server and the provider sandbox are reported apart
    # (peak_rss_mb): in a deployment they are the Temporal cluster and the
    # providers, not Clarion processes. (The sandbox keeps every message it
    # was sent, as a provider's message log does: 1.2 GB after 200,000.)
    own = max(mb for name, mb in peak.items() if name not in ("temporal", "sandbox"))
    run.add(Figure("max_process_rss_mb", "largest Clarion process RSS", own, "MB",
                   target=("<=", 400.0)))  # fmt: skip
    print(f"\n{table(run)}\n\n{time.monotonic() - began:.0f} s in all")
    args.out.write_text(json.dumps(results(run, peak, args.quick), indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
