"""The supervisor behind `make run`: refuses taken ports at once, by name;
runs background work at lower priority; passes settings to every child."""

import socket
import time
from pathlib import Path

import pytest

from runner.stack import BACKGROUND_NICENESS, LOWEST_NICENESS, Ports, Stack, StackError


def test_taken_port_fails_at_once_naming_it(tmp_path: Path) -> None:
    ports = Ports.free()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports.grpc))
        holder.listen()
        stack = Stack(data_dir=tmp_path, ports=ports, database_url="postgresql://unused/x")
        started = time.monotonic()
        with pytest.raises(StackError, match=rf"port {ports.grpc} \(gRPC API\)"):
            stack.start()
        assert time.monotonic() - started < 1
        assert stack.children == []


def test_background_work_yields_the_cpu_to_requests(stack: Stack) -> None:
    def niceness(pid: int) -> int:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # Field 19; the command name before it is in parentheses and may hold spaces.
        return int(stat[stat.rindex(")") + 2 :].split()[16])

    def group_niceness(pid: int) -> int:
        # "/autogroup-123 nice 10": the weight the scheduler gives the
        # child's session against the others, whatever its threads' niceness.
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])

    by_name = {child.name: niceness(child.process.pid) for child in stack.children}
    background = ("sandbox", "api-bulk", "callbacks", "envoy-webhooks")
    assert {by_name[name] for name in background} == {BACKGROUND_NICENESS}
    assert BACKGROUND_NICENESS > 0
    # Tenants' webhooks yield even to receipts.
    assert by_name["webhooks"] == LOWEST_NICENESS > BACKGROUND_NICENESS
    assert by_name["api"] == by_name["envoy"] == by_name["temporal"] == by_name["worker"] == 0
    if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1":
        groups = {child.name: group_niceness(child.process.pid) for child in stack.children}
        assert groups == by_name


def test_an_operators_webhook_url_reaches_every_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = Stack(data_dir=tmp_path, ports=Ports.free())
    assert stack.env()["CLARION_WEBHOOK_BASE_URL"] == f"http://127.0.0.1:{stack.ports.webhooks}"
    # Behind a tunnel or load balancer, providers are given the public URL,
    # and receipts check signatures against it.
    monkeypatch.setenv("CLARION_WEBHOOK_BASE_URL", "https://hooks.acme.example/")
    assert stack.webhook_url == "https://hooks.acme.example"
    assert stack.env()["CLARION_WEBHOOK_BASE_URL"] == "https://hooks.acme.example"
