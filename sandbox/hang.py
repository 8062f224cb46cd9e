"""The 'accept, then never answer' trigger: the provider has the message, the client never hears.

This is the ambiguous case a client must reconcile (look the message up, or
apply its rule for providers that cannot be asked). The handler records the
message and starts its callbacks as usual, then holds the connection without
writing a reply until the client gives up, the sandbox stops, or HANG_CAP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

# Long enough for any client timeout; short enough not to pin a socket forever.
HANG_CAP = 600.0
_POLL = 0.1


async def hold(stopping: asyncio.Event, gone: Callable[[], bool]) -> None:
    """Return once gone() is true, the sandbox is stopping, or HANG_CAP has passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANG_CAP
    while not gone() and loop.time() < deadline:
        try:
            await asyncio.wait_for(stopping.wait(), _POLL)
            return
        except TimeoutError:
            continue


async def never_answer(stopping: asyncio.Event, request: web.Request) -> web.StreamResponse:
    """Hold an HTTP request unanswered, then drop the connection without a response."""

    def gone() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    await hold(stopping, gone)
    if request.transport is not None:
        request.transport.close()
    # Nothing reaches the client: its connection is closed (or already gone).
    return web.Response(status=204)
