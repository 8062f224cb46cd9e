"""The portal's session cookie, as it arrives in gRPC metadata (Envoy's
transcoder passes the Cookie header on as `cookie`) and as it is set (a
`set-cookie` entry of the response's initial metadata becomes a Set-Cookie
header)."""

from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import grpc

from server.domain.errors import ClarionError, ErrorKind
from server.domain.sessions import NewSession

SESSION_COOKIE = "clarion_session"

Metadata = Iterable[tuple[str, str | bytes]]


def session_token(metadata: Metadata) -> str | None:
    """The session cookie's value, if the request carries one."""
    for key, value in metadata:
        if key != "cookie" or not isinstance(value, str):
            continue
        for pair in value.split(";"):
            name, _, cookie = pair.strip().partition("=")
            if name == SESSION_COOKIE and cookie:
                return cookie
    return None


def _attributes(metadata: Metadata, max_age: int) -> str:
    secure = any(k == "x-forwarded-proto" and v == "https" for k, v in metadata)
    return f"Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


async def set_session_cookie(context: grpc.aio.ServicerContext, new: NewSession) -> None:
    """Sends the cookie of a new session, living as long as the session may."""
    metadata = tuple(context.invocation_metadata() or ())
    max_age = int((new.expires_at - datetime.now(UTC)).total_seconds())
    cookie = f"{SESSION_COOKIE}={new.token}; {_attributes(metadata, max_age)}"
    await context.send_initial_metadata((("set-cookie", cookie),))


async def clear_session_cookie(context: grpc.aio.ServicerContext) -> None:
    metadata = tuple(context.invocation_metadata() or ())
    await context.send_initial_metadata(
        (("set-cookie", f"{SESSION_COOKIE}=; {_attributes(metadata, 0)}"),)
    )


def client_address(metadata: Metadata) -> str:
    """The client's address as the edge Envoy saw it: it appends the TCP
    peer to X-Forwarded-For (use_remote_address), so the last entry is the
    one a client cannot forge."""
    forwarded = ""
    for key, value in metadata:
        if key == "x-forwarded-for" and isinstance(value, str):
            forwarded = value
    return forwarded.rsplit(",", 1)[-1].strip() or "unknown"


def refuse_cross_origin(metadata: Metadata) -> None:
    """Refuses a browser request sent from another site's page (its Origin
    header names another host than the one it was sent to): such a form
    could log a victim in to the attacker's account. Scripts send no Origin."""
    values = dict((k, v) for k, v in metadata if isinstance(v, str))
    origin = values.get("origin")
    if origin is None:
        return
    if urlsplit(origin).netloc != values.get("x-forwarded-host", ""):
        raise ClarionError(
            ErrorKind.PERMISSION_DENIED,
            "CROSS_ORIGIN",
            "this request came from another site's page (its Origin header); "
            "sign up, log in and accept invitations from the portal itself",
        )
