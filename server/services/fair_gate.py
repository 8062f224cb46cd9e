"""A concurrency limit that lets waiters in taking turns between keys."""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairGate:
    """At most `limit` holders at once. Waiters are let in round-robin across
    their keys (tenants) and in arrival order within a key, so one tenant's
    thousands of waiters never queue another tenant's one. (asyncio's
    Semaphore is FIFO; no maintained library does keyed round-robin.)"""

    def __init__(self, limit: int) -> None:
        self._free = limit
        # Insertion-ordered: the first key is next; a served key goes to the back.
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            future = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(key, deque()).append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future.cancelled():
                    self._forget(key, future)
                else:  # let in, then cancelled before it could go
                    self._release()
                raise
        try:
            yield
        finally:
            self._release()

    def _forget(self, key: str, future: "asyncio.Future[None]") -> None:
        queue = self._waiting.get(key)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._waiting[key]

    def _release(self) -> None:
        while self._waiting:
            key = next(iter(self._waiting))
            queue = self._waiting.pop(key)
            future = queue.popleft()
            if queue:
                self._waiting[key] = queue
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
