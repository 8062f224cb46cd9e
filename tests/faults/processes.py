"""Hurting a private platform's processes: freezing its embedded PostgreSQL
(the postmaster and all its children, found through /proc) and SIGSTOPping
or SIGKILLing one child by PID."""

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.stack import Stack


def postmaster_pid(platform: Stack) -> int:
    """The first line of the embedded server's postmaster.pid."""
    pid_file = next((platform.data_dir / "postgres").rglob("postmaster.pid"))
    return int(pid_file.read_text().split()[0])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The field after the parenthesised command name is the state, then the ppid.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@contextmanager
def stopped(pids: list[int]) -> Iterator[None]:
    """SIGSTOPs the processes for the block; SIGCONT always follows."""
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


@contextmanager
def postgres_frozen(platform: Stack) -> Iterator[list[int]]:
    """Every process of the platform's own PostgreSQL server stopped: it
    still accepts TCP connections (the kernel does) and never answers."""
    postmaster = postmaster_pid(platform)
    # The postmaster first, so that it forks no backend we would miss.
    with stopped([postmaster]), stopped(children_of(postmaster)) as _:
        yield [postmaster, *children_of(postmaster)]
