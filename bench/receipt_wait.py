"""What a notification's wait for its receipt costs Temporal: the raw
workflow of bench.ceiling in three shapes on one fresh dev server, each with
the rate and the dev server's CPU per workflow:

- local: the local activity only (a workflow that ends once the provider
  took the message);
- signal: and a signal (the single-send ceiling);
- receipt_wait: and a signal that cancels a timeout's timer, which is what
  NotificationWorkflow does for each receipt.

    .venv/bin/python -m bench.receipt_wait [--workflows 1000] [--rounds 2]
"""

import argparse

from bench.bulk import cpu_seconds
from bench.ceiling import SHAPES, ceiling
from bench.platform import fresh_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="each shape, interleaved")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {shape: [] for shape in SHAPES}
    with fresh_stack() as stack:
        roots = {c.process.pid: c.spec.name for c in stack.children if c.spec.name == "temporal"}
        address = f"127.0.0.1:{stack.ports.temporal}"
        for _ in range(args.rounds):
            for shape in SHAPES:
                before = cpu_seconds(roots)["temporal"]
                rate = ceiling(address, args.workflows, shape=shape)
                # ceiling() runs 100 unmeasured workflows first.
                used = cpu_seconds(roots)["temporal"] - before
                results[shape].append((rate, used * 1000 / (args.workflows + 100)))
                print(f"  {shape:<13}{rate:7.1f}/s  Temporal {results[shape][-1][1]:6.2f} ms each")
    print(f"\n{args.workflows} workflows a round, {args.rounds} rounds, means:")
    for shape, runs in results.items():
        rate = sum(r for r, _ in runs) / len(runs)
        ms = sum(m for _, m in runs) / len(runs)
        print(f"  {shape:<13}{rate:7.1f}/s  Temporal {ms:6.2f} ms each")


if __name__ == "__main__":
    main()
