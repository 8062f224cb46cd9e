"""The supervisor behind `make run`: a child that dies is restarted, with
backoff and a log line, and counts as up only once its readiness check passes
again; one that keeps dying stops the platform, naming it and showing its log."""

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from runner.stack import Stack
from runner.supervisor import ChildSpec, CrashLoop, State, Supervisor
from tests.conftest import signup
from tests.e2e.waiting import wait_for_status
from tests.faults.conftest import StartStack, kill_and_wait_for_restart, sandbox_requests


def python_child(tmp_path: Path, name: str, code: str, ready_text: str = "") -> ChildSpec:
    return ChildSpec(
        name=name,
        command=[sys.executable, "-c", code],
        env=dict(os.environ),
        cwd=tmp_path,
        log_path=tmp_path / f"{name}.log",
        ready=lambda child: ready_text in child.output_since_start(),
        ready_timeout=10,
    )


def supervise_for(supervisor: Supervisor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    supervisor.run(lambda: time.monotonic() > deadline, interval=0.05)


def test_a_child_that_keeps_dying_stops_supervision_naming_it_with_its_log_tail(
    tmp_path: Path,
) -> None:
    reported: list[str] = []
    supervisor = Supervisor(
        backoff_initial=0.05, backoff_max=0.2, max_restarts=3, restart_window=60,
        report=reported.append,
    )  # fmt: skip
    code = "import sys; print('settings: CLARION_PORT is not a number'); sys.exit(3)"
    supervisor.start(python_child(tmp_path, "flaky", code, ready_text="serving"))
    try:
        with pytest.raises(CrashLoop) as raised:
            supervise_for(supervisor, 15)
    finally:
        supervisor.stop()
    message = str(raised.value)
    assert message.startswith("flaky exited with code 3, its 4th death within 60 s")
    assert "settings: CLARION_PORT is not a number" in message
    # Three restarts, each after a doubled delay, were reported before it gave up.
    assert [line.split(") ", 1)[1] for line in reported] == [
        "exited with code 3; restart 1 in 0.05 s",
        "exited with code 3; restart 2 in 0.1 s",
        "exited with code 3; restart 3 in 0.2 s",
    ]
    assert all(line.startswith("flaky (pid ") for line in reported)


def test_a_restarted_child_counts_as_up_only_when_its_new_run_is_ready(tmp_path: Path) -> None:
    reported: list[str] = []
    supervisor = Supervisor(backoff_initial=0.05, report=reported.append)
    # Ready one second after each start; the log keeps the earlier run's line.
    code = "import time; time.sleep(1); print('serving', flush=True); time.sleep(60)"
    child = supervisor.start(python_child(tmp_path, "server", code, ready_text="serving"))
    try:
        supervisor.wait_ready(child)
        first_pid = child.process.pid
        os.kill(first_pid, signal.SIGKILL)
        supervise_for(supervisor, 0.5)
        assert child.process.pid != first_pid
        assert child.state is State.STARTING, "the old run's 'serving' must not count"
        supervise_for(supervisor, 2)
        assert child.state is State.UP
    finally:
        supervisor.stop()
    assert reported == [
        f"server (pid {first_pid}) was killed by SIGKILL; restart 1 in 0.05 s",
        f"server is up again (pid {child.process.pid})",
    ]


def send_sms(platform: Stack, to: str) -> dict[str, object]:
    """Signs up and sends one SMS as a tenant, through Envoy; returns its final view."""
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        tenant = signup(api)
        response = tenant.post(
            "/api/v1/notifications/send",
            {
                "recipient": {"phone": to},
                "notification": {"channels": ["sms"], "body": f"after the kill {to}"},
            },
        )
        assert response.status_code == 200, response.text
        notification_id = response.json()["notification_id"]
        return wait_for_status(tenant, notification_id, {"delivered", "failed"}, timeout=60)


def test_a_killed_worker_is_restarted_and_the_next_send_is_delivered(
    own_stack: StartStack, capfd: pytest.CaptureFixture[str]
) -> None:
    platform = own_stack()
    old_pid = kill_and_wait_for_restart(platform, "worker")
    assert f"worker (pid {old_pid}) was killed by SIGKILL; restart 1 in 0.5 s" in (
        capfd.readouterr().err
    )
    final = send_sms(platform, "+14155550101")
    assert final["status"] == "delivered", final
    assert len(sandbox_requests(platform, channel="sms", to="+14155550101")) == 1


def test_killed_envoy_and_api_server_come_back(
    own_stack: StartStack, capfd: pytest.CaptureFixture[str]
) -> None:
    platform = own_stack()
    killed = {name: kill_and_wait_for_restart(platform, name) for name in ("envoy", "api")}
    err = capfd.readouterr().err
    for name, pid in killed.items():
        assert f"{name} (pid {pid}) was killed by SIGKILL; restart 1" in err
        assert f"{name} is up again (pid {platform.pid(name)})" in err
    final = send_sms(platform, "+14155550102")
    assert final["status"] == "delivered", final
