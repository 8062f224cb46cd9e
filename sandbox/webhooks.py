"""Outgoing callbacks: POST with retries and backoff, recorded in the store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import aiohttp
import httpx

from .store import Callback, Message, Store

log = logging.getLogger("sandbox.webhooks")

# Like the providers: a 4xx other than 408/429 means the receiver refused the
# event on purpose, so retrying cannot help; 5xx and network errors can.
_RETRY_STATUSES = {408, 429}
_KEEP_BODY = 64 * 1024


class CallbackSender:
    def __init__(self, store: Store, retries: int, backoff: float) -> None:
        self._store = store
        self._retries = max(0, retries)
        self._backoff = max(0.0, backoff)
        self._client = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        self._tasks: set[asyncio.Task[None]] = set()
        # Callbacks go through aiohttp: under bulk load httpx's per-request
        # overhead (py-spy: async-library detection, pool scans) was the
        # sandbox's main cost. The connector caps connections in flight.
        self._session: aiohttp.ClientSession | None = None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a callback sequence in the background; keep a reference so it isn't GC'd."""
        task = asyncio.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(coro: Coroutine[Any, Any, None]) -> None:
        # A bug in one callback sequence must never take the sandbox down.
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("callback sequence failed")

    async def post(
        self,
        *,
        url: str,
        event: str,
        content: bytes | None,
        content_type: str | None,
        headers: dict[str, str],
        payload: Any,
        message: Message | None,
        method: str = "POST",
    ) -> Callback:
        callback = Callback(url=url, event=event, payload=payload, headers=dict(headers))
        self._store.add_callback(callback, message)
        all_headers = dict(headers)
        if content_type:
            all_headers["Content-Type"] = content_type
        delay = self._backoff
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            callback.attempts = attempt + 1
            try:
                async with self._callbacks().request(
                    method, url, data=content, headers=all_headers, allow_redirects=False
                ) as response:
                    status = response.status
                    text = await response.text(errors="replace")
            except (aiohttp.ClientError, TimeoutError) as exc:
                callback.error = f"{type(exc).__name__}: {exc}"
                callback.attempt_statuses.append("error")
                continue
            callback.response_status = status
            callback.attempt_statuses.append(status)
            callback.response_body = text[:_KEEP_BODY]
            if 200 <= status < 300:
                callback.error = None
                return callback
            callback.error = f"HTTP {status}"
            if status < 500 and status not in _RETRY_STATUSES:
                return callback
        log.warning("giving up on %s callback to %s: %s", event, url, callback.error)
        return callback

    def _callbacks(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                # Per request, not counting the wait for a free connection:
                # a real provider's fleet has no such queue, so a burst must
                # not turn into timeouts here.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=10),
                # Providers call back from a wide fleet, without a small cap on
                # callbacks in flight. At 256, that cap times the receiver's
                # answer time under bulk load (0.5-1 s) held receipts to about
                # 250 per second; 1024 keeps the sandbox out of the measurement.
                connector=aiohttp.TCPConnector(limit=1024),
            )
        return self._session

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A plain request (TwiML fetch, webhook verification): no retries, no record."""
        return await self._client.request(method, url, **kwargs)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()
        if self._session is not None:
            await self._session.close()
