"""Bulk sends at scale, on a fresh platform on free ports, against the sandbox.

    .venv/bin/python -m bench.bulk [--rows 100000] [--json-rows 10000] [--channel sms]
                                     [--probe-rate 10]

Prints, each beside a ceiling measured in the same run:
- the per-workflow ceiling: raw workflows (one local activity, one signal,
  bench.ceiling) completed per second on the same Temporal;
- a 10,000-recipient JSON bulk: time to accept;
- a CSV upload of --rows recipients: upload time, then handed-over and
  delivered rates of the rows accepted (failed rows are counted apart, not
  as delivered), and their ratio to the per-workflow ceiling;
- meanwhile, single sends from another tenant (--probe-rate, 10/s): accept
  p50/p99, and first, alone, the CPU they cost;
- the CPU used per row, by process;
- the peak resident memory of each API server process (tenant API, callbacks).
"""

import argparse
import os
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.ceiling import ceiling as raw_ceiling
from bench.platform import bulk_counts, fresh_stack
from bench.send_latency import percentile
from runner.stack import Stack

RECIPIENT = {"sms": "phone", "email": "email", "slack": "slack_user_id", "voice": "phone"}


def address(channel: str, i: int) -> str:
    if RECIPIENT[channel] == "phone":
        return f"+1212{2000000 + i % 8000000:07d}"
    if channel == "email":
        return f"user{i}@example.com"
    return f"U{i:08d}"


