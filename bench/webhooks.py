"""Does registering webhooks slow sending? Single-send accept latency and
delivered throughput for a tenant with 3 endpoints (subscribed to every
delivery event, so each SMS queues 9 webhook messages) against a tenant
with none, in alternating rounds on one fresh platform, through Envoy. The
receivers are local HTTP servers answering 200 (private webhooks allowed).
The target: both within 10% of no webhooks.

    make bench-webhooks                                 # 3 rounds of 300 sends, 8 clients
    make bench-webhooks BENCH_ARGS="--sends 20 --rounds 1"   # a smoke run
"""

import argparse
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized

import httpx

from bench.platform import BenchTenant, fresh_stack, new_tenant, sms_burst, wait_delivered
from bench.send_latency import percentile
from runner.stack import Stack

ENDPOINTS = 3
# An SMS to the sandbox goes queued, sent, delivered: an event each.
EVENTS_PER_SEND = 3
EVENT_TYPES = ["delivery.queued", "delivery.sent", "delivery.delivered", "delivery.failed"]


def _serve(count: "Synchronized[int]", ports: "Queue[int]", servers: int) -> None:
    """The receivers' process: HTTP servers answering 200."""
    os.nice(19)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with count.get_lock():
                count.value += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    for server in [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(servers)]:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ports.put(server.server_address[1])
    threading.Event().wait()


class Receivers:
    """Local HTTP servers that count what they receive. They stand
    for the tenant's own servers, which run elsewhere in production, so they
    run in a child process at the lowest CPU priority: in this process they
    would share the GIL with the sending threads and inflate the accept
    latency measured, and at full weight they would take the platform's
    CPU for work that is not Clarion's."""

    def __init__(self, servers: int = ENDPOINTS) -> None:
        context = multiprocessing.get_context("spawn")
        self._count = context.Value("q", 0)
        ports = context.Queue()
        self._process = context.Process(
            target=_serve, args=(self._count, ports, servers), daemon=True
        )
        self._process.start()
        self._ports = [ports.get(timeout=30) for _ in range(servers)]

    @property
    def count(self) -> int:
        return int(self._count.value)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/hook" for port in self._ports]

    def wait_for(self, expected: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count < expected and time.monotonic() < deadline:
            time.sleep(0.5)

    def stop(self) -> None:
        self._process.terminate()
        self._process.join(10)


@dataclass
class Round:
    accept_ms: list[float]
    # Sends per second from the first send to the last delivered.
    delivered_per_second: float
    delivered: int


def run_round(stack: Stack, tenant: BenchTenant, sends: int, clients: int) -> Round:
    started = time.monotonic()
    accept = sms_burst(stack, tenant, sends, clients)
    done = wait_delivered(stack, tenant, sends)
    return Round(accept, done / (time.monotonic() - started), done)


def measure(sends: int, rounds: int, clients: int) -> None:
    receivers = Receivers()
    try:
        with (
            fresh_stack({"CLARION_ALLOW_PRIVATE_WEBHOOKS": "true"}) as stack,
            httpx.Client(base_url=stack.api_url, timeout=30) as api,
        ):
            plain: list[Round] = []
            hooked: list[Round] = []
            hooked_sends = 0
            # Unmeasured: the first sends pay for cold caches and connections.
            run_round(stack, new_tenant(api), min(sends, 20), clients)
            for number in range(rounds):
                # Fresh tenants each round, so earlier rounds' rows do not
                # weigh on one side only; the order alternates.
                order = ["none", "hooked"] if number % 2 == 0 else ["hooked", "none"]
                for kind in order:
                    tenant = new_tenant(api)
                    if kind == "hooked":
                        for url in receivers.urls:
                            created = api.post(
                                "/api/v1/webhooks",
                                headers=tenant.headers,
                                json={"url": url, "event_types": EVENT_TYPES},
                            )
                            assert created.status_code == 200, created.text
                    result = run_round(stack, tenant, sends, clients)
                    (hooked if kind == "hooked" else plain).append(result)
                    hooked_sends += sends if kind == "hooked" else 0
                    # The next round starts once these webhooks are out, so
                    # their cost is counted in the round that caused it.
                    receivers.wait_for(hooked_sends * EVENTS_PER_SEND * ENDPOINTS, timeout=120)
                    print(
                        f"round {number + 1} {kind:>6}: accept p99 "
                        f"{percentile(result.accept_ms, 0.99):7.1f} ms, "
                        f"{result.delivered}/{sends} delivered at "
                        f"{result.delivered_per_second:5.1f}/s"
                    )
            expected = hooked_sends * EVENTS_PER_SEND * ENDPOINTS
    finally:
        receivers.stop()

    def summary(results: list[Round]) -> tuple[float, float, float]:
        accept = [ms for r in results for ms in r.accept_ms]
        rate = sum(r.delivered_per_second for r in results) / len(results)
        return percentile(accept, 0.5), percentile(accept, 0.99), rate

    p50_none, p99_none, rate_none = summary(plain)
    p50_hooked, p99_hooked, rate_hooked = summary(hooked)
    print(f"\n{rounds} rounds of {sends} SMS sends from {clients} clients per tenant")
    print(f"{'':<28}{'accept p50':>12}{'accept p99':>12}{'delivered/s':>13}")
    print(f"{'no webhooks':<28}{p50_none:10.1f}ms{p99_none:10.1f}ms{rate_none:13.1f}")
    print(f"{f'{ENDPOINTS} endpoints, all events':<28}"
          f"{p50_hooked:10.1f}ms{p99_hooked:10.1f}ms{rate_hooked:13.1f}")  # fmt: skip
    print(
        f"ratio (webhooks / none): accept p99 {p99_hooked / p99_none:.2f}, "
        f"delivered throughput {rate_hooked / rate_none:.2f} (target: p99 <= 1.10, "
        "throughput >= 0.90)"
    )
    print(f"webhook requests received: {receivers.count} of {expected} expected")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=300, help="sends per tenant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="concurrent senders")
    args = parser.parse_args()
    measure(args.sends, args.rounds, args.clients)


if __name__ == "__main__":
    main()
