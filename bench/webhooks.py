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
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from bench.send_latency import percentile
from runner.stack import Ports, Stack

ENDPOINTS = 3
EVENT_TYPES = ["delivery.queued", "delivery.sent", "delivery.delivered", "delivery.failed"]


class Receivers:
    """ENDPOINTS local HTTP servers that count what they receive."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receivers._lock:
                    receivers.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(ENDPOINTS)]
        for server in self._servers:
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{s.server_address[1]}/hook" for s in self._servers]

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()


@contextmanager
def platform() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(
            data_dir=Path(tmp),
            ports=Ports.free(),
            overrides={"CLARION_ALLOW_PRIVATE_WEBHOOKS": "true"},
            headless=True,
        )
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


@dataclass
class Round:
    accept_ms: list[float]
    # Sends per second from the first send to the last delivered.
    delivered_per_second: float
    delivered: int


def new_tenant(api: httpx.Client) -> dict[str, str]:
    body = api.post(
        "/portal/signup",
        json={
            "name": "Bench",
            "email": f"bench-{secrets.token_hex(6)}@acme.example",
            "password": "benchmark passphrase 42",
        },
    ).json()
    return {"X-API-Key": body["api_key"]}


def delivered_count(api: httpx.Client, headers: dict[str, str]) -> int:
    count, token = 0, ""
    while True:
        page = api.get(
            "/api/v1/notifications",
            headers=headers,
            params={"status": "delivered", "page_size": 100, "page_token": token},
        ).json()
        count += len(page["notifications"])
        token = page["next_page_token"]
        if not token:
            return count


def run_round(stack: Stack, headers: dict[str, str], sends: int, clients: int) -> Round:
    def send(i: int) -> float:
        # One keep-alive connection per sending thread.
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=stack.api_url, timeout=30)
        started = time.perf_counter()
        response = client.post(
            "/api/v1/notifications/send",
            headers=headers,
            json={
                "recipient": {"phone": f"+1415558{i % 10_000:04d}"},
                "notification": {"channels": ["sms"], "body": f"bench {i}"},
            },
        )
        assert response.status_code == 200, response.text
        return (time.perf_counter() - started) * 1000

    local = threading.local()
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        accept = list(pool.map(send, range(sends)))
    with httpx.Client(base_url=stack.api_url, timeout=30) as api:
        deadline = time.monotonic() + 300
        done = 0
        while time.monotonic() < deadline:
            done = delivered_count(api, headers)
            if done >= sends:
                break
            time.sleep(0.5)
    elapsed = time.monotonic() - started
    return Round(accept, done / elapsed, done)


def measure(sends: int, rounds: int, clients: int) -> None:
    receivers = Receivers()
    try:
        with platform() as stack, httpx.Client(base_url=stack.api_url, timeout=30) as api:
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
                    headers = new_tenant(api)
                    if kind == "hooked":
                        for url in receivers.urls:
                            created = api.post(
                                "/api/v1/webhooks",
                                headers=headers,
                                json={"url": url, "event_types": EVENT_TYPES},
                            )
                            assert created.status_code == 200, created.text
                    result = run_round(stack, headers, sends, clients)
                    (hooked if kind == "hooked" else plain).append(result)
                    hooked_sends += sends if kind == "hooked" else 0
                    print(
                        f"round {number + 1} {kind:>6}: accept p99 "
                        f"{percentile(result.accept_ms, 0.99):7.1f} ms, "
                        f"{result.delivered}/{sends} delivered at "
                        f"{result.delivered_per_second:5.1f}/s"
                    )
            # Every status change of every hooked send, at each endpoint.
            expected = hooked_sends * 3 * ENDPOINTS
            deadline = time.monotonic() + 120
            while receivers.count < expected and time.monotonic() < deadline:
                time.sleep(0.5)
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
