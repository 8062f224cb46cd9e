"""CPU that parsing a streamed CSV upload costs, by chunk size.

    .venv/bin/python -m bench.csv_parse [--megabytes 50]

Parses the same generated CSV (recipients and two data columns; every tenth
row has a quoted note holding a line break, every hundredth a 64 KiB quoted
note of many lines that spans 16 small chunks) as Envoy would stream it in 4 KiB
chunks and in 1 MiB chunks, through the server's own reader, and prints the
process CPU of each and their ratio. Parsing is linear when the ratio is near
1: the reader keeps its quote state between chunks instead of rescanning."""

import argparse
import asyncio
import time
from collections.abc import AsyncIterator

from server.services.bulk_csv import csv_rows

TARGET_RATIO = 1.2


def make_csv(megabytes: float) -> bytes:
    lines = ["email,phone,data.name,data.note"]
    size = 0
    i = 0
    while size < megabytes * 1_000_000:
        if i % 100 == 0:
            note = '"' + f"a long note {i}, line\n" * 2700 + '"'
        elif i % 10 == 0:
            note = f'"a note, on\ntwo lines {i}"'
        else:
            note = f"note {i}"
        line = f"user{i}@example.com,+1212{2000000 + i:07d},Name {i},{note}"
        lines.append(line)
        size += len(line) + 1
        i += 1
    return ("\n".join(lines) + "\n").encode()


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


async def parse_cpu(data: bytes, chunk: int) -> tuple[float, int]:
    """Process CPU seconds to read every row, and the number of rows."""
    started = time.process_time()
    rows = 0
    async for _ in csv_rows(_chunks(data, chunk)):
        rows += 1
    return time.process_time() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=50)
    args = parser.parse_args()
    data = make_csv(args.megabytes)
    print(f"CSV of {len(data) / 1e6:.1f} MB")
    results = {}
    for label, chunk in (("4 KiB chunks", 4096), ("1 MiB chunks", 1024 * 1024)):
        cpu, rows = asyncio.run(parse_cpu(data, chunk))
        results[label] = cpu
        print(f"{label:>14}: {cpu:6.2f} s CPU for {rows} rows ({rows / cpu:,.0f} rows/s)")
    ratio = results["4 KiB chunks"] / results["1 MiB chunks"]
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"{'ratio':>14}: {ratio:.2f}x ({verdict} the target of <= {TARGET_RATIO}x)")


if __name__ == "__main__":
    main()
