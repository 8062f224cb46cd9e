"""Test helpers: the sandbox subprocess, a callback receiver, and independent verifiers.

The verifiers below are re-implemented here from the providers' documentation
on purpose, rather than imported from sandbox.signing, so a wrong algorithm in
the sandbox cannot be confirmed by itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
SID = "AC00000000000000000000000000000000"
TOKEN = "sandbox-twilio-token"
MAILGUN_KEY = "sandbox-mailgun-key"
SLACK_TOKEN = "xoxb-sandbox-token"
META_TOKEN = "sandbox-meta-token"
META_SECRET = "sandbox-meta-secret"
VERIFY_TOKEN = "sandbox-verify-token"
READY = re.compile(r"^sandbox ready http=([\d.]+):(\d+) smtp=([\d.]+):(\d+)$")


# -- independent signature checks --------------------------------------------


def expected_twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    # twilio.com/docs/usage/security: URL, then each POST field name+value
    # sorted by name, HMAC-SHA1 with the auth token, base64.
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    mac = hmac.new(token.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def expected_mailgun_signature(key: str, timestamp: str, token: str) -> str:
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def expected_meta_signature(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


# -- callback receiver --------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A tiny aiohttp server on 127.0.0.1:0, run in its own thread and loop.

    It records every request.  `fail(path, n)` makes the next n requests to a
    path answer 503 (a platform that is down); `respond(path, text)` serves a
    fixed body (e.g. TwiML).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._bodies: dict[str, tuple[str, str]] = {}
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail(self, path: str, times: int) -> None:
        with self._lock:
            self._failures[path] = times

    def respond(self, path: str, text: str, content_type: str = "text/xml") -> None:
        with self._lock:
            self._bodies[path] = (text, content_type)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            self.received.append(
                Received(
                    request.method, request.path, request.query_string, dict(request.headers), body
                )
            )
            remaining = self._failures.get(request.path, 0)
            if remaining:
                self._failures[request.path] = remaining - 1
                return web.Response(status=503, text="down")
            canned = self._bodies.get(request.path)
        if canned:
            return web.Response(text=canned[0], content_type=canned[1])
        if request.method == "GET" and "hub.challenge" in request.query:
            if request.query.get("hub.verify_token") == VERIFY_TOKEN:
                return web.Response(text=request.query["hub.challenge"])
            return web.Response(status=403)
        return web.Response(text="ok")

    def matching(self, pred: Callable[[Received], bool]) -> list[Received]:
        with self._lock:
            return [r for r in self.received if pred(r)]

    async def wait_for(
        self, pred: Callable[[Received], bool], count: int = 1, within: float = 10.0
    ) -> list[Received]:
        deadline = time.monotonic() + within
        while True:
            found = self.matching(pred)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05)


# -- the sandbox subprocess ---------------------------------------------------


@dataclass
class SandboxProcess:
    proc: subprocess.Popen[str]
    http: str
    smtp_host: str
    smtp_port: int
    stderr_path: str

    def stop(self) -> int:
        """SIGTERM by PID and wait; returns the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def stderr(self) -> str:
        return Path(self.stderr_path).read_text()


def start_sandbox(*args: str, env: dict[str, str] | None = None) -> SandboxProcess:
    err = tempfile.NamedTemporaryFile(prefix="sandbox-", suffix=".log", delete=False)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        # Ephemeral ports unless the caller overrides them (argparse: last one wins).
        [sys.executable, "-m", "sandbox", "--http-port", "0", "--smtp-port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env=full_env,
    )
    err.close()  # the child holds its own descriptor
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline().strip() if ready else ""
    match = READY.match(line)
    if not match:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        raise RuntimeError(f"sandbox did not start: {line!r}\n{Path(err.name).read_text()}")
    return SandboxProcess(
        proc=proc,
        http=f"http://{match.group(1)}:{match.group(2)}",
        smtp_host=match.group(3),
        smtp_port=int(match.group(4)),
        stderr_path=err.name,
    )
