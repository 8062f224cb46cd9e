"""Tenant isolation under load (issue 15), on a fresh platform on free ports:

- tenant A bursts single SMS sends from 16 connections for 20 s, first alone,
  then again while
- tenant B sends one OTP (a single SMS) every 2 s, and
- tenant C runs a 10,000-row SMS bulk.

    make bench-isolation
    .venv/bin/python -m bench.isolation [--burst-seconds 20] [--connections 16]
                                        [--bulk-rows 10000] [--otp-every 2]

Prints B's created -> delivered and accept latency, and A's delivered
throughput in the mix against A alone in the same run. 429 answers (a
tenant over its rate limit) are counted apart and are not failures.
"""

import argparse
import asyncio
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.bulk import address, signup
from bench.platform import fresh_stack
from bench.send_latency import percentile
from contracts.workflows import notification_workflow_id
from runner.stack import Stack

SEND = "/api/v1/notifications/send"


@dataclass
class Sends:
    """What one tenant's senders saw."""

    ids: list[str] = field(default_factory=list)
    accept_ms: list[float] = field(default_factory=list)
    limited: int = 0  # 429: over the tenant's rate, not a failure
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, started: float, response: httpx.Response | None, error: str = "") -> None:
        ms = (time.perf_counter() - started) * 1000
        with self.lock:
            if response is not None and response.status_code == 200:
                self.ids.append(response.json()["notification_id"])
                self.accept_ms.append(ms)
            elif response is not None and response.status_code == 429:
                self.limited += 1
            else:
                detail = f"{response.status_code} {response.text[:120]}" if response else error
                self.failed.append(detail)


def send_sms(
    client: httpx.Client, headers: dict[str, str], phone: str, body: str, out: Sends
) -> None:
    started = time.perf_counter()
    try:
        response = client.post(
            SEND,
            headers=headers,
            json={
                "recipient": {"phone": phone},
                "notification": {"channels": ["sms"], "body": body},
            },
        )
    except httpx.HTTPError as error:
        out.record(started, None, repr(error))
        return
    out.record(started, response)


def burst(url: str, headers: dict[str, str], connections: int, seconds: float) -> Sends:
    """Single sends as fast as `connections` clients get answers, for `seconds`."""
    out = Sends()
    stop_at = time.monotonic() + seconds

    def sender(n: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            i = 0
            while time.monotonic() < stop_at:
                send_sms(client, headers, address("sms", n * 100_000 + i), f"burst {n}.{i}", out)
                i += 1

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def otps(url: str, headers: dict[str, str], every: float, seconds: float) -> Sends:
    """One send every `every` seconds, on schedule however slow the answers."""
    out = Sends()
    with httpx.Client(base_url=url, timeout=30) as client:
        started = time.monotonic()
        n = 0
        while (due := started + n * every) < started + seconds:
            time.sleep(max(0.0, due - time.monotonic()))
            send_sms(client, headers, "+14155550123", f"Your code is {1000 + n}", out)
            n += 1
    return out


def stamps(body: dict[str, object]) -> tuple[datetime, datetime]:
    return (
        datetime.fromisoformat(str(body["created_at"])),
        datetime.fromisoformat(str(body["updated_at"])),
    )


def delivered(api: httpx.Client, headers: dict[str, str]) -> list[tuple[datetime, datetime]]:
    """(created, delivered) of each of the tenant's delivered notifications."""
    found: list[tuple[datetime, datetime]] = []
    token = ""
    while True:
        page = api.get(
            "/api/v1/notifications",
            headers=headers,
            params={"status": "delivered", "page_size": 100, "page_token": token},
        ).json()
        found += [stamps(n) for n in page["notifications"]]
        token = page["next_page_token"]
        if not token:
            return found


def wait_all_delivered(
    api: httpx.Client, headers: dict[str, str], expected: int, limit: float = 600
) -> list[tuple[datetime, datetime]]:
    deadline = time.monotonic() + limit
    while True:
        done = delivered(api, headers)
        if len(done) >= expected or time.monotonic() > deadline:
            return done
        time.sleep(2)


def throughput(done: list[tuple[datetime, datetime]]) -> float:
    """Delivered per second, from the first acceptance to the last delivery."""
    if len(done) < 2:
        return 0.0
    span = max(d for _, d in done) - min(c for c, _ in done)
    return len(done) / span.total_seconds()


def latencies_s(api: httpx.Client, headers: dict[str, str], ids: list[str]) -> list[float]:
    """Created -> delivered of each id, in seconds; inf for one not delivered."""
    out = []
    for notification_id in ids:
        body = api.get(f"/api/v1/notifications/{notification_id}", headers=headers).json()
        created, updated = stamps(body)
        out.append((updated - created).total_seconds() if body["status"] == "delivered" else 1e9)
    return out


_STEPS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "started",
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: "task",
    EventType.EVENT_TYPE_MARKER_RECORDED: "sent",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signal",
}


async def where_the_time_went(stack: Stack, created: dict[str, datetime]) -> list[str]:
    """Per notification: seconds from acceptance to its workflow's start,
    its first workflow task, the provider call's marker, the receipt signal."""
    client = await Client.connect(f"127.0.0.1:{stack.ports.temporal}")
    lines = []
    for notification_id, accepted in created.items():
        handle = client.get_workflow_handle(notification_workflow_id(notification_id))
        seen: dict[str, float] = {}
        async for event in handle.fetch_history_events():
            step = _STEPS.get(event.event_type)
            if step and step not in seen:
                at = event.event_time.ToDatetime().replace(tzinfo=accepted.tzinfo)
                seen[step] = (at - accepted).total_seconds()
        lines.append(" ".join(f"{k} {v:.2f}" for k, v in seen.items()))
    return lines


