"""Outgoing callbacks: POST with retries and backoff, recorded in the store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

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
        # httpcore's pool scans its whole queue per request, so thousands of
        # queued callbacks (a bulk send) made it quadratic; wait here instead.
        self._in_flight = asyncio.Semaphore(32)

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
                async with self._in_flight:
                    response = await self._client.request(
                        method, url, content=content, headers=all_headers
                    )
            except httpx.HTTPError as exc:
                callback.error = f"{type(exc).__name__}: {exc}"
                callback.attempt_statuses.append("error")
                continue
            callback.response_status = response.status_code
            callback.attempt_statuses.append(response.status_code)
            callback.response_body = response.text[:_KEEP_BODY]
            if response.is_success:
                callback.error = None
                return callback
            callback.error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code not in _RETRY_STATUSES:
                return callback
        log.warning("giving up on %s callback to %s: %s", event, url, callback.error)
        return callback

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A plain request (TwiML fetch, webhook verification): no retries, no record."""
        return await self._client.request(method, url, **kwargs)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()
