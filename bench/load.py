"""HTTP load through Envoy with wrk (Debian's `wrk`, C, one thread): a
Python client on these 2 cores would be its own bottleneck long before
Envoy or the API server is, and would bound the very ceilings measured."""

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    # Answers other than 2xx/3xx, and socket errors (connect, read, timeout).
    errors: int


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is missing: run `make bench-tools` (apt-get install wrk)")
    return path


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    body: object | None = None,
) -> Load:
    """`connections` keep-alive connections, each sending its next request
    as soon as the last was answered, for `seconds`; a JSON `body` is POSTed."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "request.lua"
        lines = [
            # Lua long strings take the JSON as it is; the level guards a "]]" inside.
            f"wrk.method = {'[==[POST]==]' if body is not None else '[==[GET]==]'}",
            *(f"wrk.headers[ [==[{k}]==] ] = [==[{v}]==]" for k, v in (headers or {}).items()),
        ]
        if body is not None:
            lines += [
                'wrk.headers["Content-Type"] = "application/json"',
                f"wrk.body = [==[{json.dumps(body)}]==]",
            ]
        # wrk counts only socket errors and non-2xx/3xx answers by itself.
        lines.append(
            "done = function(summary, latency, requests) "
            'io.write(string.format("errors %d\\n", summary.errors.connect + '
            "summary.errors.read + summary.errors.write + summary.errors.status + "
            "summary.errors.timeout)) end"
        )
        script.write_text("\n".join(lines) + "\n")
        output = subprocess.run(
            [
                wrk_path(),
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    errors = int(re.search(r"^errors (\d+)", output, re.M).group(1))  # type: ignore[union-attr]
    return Load(rate, p50, p99, errors)