@dataclass(frozen=True)
class Isolation:
    b_delivered_p99_s: float
    b_accept_p99_ms: float
    # A's delivered throughput in the mix over A's alone.
    a_mix_over_alone: float


def run(stack: Stack, args: argparse.Namespace) -> Isolation:
    url = stack.api_url
    with httpx.Client(base_url=url, timeout=60) as api:
        a, b, c = (signup(api, name) for name in ("tenant-a", "tenant-b", "tenant-c"))

        print(f"A alone: {args.connections} connections for {args.burst_seconds:g} s")
        alone = burst(url, a, args.connections, args.burst_seconds)
        alone_done = wait_all_delivered(api, a, len(alone.ids))
        alone_rate = throughput(alone_done)
        print(
            f"  {len(alone.ids)} accepted, {alone.limited} answered 429, {len(alone.failed)} "
            f"failed; {len(alone_done)} delivered at {alone_rate:.1f}/s"
        )

        print(f"mix: A again, B one OTP every {args.otp_every:g} s, C a {args.bulk_rows}-row bulk")
        bulk: dict[str, object] = {}

        def send_bulk() -> None:
            started = time.monotonic()
            response = api.post(
                "/api/v1/notifications/bulk",
                headers=c,
                json={
                    "channels": ["sms"],
                    "body": "bulk",
                    "recipients": [{"phone": address("sms", i)} for i in range(args.bulk_rows)],
                },
            )
            bulk.update(status=response.status_code, accept_s=time.monotonic() - started)
            if response.status_code == 200:
                bulk["id"] = response.json()["bulk_id"]
            else:
                bulk["error"] = response.text[:200]

        b_out = Sends()

        def run_otps() -> None:
            nonlocal b_out
            b_out = otps(url, b, args.otp_every, args.burst_seconds + args.otp_after)

        mix_started = time.monotonic()
        side = [threading.Thread(target=send_bulk), threading.Thread(target=run_otps)]
        for t in side:
            t.start()
        mixed = burst(url, a, args.connections, args.burst_seconds)
        for t in side:
            t.join()
        mixed_done = wait_all_delivered(api, a, len(alone.ids) + len(mixed.ids))
        # Only the second burst's deliveries: the first burst's were all in before it began.
        start_of_mix = max(d for _, d in alone_done) if alone_done else None
        mixed_only = [(cr, d) for cr, d in mixed_done if start_of_mix is None or cr > start_of_mix]
        mixed_rate = throughput(mixed_only)
        b_lat = latencies_s(api, b, b_out.ids)
        b_created = {
            i: stamps(api.get(f"/api/v1/notifications/{i}", headers=b).json())[0] for i in b_out.ids
        }
        bulk_state = (
            api.get(f"/api/v1/notifications/bulk/{bulk['id']}", headers=c).json()["counts"]
            if "id" in bulk
            else bulk
        )
        mix_s = time.monotonic() - mix_started

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q):.0f} ms" if values else "-"

    def s(values: list[float], q: float) -> str:
        if not values:
            return "-"
        v = percentile(values, q)
        return "not delivered" if v >= 1e9 else f"{v:.2f} s"

    print(
        f"\n  A (mix): {len(mixed.ids)} accepted, {mixed.limited} answered 429, "
        f"{len(mixed.failed)} failed; {len(mixed_only)} delivered at {mixed_rate:.1f}/s"
    )
    print(
        f"  B: {len(b_out.ids)} OTPs accepted, {b_out.limited} answered 429, "
        f"{len(b_out.failed)} failed"
    )
    print(
        f"  C: bulk answered {bulk.get('status')} in {float(bulk.get('accept_s', 0)):.2f} s; "
        f"{mix_s:.0f} s into the mix: {bulk_state}"
    )
    for failure in (alone.failed + mixed.failed + b_out.failed)[:5]:
        print(f"  failure: {failure}")
    ratio = mixed_rate / alone_rate if alone_rate else 0.0
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"| {'Figure':<44} | {'Target':<9} | {'Measured':<22} |")
    print(f"| {'-' * 44} | {'-' * 9} | {'-' * 22} |")
    rows = [
        ("B's created -> delivered, p50", "", s(b_lat, 0.5)),
        ("B's created -> delivered, p99", "<= 1 s", s(b_lat, 0.99)),
        ("B's accept latency, p50", "", ms(b_out.accept_ms, 0.5)),
        ("B's accept latency, p99", "<= 100 ms", ms(b_out.accept_ms, 0.99)),
        (
            "A's delivered throughput, mix / alone",
            ">= 90%",
            f"{ratio:.0%} ({mixed_rate:.1f} / {alone_rate:.1f}/s)",
        ),
        ("A's accept latency in the mix, p99", "", ms(mixed.accept_ms, 0.99)),
    ]
    for name, target, measured in rows:
        print(f"| {name:<44} | {target:<9} | {measured:<22} |")
    print("\nB's sends, seconds after acceptance (Temporal's event times):")
    steps = asyncio.run(where_the_time_went(stack, b_created))
    for latency, line in zip(b_lat, steps, strict=True):
        print(f"  delivered {s([latency], 0.5):>8}: {line}")
    return Isolation(
        percentile(b_lat, 0.99) if b_lat else 1e9,
        percentile(b_out.accept_ms, 0.99) if b_out.accept_ms else 1e9,
        ratio,
    )


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst-seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--otp-every", type=float, default=2.0)
    parser.add_argument(
        "--otp-after", type=float, default=20.0, help="B keeps sending this long after the burst"
    )
    parser.add_argument("--bulk-rows", type=int, default=10_000)
    return parser.parse_args(argv)


def main() -> None:
    with fresh_stack() as stack:
        run(stack, options())


if __name__ == "__main__":
    main()
