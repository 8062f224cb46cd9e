"""Does a flood of signups move another tenant's latency? On a fresh platform
on free ports, through Envoy.

    .venv/bin/python -m bench.signup_flood [--seconds 20] [--rate 50] [--probe-rate 20]

Tenant B sends single SMS at --probe-rate per second, first on a quiet
platform, then while --rate new signups per second arrive (strong passwords,
new emails, so each would cost an argon2 hash of 64 MiB) from 50 loopback
addresses, so the per-address limit at Envoy does not hide them. Prints B's
accept p50/p99 in both phases, their ratio, and what the signups got."""

import argparse
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.platform import fresh_stack
from bench.send_latency import percentile, timed

TARGET_P99_MS = 100.0
ADDRESSES = [f"127.1.0.{i}" for i in range(1, 51)]


def probe(api: httpx.Client, key: str, seconds: float, rate: float) -> list[float]:
    """B's accept latencies, in ms, paced at `rate` per second."""
    latencies = []
    started = time.monotonic()
    i = 0
    while (now := time.monotonic()) < started + seconds:
        due = started + i / rate
        if due > now:
            time.sleep(due - now)
        ms, response = timed(
            api,
            "POST",
            "/api/v1/notifications/send",
            headers={"X-API-Key": key},
            json={
                "recipient": {"phone": f"+1212{3000000 + i:07d}"},
                "notification": {"channels": ["sms"], "body": "probe"},
            },
        )
        assert response.status_code == 200, response.text
        latencies.append(ms)
        i += 1
    return latencies


def flood(base_url: str, seconds: float, rate: float, kind: str, outcomes: Counter[str]) -> None:
    clients = [
        httpx.Client(base_url=base_url, timeout=30, transport=httpx.HTTPTransport(local_address=a))
        for a in ADDRESSES
    ]
    lock = threading.Lock()

    def signup(i: int) -> None:
        email = (
            "b@bench.example" if kind == "taken" else f"flood-{i}-{secrets.token_hex(3)}@f.example"
        )
        password = "password1234" if kind == "weak" else f"violet sparrow {secrets.token_hex(4)}"
        body = {"name": f"Flood {i}", "email": email, "password": password}
        try:
            response = clients[i % len(clients)].post("/portal/signup", json=body)
            outcome = str(response.status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        with lock:
            outcomes[outcome] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(int(seconds * rate)):
            due = started + i / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            pool.submit(signup, i)
    for client in clients:
        client.close()


def summary(label: str, latencies: list[float]) -> float:
    p99 = percentile(latencies, 0.99)
    print(
        f"{label:>26}: {len(latencies)} sends, accept p50 {percentile(latencies, 0.5):.1f} ms, "
        f"p99 {p99:.1f} ms"
    )
    return p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--probe-rate", type=float, default=20)
    parser.add_argument(
        "--kind",
        choices=["new", "taken", "weak"],
        default="new",
        help="new: strong passwords and new emails, each needing a hash (default); "
        "taken: an email that has an account; weak: passwords zxcvbn refuses",
    )
    args = parser.parse_args()
    with fresh_stack() as stack, httpx.Client(base_url=stack.api_url, timeout=30) as api:
        key = api.post(
            "/portal/signup",
            json={"name": "B", "email": "b@bench.example", "password": "benchmark pass"},
        ).json()["api_key"]
        probe(api, key, 3, args.probe_rate)  # warm up
        quiet = summary("quiet", probe(api, key, args.seconds, args.probe_rate))
        outcomes: Counter[str] = Counter()
        flooding = threading.Thread(
            target=flood, args=(stack.api_url, args.seconds, args.rate, args.kind, outcomes)
        )
        flooding.start()
        during = probe(api, key, args.seconds, args.probe_rate)
        flooding.join()
        loud = summary(f"{args.rate:g} {args.kind} signups/s", during)
        print(f"{'signups answered':>26}: {dict(sorted(outcomes.items()))}")
        verdict = "meets" if loud <= TARGET_P99_MS else "misses"
        print(
            f"{'p99 during / quiet':>26}: {loud / quiet:.2f}x; {loud:.1f} ms "
            f"{verdict} the target of <= {TARGET_P99_MS:g} ms"
        )


if __name__ == "__main__":
    main()
