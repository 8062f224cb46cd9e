"""The supervisor behind `make run`: refuses taken ports at once, by name."""

import socket
import time
from pathlib import Path

import pytest

from runner.stack import BACKGROUND_NICENESS, Ports, Stack, StackError


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

    by_name = {child.name: niceness(child.process.pid) for child in stack.children}
    background = ("worker", "sandbox", "api-bulk", "callbacks", "envoy-webhooks")
    assert {by_name[name] for name in background} == {BACKGROUND_NICENESS}
    assert BACKGROUND_NICENESS > 0
    assert by_name["api"] == by_name["envoy"] == by_name["temporal"] == 0