def signup(api: httpx.Client, name: str) -> dict[str, str]:
    key = api.post(
        "/portal/signup",
        json={"name": name, "email": f"{name}@bench.example", "password": "benchmark pass"},
    ).json()["api_key"]
    return {"X-API-Key": key}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(roots: dict[int, str]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each root process and its
    descendants, living or exited, plus every PostgreSQL process, by name."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    postgres: set[int] = set()
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        # utime and stime, then cutime and cstime: the CPU of children that
        # have exited and been reaped. Without these, a PostgreSQL backend
        # whose connection closed during the run (a pool's overflow) took
        # its CPU out of the count, and PostgreSQL's figure came out near 0.
        used[pid] = sum(int(f) for f in fields[11:15]) / tick
        if comm.startswith("postgres"):
            postgres.add(pid)
    totals: dict[str, float] = {}
    for pid, seconds in used.items():
        name, ancestor = ("postgres" if pid in postgres else None), pid
        while ancestor > 1 and name is None:
            name = roots.get(ancestor)
            ancestor = parents.get(ancestor, 0)
        if name is not None:
            totals[name] = totals.get(name, 0.0) + seconds
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json-rows", type=int, default=10_000)
    parser.add_argument("--channel", default="sms", choices=sorted(RECIPIENT))
    parser.add_argument("--ceiling-sends", type=int, default=1000, help="raw workflows")
    parser.add_argument("--probe-seconds", type=float, default=20.0)
    parser.add_argument(
        "--probe-rate", type=float, default=10.0, help="the other tenant's single sends per second"
    )
    args = parser.parse_args()
    with fresh_stack() as stack:
        run(stack, args)


def run(stack: Stack, args: argparse.Namespace) -> None:
    channel = args.channel
    field = RECIPIENT[channel]
    api_pids = {
        c.name: c.process.pid for c in stack.children if c.name in ("api", "api-bulk", "callbacks")
    }
    with httpx.Client(base_url=stack.api_url, timeout=120) as api:
        bulk_tenant = signup(api, "bulk")
        other = signup(api, "other")

        # 1. The per-workflow ceiling: a raw workflow (one local activity, one
        # signal) on the same Temporal, with nothing polling on these cores.
        ceiling = raw_ceiling(f"127.0.0.1:{stack.ports.temporal}", args.ceiling_sends)
        print(f"per-workflow ceiling: raw workflows completed at {ceiling:.0f}/s")

        # 2. A JSON bulk of --json-rows recipients: time to accept.
        recipients = [{field: address(channel, i)} for i in range(args.json_rows)]
        started = time.monotonic()
        response = api.post(
            "/api/v1/notifications/bulk",
            headers=bulk_tenant,
            json={
                "channels": [channel],
                "subject": "s",
                "body": "json bulk",
                "recipients": recipients,
            },
        )
        accept_s = time.monotonic() - started
        assert response.status_code == 200, response.text[:500]
        json_bulk = response.json()["bulk_id"]
        print(f"JSON bulk of {args.json_rows}: accepted in {accept_s:.2f} s (target 3 s)")
        wait_bulk(stack, json_bulk, args.json_rows, quiet=True)

        # 3. A CSV upload, with another tenant's single sends and memory watched meanwhile.
        peak = {name: rss_mb(pid) for name, pid in api_pids.items()}
        # (when sent, milliseconds), to report the upload and delivery phases apart.
        latencies: list[tuple[float, float]] = []
        failures: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            with httpx.Client(base_url=stack.api_url, timeout=30) as side:
                i = 0
                begun = time.monotonic()
                while not stop.is_set():
                    for name, pid in api_pids.items():
                        peak[name] = max(peak[name], rss_mb(pid))
                    t0 = time.perf_counter()
                    try:
                        answer = side.post(
                            "/api/v1/notifications/send",
                            headers=other,
                            json={
                                "recipient": {"phone": "+14155550123"},
                                "notification": {"channels": ["sms"], "body": f"side {i}"},
                            },
                        )
                        if answer.status_code != 200:
                            failures.append(i)
                    except httpx.HTTPError:
                        failures.append(i)
                    latencies.append((time.monotonic(), (time.perf_counter() - t0) * 1000))
                    i += 1
                    time.sleep(max(0.0, begun + i / args.probe_rate - time.monotonic()))

        watcher = threading.Thread(target=watch, daemon=True)
        # The probe alone first: what the other tenant's sends cost the box,
        # so that the bulk's own CPU per row can be told apart below.
        roots = {child.process.pid: child.name for child in stack.children}
        roots[os.getpid()] = "bench client"
        probe_from = cpu_seconds(roots)
        watcher.start()
        time.sleep(args.probe_seconds)
        probe_cores = sum(cpu_seconds(roots).values()) - sum(probe_from.values())
        probe_cores /= args.probe_seconds
        print(
            f"other tenant's single sends alone: {len(latencies) / args.probe_seconds:.1f}/s "
            f"use {probe_cores:.2f} cores"
        )

        def csv_chunks() -> Iterator[bytes]:
            yield f"{field}\n".encode()
            batch = []
            for i in range(args.rows):
                batch.append(address(channel, i))
                if len(batch) == 5000:
                    yield ("\n".join(batch) + "\n").encode()
                    batch = []
            if batch:
                yield ("\n".join(batch) + "\n").encode()

        cpu_before = cpu_seconds(roots)
        started = time.monotonic()
        response = api.post(
            "/api/v1/notifications/bulk:upload",
            params={"channel": channel, "subject": "s", "text": "csv bulk"},
            headers={**bulk_tenant, "Content-Type": "text/csv"},
            content=csv_chunks(),
        )
        upload_s = time.monotonic() - started
        assert response.status_code == 200, response.text[:500]
        upload = response.json()
        print(
            f"CSV upload of {args.rows}: stored in {upload_s:.1f} s, accepted {upload['accepted']}"
        )
        accepted = int(upload["accepted"])
        handed_s, final_s, counts = wait_bulk(stack, upload["bulk_id"], accepted)
        cpu_after = cpu_seconds(roots)
        stop.set()
        watcher.join()
        total_s = upload_s + final_s
        delivered = counts.get("delivered", 0)
        # Rates count accepted rows, and only delivered ones as delivered.
        print(
            f"handed to the provider: {accepted / (upload_s + handed_s):.0f}/s; "
            f"delivered (receipt recorded): {delivered} of {accepted} accepted in {total_s:.0f} s "
            f"= {delivered / total_s:.0f}/s (target 600/s); failed: {counts.get('failed', 0)}"
        )
        print(f"bulk delivered rate / per-workflow ceiling: {delivered / total_s / ceiling:.1f}x")
        uploaded_at = started + upload_s
        phases = {
            "all": [ms for _, ms in latencies],
            "alone (before the upload)": [ms for at, ms in latencies if at < started],
            "during the upload": [ms for at, ms in latencies if started <= at <= uploaded_at],
            "during delivery": [ms for at, ms in latencies if at > uploaded_at],
        }
        for phase, values in phases.items():
            if values:
                print(
                    f"other tenant's single sends, {phase}: n={len(values)} "
                    f"p50 {percentile(values, 0.5):.0f} ms, p99 {percentile(values, 0.99):.0f} ms "
                    f"(target p99 < 100 ms), mean {statistics.fmean(values):.0f} ms"
                )
        print(f"failed sends (no answer, or not 200): {len(failures)}")
        used = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
        print(
            f"CPU from upload to delivered: {sum(used.values()):.0f} s over {total_s:.0f} s "
            f"({sum(used.values()) / total_s:.2f} cores), "
            f"{sum(used.values()) * 1000 / accepted:.2f} ms per row:"
        )
        for name, seconds in sorted(used.items(), key=lambda item: -item[1]):
            print(f"  {name:14} {seconds:6.0f} s  {seconds * 1000 / accepted:.2f} ms/row")
        bulk_cpu = sum(used.values()) - probe_cores * total_s
        print(
            f"of which the bulk (less the other tenant's sends): "
            f"{bulk_cpu * 1000 / accepted:.2f} ms of CPU per row"
        )
        for name, mb in peak.items():
            print(f"{name} server peak RSS: {mb:.0f} MB (target < 400 MB)")


def wait_bulk(
    stack: Stack, bulk_id: str, rows: int, quiet: bool = False
) -> tuple[float, float, dict[str, int]]:
    """Seconds until every row was handed over, and until every row was
    final, with the final counts; read from PostgreSQL, not by polling the
    API on the cores being measured."""
    started = time.monotonic()
    handed = 0.0
    last_print = 0.0
    while time.monotonic() - started < 1800:
        counts = bulk_counts(stack, bulk_id)
        elapsed = time.monotonic() - started
        if not handed and counts.get("queued", 0) == 0 and sum(counts.values()) >= rows:
            handed = elapsed
        if counts.get("delivered", 0) + counts.get("failed", 0) >= rows:
            return handed or elapsed, elapsed, counts
        if not quiet and elapsed - last_print >= 15:
            print(f"  {elapsed:5.0f} s {counts}")
            last_print = elapsed
        time.sleep(1)
    raise SystemExit(f"bulk {bulk_id} not done after 30 minutes")


if __name__ == "__main__":
    main()
