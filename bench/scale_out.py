"""Scale-out, shown on this box: the same single-SMS burst on a fresh
platform with 1 tenant API server and 1 worker, then with 2 of each (Envoy
takes the API servers in turn; the workers poll the same task queue). The
bulk API server, the callbacks process, Temporal and PostgreSQL are shared.

    .venv/bin/python -m bench.scale_out [--sends 600] [--clients 16]

Prints the delivered rate, the CPU per send by process and, counted at the
sandbox, the provider creates per message: two workers must not send any
message twice."""

import argparse
import time
from collections import Counter

import httpx

from bench.bulk import cpu_seconds
from bench.platform import fresh_stack, new_tenant, sms_burst, wait_delivered
from bench.suite import UNLIMITED


def run(replicas: int, sends: int, clients: int) -> None:
    with (
        fresh_stack(UNLIMITED, replicas=replicas) as stack,
        httpx.Client(base_url=stack.api_url, timeout=30) as api,
    ):
        warm = new_tenant(api)
        sms_burst(stack, warm, 50, clients, tag="warm-up")
        wait_delivered(stack, warm, 50)
        tenant = new_tenant(api)
        tag = f"scale-{replicas}"
        roots = {c.process.pid: c.name for c in stack.children}
        before, started = cpu_seconds(roots), time.monotonic()
        accept_ms = sms_burst(stack, tenant, sends, clients, tag=tag)
        delivered = wait_delivered(stack, tenant, sends)
        elapsed = time.monotonic() - started
        after = cpu_seconds(roots)
        messages = httpx.get(
            f"{stack.sandbox_url}/sandbox/api/messages",
            params={"channel": "sms", "limit": "100000"},
            timeout=30,
        ).json()["messages"]
    copies = Counter(m["body"] for m in messages if m["body"].startswith(f"{tag} "))
    accept_ms.sort()
    print(
        f"{replicas} API server(s) + {replicas} worker(s): {delivered} of {sends} delivered in "
        f"{elapsed:.1f} s = {delivered / elapsed:.1f}/s; accept p99 "
        f"{accept_ms[int(0.99 * (len(accept_ms) - 1))]:.0f} ms"
    )
    print(
        f"  provider creates: {sum(copies.values())} for {len(copies)} messages; "
        f"sent more than once: {sum(1 for n in copies.values() if n > 1)}"
    )
    used = {n: (after[n] - before.get(n, 0.0)) * 1000 / sends for n in after}
    for name, ms in sorted(used.items(), key=lambda item: -item[1]):
        print(f"    {name:<16}{ms:7.2f} ms per send")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=600)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    for replicas in (1, 2):
        run(replicas, args.sends, args.clients)


if __name__ == "__main__":
    main()
