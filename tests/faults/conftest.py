"""Fault tests: each starts a whole platform of its own (embedded PostgreSQL,
Temporal, sandbox, API, worker, Envoys) on free ports, hurts only those
processes, and stops them by PID. CI's shared PostgreSQL server is never used
here, because these tests freeze and kill the database. The platform is
supervised as under `make run`: a child the test kills is restarted."""

import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from runner.stack import Ports, Stack
from tests.conftest import TEST_SETTINGS
from tests.e2e.waiting import wait_for

StartStack = Callable[..., Stack]


@pytest.fixture
def own_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StartStack]:
    """Starts a private platform; `overrides` are extra CLARION_* settings.
    With `supervised` (the default) a background thread restarts its dead
    children until the test ends; a crash loop fails the test."""
    # The children inherit this process's environment: never CI's database.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CLARION_DATABASE_URL", raising=False)
    started: list[Stack] = []
    supervisors: list[threading.Thread] = []
    stop_supervising = threading.Event()
    supervision_errors: list[BaseException] = []

    def supervise(platform: Stack) -> None:
        try:
            platform.supervise(stop_supervising.is_set)
        except BaseException as error:
            supervision_errors.append(error)

    def start(*, supervised: bool = True, **overrides: str) -> Stack:
        platform = Stack(
            data_dir=tmp_path / f"stack{len(started)}",
            ports=Ports.free(),
            overrides={**TEST_SETTINGS, **overrides},
            database_url=None,
            headless=True,
        )
        started.append(platform)
        platform.start()
        if supervised:
            thread = threading.Thread(target=supervise, args=(platform,), daemon=True)
            thread.start()
            supervisors.append(thread)
        return platform

    yield start
    stop_supervising.set()
    for thread in supervisors:
        thread.join(timeout=30)
    for platform in started:
        platform.stop()
    if supervision_errors:
        raise supervision_errors[0]


def sandbox_requests(platform: Stack, **filters: str) -> list[dict[str, object]]:
    """Every provider request the sandbox received, newest first."""
    response = httpx.get(
        f"{platform.sandbox_url}/sandbox/api/requests",
        params={"limit": "100000", **filters},
        timeout=30,
    )
    response.raise_for_status()
    requests: list[dict[str, object]] = response.json()["requests"]
    return requests


def kill_and_wait_for_restart(
    platform: Stack, name: str, sig: signal.Signals = signal.SIGKILL
) -> int:
    """Sends `sig` to the named child and waits until the supervisor has it up
    again under a new PID; returns the old PID."""
    old_pid = platform.pid(name)
    os.kill(old_pid, sig)
    wait_for(lambda: platform.pid(name) != old_pid, timeout=10)
    platform.wait_up(name, timeout=60)
    return old_pid


def creates_by_number(platform: Stack, channel: str = "sms") -> Counter[str]:
    """How many create requests the sandbox accepted for each number."""
    return Counter(
        str(r["to"])
        for r in sandbox_requests(platform, channel=channel)
        if r["outcome"] == "accepted"
    )
