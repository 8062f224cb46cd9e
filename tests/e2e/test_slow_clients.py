"""Slow clients cannot hold Envoy's connections: headers that never finish
and requests that stall are cut off by Envoy's timeouts."""

import socket
import time

from gateway.envoy_config import REQUEST_HEADERS_TIMEOUT, STREAM_IDLE_TIMEOUT
from runner.stack import Stack


def _seconds(duration: str) -> float:
    return float(duration.removesuffix("s"))


def _wait_closed(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until Envoy closed the connection, and what it sent first."""
    started = time.monotonic()
    sock.settimeout(limit)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return time.monotonic() - started, received


def test_headers_that_never_finish_are_cut_off(stack: Stack) -> None:
    timeout = _seconds(REQUEST_HEADERS_TIMEOUT)
    with socket.create_connection(("127.0.0.1", stack.ports.envoy), timeout=5) as sock:
        sock.sendall(b"POST /portal/signup HTTP/1.1\r\nHost: clarion\r\nX-Slow: ")
        waited, received = _wait_closed(sock, timeout + 10)
    assert timeout - 1 <= waited <= timeout + 5, waited
    assert received == b"" or received.startswith(b"HTTP/1.1 408"), received[:200]


def test_a_body_that_stalls_is_cut_off(stack: Stack) -> None:
    idle = _seconds(STREAM_IDLE_TIMEOUT)
    with socket.create_connection(("127.0.0.1", stack.ports.envoy), timeout=5) as sock:
        sock.sendall(
            b"POST /portal/signup HTTP/1.1\r\nHost: clarion\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name": '
        )
        waited, received = _wait_closed(sock, idle + 10)
    assert idle - 1 <= waited <= idle + 5, waited
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
