"""The interceptor that authenticates API keys and portal sessions, holds
portal users to their role, and maps errors for every method."""

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from server import metrics
from server.api.access import SESSION_ONLY, needed_role, read_only
from server.api.cookies import refuse_cross_origin, session_token
from server.api.errors import abort
from server.api.input_checks import refuse_control_characters
from server.api.limits import (
    SEND_METHODS,
    UPLOAD_BULK,
    Meter,
    accepted_by,
    charge_for,
    wants_default_routing,
)
from server.domain.audit import Actor
from server.domain.credentials import hash_api_key
from server.domain.errors import ClarionError, ErrorKind
from server.domain.limits import TenantLimits, suspended
from server.domain.roles import Role, allows, role_forbidden
from server.services.accounts import Accounts
from server.services.limits import Limiter
from server.services.portal import Portal, SessionOwner

# Not a store lookup: Database's own error classification and per-request time
# budget, which the interceptor applies around every call (the last place a
# database failure outside Database.transaction can become a 503 or 409).
from server.store.db import (
    conflict,
    database_unavailable,
    is_conflict,
    is_database_outage,
    request_budget,
)

log = logging.getLogger(__name__)

# Methods that need no API key or session: signup creates the first key,
# login the session. (Provider webhooks carry the provider's own signature;
# they do not come over gRPC.)
PUBLIC_METHODS = frozenset(
    {
        "/clarion.v1.TenantService/Signup",
        "/clarion.v1.PortalService/Login",
        "/clarion.v1.PortalService/AcceptInvitation",
    }
)
# Calls that store thousands of rows, under their own longer database limits.
_LONG_METHODS = frozenset({"/clarion.v1.NotificationService/SendBulk"})
# Standard services (health, reflection) are left alone.
_OWN_SERVICES = "/clarion."


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    # The API key's id and prefix; empty for a portal session.
    key_id: str
    # The tenant's limits and suspension, as of the key's (or session's) lookup.
    limits: TenantLimits
    key_prefix: str = ""
    # API keys act as owner: they are for the tenant's backends.
    role: Role = Role.OWNER
    session: SessionOwner | None = None

    @property
    def actor(self) -> Actor:
        email = self.session.user.email if self.session else ""
        return Actor(self.tenant_id, email=email, api_key=self.key_prefix)


_caller: ContextVar[Caller] = ContextVar("caller")


def current_caller() -> Caller:
    """The authenticated caller of the running RPC."""
    return _caller.get()


class ApiKeyAuthenticator:
    """Finds the tenant for a key, with the tenant's limits. Answers are
    cached for `cache_seconds`, which bounds how long a revoked key keeps
    working (and a suspension or new limits take to apply)."""

    def __init__(self, accounts: Accounts, cache_seconds: float, defaults: TenantLimits) -> None:
        self._accounts = accounts
        self._cache_seconds = cache_seconds
        self._defaults = defaults
        self._cache: dict[str, tuple[float, Caller | None]] = {}

    async def authenticate(self, api_key: str) -> Caller | None:
        key_hash = hash_api_key(api_key)
        cached = self._cache.get(key_hash)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        caller = await self._lookup(key_hash)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_hash] = (time.monotonic() + self._cache_seconds, caller)
        return caller

    async def _lookup(self, key_hash: str) -> Caller | None:
        owner = await self._accounts.find_key_owner(key_hash=key_hash, defaults=self._defaults)
        if owner is None:
            return None
        return Caller(
            tenant_id=owner.tenant_id,
            key_id=owner.key_id,
            limits=owner.limits,
            key_prefix=owner.prefix,
        )


_INVALID_KEY = ClarionError(
    ErrorKind.UNAUTHENTICATED,
    "INVALID_API_KEY",
    "missing, invalid or revoked API key; send an active tenant key in the X-API-Key header",
)
_SESSION_INVALID = ClarionError(
    ErrorKind.UNAUTHENTICATED,
    "SESSION_INVALID",
    "no live portal session: none was sent, it expired (12 h idle, 7 days at most) or it "
    "ended at logout; log in with POST /portal/login",
)
_CSRF_INVALID = ClarionError(
    ErrorKind.PERMISSION_DENIED,
    "CSRF_TOKEN_INVALID",
    "a change made with the portal session cookie needs the header X-CSRF-Token with the "
    "session's csrf_token (from login, signup or GET /portal/session)",
)


