"""The supervisor behind `make run`: refuses taken ports at once, by name."""

import socket
import time
from pathlib import Path

import pytest

from runner.stack import Ports, Stack, StackError


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
