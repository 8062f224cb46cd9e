"""CPU per single SMS, by process: a burst of single sends through Envoy on
a fresh platform, each child's CPU time (with its descendants, and every
PostgreSQL process) read before and after, divided by the sends delivered.

    .venv/bin/python -m bench.cpu_per_send [--sends 600] [--clients 8]
"""

import argparse
import time

import httpx

from bench.bulk import cpu_seconds
from bench.ceiling import ceiling
from bench.platform import BenchTenant, fresh_stack, new_tenant, sms_burst, wait_delivered
from bench.webhooks import EVENT_TYPES, EVENTS_PER_SEND, Receivers
from runner.stack import Stack


def burst(stack: Stack, tenant: BenchTenant, sends: int, clients: int) -> None:
    sms_burst(stack, tenant, sends, clients)
    wait_delivered(stack, tenant, sends)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--raw-workflows", type=int, default=1000)
    parser.add_argument(
        "--webhooks", type=int, default=0, help="endpoints the tenant registers (all events)"
    )
    args = parser.parse_args()
    receivers = Receivers(args.webhooks) if args.webhooks else None
    overrides = {"CLARION_ALLOW_PRIVATE_WEBHOOKS": "true"} if receivers else {}
    with (
        fresh_stack(overrides) as stack,
        httpx.Client(base_url=stack.api_url, timeout=30) as api,
    ):
        burst(stack, new_tenant(api), 50, args.clients)  # warm-up, unmeasured
        tenant = new_tenant(api)
        for url in receivers.urls if receivers else []:
            created = api.post(
                "/api/v1/webhooks",
                headers=tenant.headers,
                json={"url": url, "event_types": EVENT_TYPES},
            )
            assert created.status_code == 200, created.text
        time.sleep(2)
        roots = {c.process.pid: c.spec.name for c in stack.children}
        before, started = cpu_seconds(roots), time.monotonic()
        burst(stack, tenant, args.sends, args.clients)
        if receivers:
            receivers.wait_for(args.sends * EVENTS_PER_SEND * args.webhooks, timeout=120)
            receivers.stop()
        after, elapsed = cpu_seconds(roots), time.monotonic() - started
        address = f"127.0.0.1:{stack.ports.temporal}"
        raw_before = cpu_seconds(roots)["temporal"]
        raw_rate = ceiling(address, args.raw_workflows)
        raw_ms = (cpu_seconds(roots)["temporal"] - raw_before) * 1000 / (args.raw_workflows + 100)
    print(f"{args.sends} single SMS from {args.clients} clients, delivered in {elapsed:.1f} s "
          f"({args.sends / elapsed:.1f}/s)")  # fmt: skip
    used = {name: (after[name] - before.get(name, 0.0)) * 1000 / args.sends for name in after}
    for name, ms in sorted(used.items(), key=lambda item: -item[1]):
        print(f"  {name:<16}{ms:7.2f} ms per send")
    print(f"  {'all':<16}{sum(used.values()):7.2f} ms per send")
    print(f"raw workflow (1 local activity, 1 signal) on the same Temporal: {raw_rate:.1f}/s, "
          f"Temporal {raw_ms:.2f} ms each")  # fmt: skip


if __name__ == "__main__":
    main()