class Identifier:
    """Finds the caller of a request from its API key or, failing that, its
    session cookie, and holds a session to its CSRF token and role.
    Sessions are not cached, so a logout ends one at once."""

    def __init__(self, keys: ApiKeyAuthenticator, portal: Portal) -> None:
        self._keys = keys
        self._portal = portal

    async def identify(self, method: str, metadata: tuple[tuple[str, Any], ...]) -> Caller:
        api_key = next((v for k, v in metadata if k == "x-api-key"), "")
        if api_key:
            if method in SESSION_ONLY:
                raise _SESSION_INVALID
            caller = await self._keys.authenticate(api_key)
            if caller is None:
                raise _INVALID_KEY
            return caller
        token = session_token(metadata)
        if token is None:
            raise _SESSION_INVALID if method in SESSION_ONLY else _INVALID_KEY
        owner = await self._portal.find_session_owner(token=token)
        if owner is None:
            raise _SESSION_INVALID
        if not read_only(method):
            sent = next((v for k, v in metadata if k == "x-csrf-token"), "")
            if not isinstance(sent, str) or not hmac.compare_digest(
                sent.encode(), owner.csrf_token.encode()
            ):
                raise _CSRF_INVALID
        needed = needed_role(method)
        if not allows(owner.user.role, needed):
            raise role_forbidden(owner.user.role, needed)
        return Caller(
            tenant_id=owner.user.tenant_id,
            key_id="",
            limits=owner.limits,
            role=owner.user.role,
            session=owner,
        )


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class ApiInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates every Clarion method but the public ones, holds each
    call to its tenant's limits, and turns ClarionError into a rich status
    and anything unexpected into INTERNAL."""

    def __init__(self, identifier: Identifier, limiter: Limiter, request_seconds: float) -> None:
        self._identifier = identifier
        self._limiter = limiter
        # Every ordinary call's time with the database, across its transactions.
        self._request_seconds = request_seconds

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(_OWN_SERVICES):
            return handler
        needs_caller = method not in PUBLIC_METHODS
        metadata = tuple(handler_call_details.invocation_metadata or ())
        # Unary calls and client-streaming uploads; both take (request(s), context).
        streaming = handler.stream_unary is not None
        inner: Handler = handler.stream_unary if streaming else handler.unary_unary
        if inner is None:
            return handler

        # Bulk sends and uploads store rows for long on purpose (their own limits).
        budget = None if streaming or method in _LONG_METHODS else self._request_seconds

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with request_budget(budget) if budget else nullcontext():
                return await bounded(request, context)

        async def bounded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = None
            caller = None
            # Until answered: a call cut short (the client went away) counts as such.
            reason = "CANCELLED"
            started = time.perf_counter()
            try:
                if needs_caller:
                    caller = await self._identifier.identify(method, metadata)
                    token = _caller.set(caller)
                else:
                    # Signup, login and accepting start a session: no CSRF token yet.
                    refuse_cross_origin(metadata)
                if not streaming:
                    refuse_control_characters(request)
                if caller is not None:
                    response = await self._limited(method, inner, request, context, caller)
                else:
                    response = await inner(request, context)
                reason = "OK"
                return response
            except grpc.aio.AbortError:
                raise
            except ClarionError as error:
                reason = error.reason
                await abort(context, error)
            except Exception as error:
                failure = _unexpected_failure(method, error)
                reason = failure.reason
                await abort(context, failure)
            finally:
                if token is not None:
                    _caller.reset(token)
                _observe(method, reason, caller, time.perf_counter() - started)

        wrap = (
            grpc.stream_unary_rpc_method_handler
            if streaming
            else grpc.unary_unary_rpc_method_handler
        )
        return wrap(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _limited(
        self,
        method: str,
        inner: Handler,
        request: Any,
        context: grpc.aio.ServicerContext,
        caller: Caller,
    ) -> Any:
        if caller.limits.suspended_reason is not None:
            raise suspended(caller.limits.suspended_reason)
        meter = Meter(self._limiter, caller.tenant_id, caller.limits)
        if method == UPLOAD_BULK:
            request = meter.upload(request)
        else:
            await meter.admit(
                charge_for(method, request),
                default_routing=wants_default_routing(method, request),
            )
        accepted = 0
        try:
            response = await inner(request, context)
            accepted = accepted_by(method, response)
            return response
        finally:
            await meter.settle(accepted)


def _unexpected_failure(method: str, error: Exception) -> ClarionError:
    if is_database_outage(error):
        # Reached the database outside Database.transaction's mapping.
        return database_unavailable()
    if is_conflict(error):
        return conflict()
    log.exception("unexpected error in %s", method)
    return ClarionError(
        ErrorKind.INTERNAL, "INTERNAL", "internal error; it has been logged, please retry"
    )


def _observe(method: str, reason: str, caller: Caller | None, seconds: float) -> None:
    """Every call's duration, and each send's acceptance or refusal reason."""
    name = method[method.rfind("/") + 1 :]
    metrics.API_REQUEST_SECONDS.labels(name, "ok" if reason == "OK" else "error").observe(seconds)
    if method in SEND_METHODS:
        tenant = metrics.tenant_label(caller.tenant_id) if caller else ""
        if reason == "OK":
            metrics.SENDS_ACCEPTED.labels(name, tenant).inc()
        else:
            metrics.SENDS_REFUSED.labels(name, reason, tenant).inc()
