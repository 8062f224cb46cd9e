"""Portal logins and sessions: login with throttling, the session behind a
cookie, logout, and accepting an invitation."""

import hashlib
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from server.domain import credentials
from server.domain.audit import Actor
from server.domain.errors import ClarionError, ErrorKind, invalid
from server.domain.ids import new_id
from server.domain.limits import RateLimit, TenantLimits
from server.domain.roles import Role
from server.domain.sessions import (
    IDLE,
    SEEN_GRANULARITY,
    NewSession,
    hash_token,
    new_session,
    session_alive,
)
from server.services.accounts import check_email, check_password_length, check_strength
from server.services.audit import record
from server.store import limits as limits_store
from server.store import tenants as tenants_store
from server.store import users as store
from server.store.db import Database

log = logging.getLogger(__name__)

# Login attempts per email and per client address: a burst, then a slow
# refill. A successful login gives its tokens back, so only failures add up.
LOGIN_PER_EMAIL = RateLimit(per_second=1 / 60, burst=10)
LOGIN_PER_ADDRESS = RateLimit(per_second=1 / 6, burst=30)
_BUCKET = "login"
_BUCKET_OWNER = "login-"
# Both login buckets are full again after this long untouched.
_BUCKETS_REFILLED = timedelta(minutes=10)


@dataclass(frozen=True)
class PortalUser:
    user_id: str
    email: str
    role: Role
    tenant_id: str
    tenant_name: str


@dataclass(frozen=True)
class SessionOwner:
    """Who a live session's cookie belongs to, with the tenant's limits."""

    session_id: str
    csrf_token: str
    user: PortalUser
    limits: TenantLimits


@dataclass(frozen=True)
class LoggedIn:
    session: NewSession
    user: PortalUser


LOGIN_FAILED = ClarionError(
    ErrorKind.UNAUTHENTICATED,
    "LOGIN_FAILED",
    "wrong email or password; check both (a teammate needs an invitation from an owner first)",
)


def _throttled(wait_seconds: float) -> ClarionError:
    retry = max(1, math.ceil(wait_seconds))
    return ClarionError(
        ErrorKind.RESOURCE_EXHAUSTED,
        "LOGIN_THROTTLED",
        f"too many failed logins for this email or from your address; retry after {retry} s "
        "(Retry-After header)",
        retry_after_seconds=retry,
    )


