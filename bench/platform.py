"""A fresh platform for one benchmark run: its own data folder and free ports."""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.stack import Ports, Stack


@contextmanager
def fresh_stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(data_dir=Path(tmp), ports=Ports.free(), headless=True)
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()
