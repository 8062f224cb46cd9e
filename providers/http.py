"""The pooled HTTP client the provider adapters share.

aiohttp rather than httpx: during bulk sends the worker was CPU-bound in
httpx's connection pool, which checks every pooled connection (two system
calls each) whenever a request starts or ends (py-spy, 30k SMS bulk).
aiohttp's connector hands out a free connection without that scan.

Bodies are encoded here, so request hooks (the contract tests) see the exact
bytes that go on the wire."""

import json
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp

from providers.base import ProviderError

# Bulk sends keep up to 64 requests in flight per provider (BulkActivities).
MAX_CONNECTIONS = 80


@dataclass(frozen=True)
class SentRequest:
    """A request as it goes out, for request hooks."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class HttpResponse:
    status_code: int
    # Case-insensitive, as received.
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.text)

    def retry_after_seconds(self) -> float | None:
        """Retry-After in seconds, when the provider gave one: delay-seconds or
        an HTTP-date (RFC 9110 section 10.2.3)."""
        value = self.headers.get("Retry-After", "").strip()
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError, IndexError):
            return None


class HttpUnreachable(Exception):
    """No response: connection refused or reset, or the timeout passed.
    `request_sent` is False only when no connection was made, so the provider
    cannot have the request; otherwise it may have acted on it."""

    def __init__(self, detail: str, *, request_sent: bool) -> None:
        super().__init__(detail)
        self.request_sent = request_sent


RequestHook = Callable[[SentRequest], Awaitable[None]]


def unreachable_error(provider: str, exc: HttpUnreachable) -> ProviderError:
    """A transient failure; its outcome is unknown when the request went out."""
    return ProviderError(
        f"{provider} did not answer" if exc.request_sent else f"{provider} unreachable",
        permanent=False,
        detail=repr(exc),
        outcome_unknown=exc.request_sent,
    )


def rate_limited_error(provider: str, response: HttpResponse, detail: str) -> ProviderError:
    return ProviderError(
        f"{provider} rate limit",
        permanent=False,
        detail=detail,
        retry_after=response.retry_after_seconds(),
    )


def unavailable_error(provider: str, response: HttpResponse, detail: str) -> ProviderError:
    # RFC 9110 allows Retry-After on 503 as well as 429: honour it wherever sent.
    return ProviderError(
        f"{provider} unavailable",
        permanent=False,
        detail=detail,
        retry_after=response.retry_after_seconds(),
    )


def response_error(
    provider: str,
    response: HttpResponse,
    *,
    code: object = None,
    permanent: Mapping[Any, str] | None = None,
    throttled: Collection[Any] = (),
    transient: Collection[Any] = (),
    detail: str = "",
) -> ProviderError:
    """Classifies a provider's error answer, the same way for every provider.

    `provider` is the display name tenants read ("Twilio"); `code` is the
    provider's own error code from the body, if any. HTTP 429, or a code in
    `throttled`, is "<provider> rate limit"; 5xx, or a code in `transient`, is
    "<provider> unavailable"; both retry, after Retry-After when given.
    Anything else is permanent, worded by the provider's `permanent` table
    (kept in its folder) or "<provider> rejected the message"."""
    detail = detail or f"HTTP {response.status_code}: {response.text[:500]}"
    if response.status_code == 429 or (code is not None and code in throttled):
        return rate_limited_error(provider, response, detail)
    if response.status_code >= 500 or (code is not None and code in transient):
        return unavailable_error(provider, response, detail)
    reason = (permanent or {}).get(code) if code is not None else None
    return ProviderError(
        reason or f"{provider} rejected the message", permanent=True, detail=detail
    )


class HttpClient:
    def __init__(
        self,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        request_hooks: list[RequestHook] | None = None,
    ) -> None:
        # A separate connect timeout, so that "never connected" (nothing sent)
        # is told apart from "no answer" (maybe sent).
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0))
        self._headers = dict(headers or {})
        if basic_auth is not None:
            self._headers["Authorization"] = aiohttp.encode_basic_auth(*basic_auth)
        self._hooks = list(request_hooks or [])
        # Created on first use: a session belongs to the running event loop.
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(
        self,
        url: str,
        *,
        form: Mapping[str, str | list[str]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """POSTs a form (list values repeat the field) or a JSON body."""
        all_headers = {**self._headers, **(headers or {})}
        if form is not None:
            body = urlencode(form, doseq=True).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            all_headers["Content-Type"] = "application/json"
        for hook in self._hooks:
            await hook(SentRequest("POST", url, all_headers, body))
        return await self._request("POST", url, data=body, headers=all_headers)

    async def get(self, url: str, *, params: Mapping[str, str] | None = None) -> HttpResponse:
        if params:
            url = f"{url}?{urlencode(params)}"
        for hook in self._hooks:
            await hook(SentRequest("GET", url, self._headers, b""))
        return await self._request("GET", url, headers=self._headers)

    async def _request(self, method: str, url: str, **kwargs: Any) -> HttpResponse:
        try:
            async with self._client().request(method, url, **kwargs) as response:
                text = await response.text(errors="replace")
                return HttpResponse(response.status, response.headers.copy(), text)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise HttpUnreachable(repr(exc), request_sent=False) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise HttpUnreachable(repr(exc), request_sent=True) from exc

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
            )
        return self._session