async def forget_ended(db: Database) -> int:
    """Deletes ended sessions, expired invitations and login buckets that
    have refilled, so that what logins leave behind stays bounded."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        removed = await store.forget_ended(session, now=now, idle_since=now - IDLE)
        return removed + await limits_store.forget_idle_buckets(
            session, owner_prefix=_BUCKET_OWNER, since=now - _BUCKETS_REFILLED
        )


class Portal:
    def __init__(
        self, db: Database, passwords: credentials.PasswordWork, defaults: TenantLimits
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._defaults = defaults
        # Verified against when the email is unknown, so that such a login
        # costs what a wrong password does (no user enumeration by timing).
        self._decoy_hash: str | None = None

    async def login(self, *, email: str, password: str, address: str) -> LoggedIn:
        email = check_email(email)
        buckets = [
            (_BUCKET_OWNER + "address:" + address, LOGIN_PER_ADDRESS),
            (
                _BUCKET_OWNER + "email:" + hashlib.sha256(email.encode()).hexdigest(),
                LOGIN_PER_EMAIL,
            ),
        ]
        self._passwords.check_capacity("LOGIN_BUSY")
        async with self._db.transaction() as session:
            for owner, rate in buckets:
                wait = await limits_store.take_tokens(session, owner=owner, name=_BUCKET, rate=rate)
                if wait is not None:
                    # Rolls back the other bucket's token too: a refusal costs nothing.
                    raise _throttled(wait)
            user = await store.find_user_by_email(session, email=email)
            tenant_name = await store.tenant_name(session, tenant_id=user.tenant_id) if user else ""
        if self._decoy_hash is None:
            self._decoy_hash = await self._passwords.hash(secrets.token_urlsafe(16))
        verified = await self._passwords.verify(
            user.password_hash if user else self._decoy_hash, password
        )
        if user is None or not verified:
            raise LOGIN_FAILED
        portal_user = PortalUser(
            user.user_id, user.email, Role(user.role), user.tenant_id, tenant_name
        )
        new = new_session(datetime.now(UTC))
        async with self._db.transaction() as session:
            for owner, rate in buckets:
                await limits_store.give_back(session, owner=owner, name=_BUCKET, rate=rate)
            await store.insert_session(
                session,
                session_id=new_id("ses"),
                user_id=user.user_id,
                tenant_id=user.tenant_id,
                new=new,
            )
        return LoggedIn(new, portal_user)

    async def find_session_owner(self, *, token: str) -> SessionOwner | None:
        """The owner of a live session, or None for an unknown, revoked,
        idle or expired one; notes its use (at most once a minute)."""
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            found = await store.find_session(session, token_hash=hash_token(token))
            if found is None or not session_alive(
                last_seen_at=found.last_seen_at, expires_at=found.expires_at, now=now
            ):
                return None
            if now - found.last_seen_at > SEEN_GRANULARITY:
                await store.touch_session(session, session_id=found.session_id, now=now)
            limits = await limits_store.load_limits(
                session, tenant_id=found.user.tenant_id, defaults=self._defaults
            )
        user = found.user
        return SessionOwner(
            session_id=found.session_id,
            csrf_token=found.csrf_token,
            user=PortalUser(
                user.user_id, user.email, Role(user.role), user.tenant_id, found.tenant_name
            ),
            limits=limits,
        )

    async def logout(self, *, session_id: str) -> None:
        async with self._db.transaction() as session:
            await store.revoke_session(session, session_id=session_id, now=datetime.now(UTC))

    async def accept_invitation(self, *, token: str, password: str) -> LoggedIn:
        """Creates the invited user with the invited role and logs them in."""
        gone = ClarionError(
            ErrorKind.NOT_FOUND,
            "INVITATION_INVALID",
            "this invitation link is unknown, was used, cancelled or replaced, or has expired "
            "(after 7 days); ask an owner of the account to invite you again",
        )
        if not token:
            raise invalid("INVALID_ARGUMENT", "token", "token is required: the token= of the link")
        check_password_length(password)
        now = datetime.now(UTC)
        token_hash = hash_token(token)
        self._passwords.check_capacity()
        async with self._db.transaction() as session:
            invitation = await store.find_invitation(session, token_hash=token_hash, now=now)
        if invitation is None:
            raise gone
        await check_strength(self._passwords, password, invitation.email)
        password_hash = await self._passwords.hash(password)
        user_id = new_id("usr")
        new = new_session(datetime.now(UTC))
        taken = ClarionError(
            ErrorKind.ALREADY_EXISTS,
            "EMAIL_TAKEN",
            f"{invitation.email} already has a login to an account; log in with it instead",
        )
        try:
            async with self._db.transaction() as session:
                invitation = await store.take_invitation(session, token_hash=token_hash, now=now)
                if invitation is None:
                    raise gone
                if await tenants_store.email_taken(session, email=invitation.email):
                    raise taken
                await store.insert_user(
                    session,
                    user_id=user_id,
                    tenant_id=invitation.tenant_id,
                    email=invitation.email,
                    password_hash=password_hash,
                    role=invitation.role,
                    now=now,
                )
                await store.insert_session(
                    session,
                    session_id=new_id("ses"),
                    user_id=user_id,
                    tenant_id=invitation.tenant_id,
                    new=new,
                )
                await record(
                    session,
                    Actor(invitation.tenant_id, email=invitation.email),
                    "invitation.accepted",
                    invitation.invitation_id,
                    f"{invitation.email} joined as {invitation.role}",
                )
                tenant_name = await store.tenant_name(session, tenant_id=invitation.tenant_id)
        except IntegrityError:
            raise taken from None
        return LoggedIn(
            new,
            PortalUser(
                user_id, invitation.email, Role(invitation.role), invitation.tenant_id, tenant_name
            ),
        )
