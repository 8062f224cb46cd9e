"""Send accept latency and send→delivered time, through Envoy, on a fresh
platform on free ports. Prints each figure beside a ceiling measured in the
same run: a read-only API call that crosses the same Envoy, interceptor and
gRPC server but writes nothing and starts no workflow.

    make bench                       # 200 sequential sends
    make bench BENCH_ARGS="--sends 500"
"""

import argparse
import signal
import statistics
import time
from datetime import datetime

import httpx

from bench.platform import fresh_stack
from runner.stack import Stack


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(
    call: "httpx.Client", method: str, path: str, **kwargs: object
) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = call.request(method, path, **kwargs)  # type: ignore[arg-type]
    return (time.perf_counter() - started) * 1000, response


def run(sends: int) -> None:
    started = time.monotonic()
    with fresh_stack() as stack:
        print(f"platform started in {time.monotonic() - started:.1f} s")
        measure(stack, sends)


def wait_delivered(api: httpx.Client, headers: dict[str, str], ids: list[str]) -> list[float]:
    """Waits for each notification to be delivered; returns acceptance→delivered
    in ms from the server's own timestamps."""
    deadline = time.monotonic() + 180
    to_delivered: list[float] = []
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        still = []
        for notification_id in pending:
            body = api.get(f"/api/v1/notifications/{notification_id}", headers=headers).json()
            if body["status"] == "delivered":
                created = datetime.fromisoformat(body["created_at"])
                updated = datetime.fromisoformat(body["updated_at"])
                to_delivered.append((updated - created).total_seconds() * 1000)
            else:
                still.append(notification_id)
        pending = still
        time.sleep(0.2)
    return to_delivered


def measure(stack: Stack, sends: int) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=30) as api:
        signup = api.post(
            "/portal/signup",
            json={"name": "Bench", "email": "bench@acme.example", "password": "benchmark pass"},
        ).json()
        headers = {"X-API-Key": signup["api_key"]}
        for _ in range(20):  # warm connections and caches
            api.get("/api/v1/channels/capabilities", headers=headers)

        ceiling = [
            timed(api, "GET", "/api/v1/channels/capabilities", headers=headers)[0]
            for _ in range(sends)
        ]

        def send_all(label: str) -> tuple[list[float], list[str]]:
            latencies, ids = [], []
            for i in range(sends):
                ms, response = timed(
                    api,
                    "POST",
                    "/api/v1/notifications/send",
                    headers=headers,
                    json={
                        "recipient": {"phone": "+14155550123"},
                        "notification": {"channels": ["sms"], "body": f"{label} {i}"},
                    },
                )
                assert response.status_code == 200, response.text
                latencies.append(ms)
                ids.append(response.json()["notification_id"])
            return latencies, ids

        # First with the worker paused (SIGSTOP to our own child), to separate
        # the accept path from the CPU that delivering earlier sends takes.
        worker = next(c for c in stack.children if c.name == "worker").process
        worker.send_signal(signal.SIGSTOP)
        try:
            accept_idle, paused_ids = send_all("paused")
        finally:
            worker.send_signal(signal.SIGCONT)

        wait_delivered(api, headers, paused_ids)  # drain the backlog first
        accept, ids = send_all("bench")
        to_delivered = wait_delivered(api, headers, ids)

    def row(name: str, values: list[float]) -> str:
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        mean = statistics.fmean(values)
        return f"{name:<40} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms   mean {mean:8.1f} ms"

    print(f"\n{sends} sequential requests through Envoy (one client)")
    print(row("ceiling: GET capabilities (no writes)", ceiling))
    print(row("send accept, worker paused", accept_idle))
    print(row("send accept, while delivering", accept))
    print(
        f"{'paused send p50 / ceiling p50':<40} "
        f"{percentile(accept_idle, 0.5) / percentile(ceiling, 0.5):.1f}x"
        "   (send = auth + validation + INSERT + start_workflow)"
    )
    print(
        f"{'delivering send p50 / paused p50':<40} "
        f"{percentile(accept, 0.5) / percentile(accept_idle, 0.5):.1f}x"
        "   (2 cores shared with Temporal, worker, sandbox)"
    )
    print(f"\n{len(to_delivered)}/{sends} delivered within the wait")
    if to_delivered:
        print(row("send → delivered (sandbox SMS)", to_delivered))
        print("  includes the sandbox's 0.2 s callback delay, as a provider's receipt lag")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=200)
    args = parser.parse_args()
    run(args.sends)


if __name__ == "__main__":
    main()
