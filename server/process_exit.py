"""Running a server process's main coroutine to the end, and then exiting
without the interpreter's teardown."""

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any

from server import tracing


def run_then_exit(main: Coroutine[Any, Any, None]) -> None:
    """Runs `main`; once it has returned (drained, connections closed), ends
    the process with status 0.

    Why not return normally: the Temporal SDK's Rust threads can still take the
    GIL while CPython finalizes, which aborts the process (SIGABRT, "PyGILState_
    Release ... finalizing"; temporalio/sdk-python#300, open). A drained worker
    that exits -6 reads as a crash to the supervisor and to an orchestrator.
    Spans, logs and output are flushed before the exit (atexit handlers do
    not run); an exception from `main` still propagates, with a traceback and
    a non-zero status."""
    asyncio.run(main)
    tracing.flush()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
