"""Tenant signup and API key management."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from server.domain import credentials
from server.domain.audit import Actor
from server.domain.errors import ClarionError, ErrorKind, invalid, limit_reached, not_found
from server.domain.ids import looks_like_id, new_id
from server.domain.limits import TenantLimits
from server.domain.recipients import normalize_email
from server.domain.roles import Role
from server.domain.sessions import NewSession, new_session
from server.services.audit import record
from server.services.paging import check_page_size, decode_page_token, encode_page_token
from server.store import limits as limits_store
from server.store import tenants as store
from server.store import users as users_store
from server.store.db import Database
from server.store.tenants import ApiKeyRecord

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
# Active (unrevoked) keys per tenant: enough for a key per service and
# environment, with room to rotate.
MAX_API_KEYS = 20
# Recording last use on every call would turn each read into a write.
_LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class SignupResult:
    tenant_id: str
    api_key: str
    # The owner is logged in to the portal at once.
    session: NewSession


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    api_key: str


@dataclass(frozen=True)
class ApiKeyView:
    """An API key as its tenant sees it (never the secret or its hash)."""

    key_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _key_view(record: ApiKeyRecord) -> ApiKeyView:
    return ApiKeyView(
        key_id=record.key_id,
        name=record.name,
        prefix=record.prefix,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
    )


@dataclass(frozen=True)
class KeyOwner:
    """Who an active API key belongs to, with the tenant's limits."""

    tenant_id: str
    key_id: str
    prefix: str
    limits: TenantLimits


def check_email(email: str) -> str:
    """The email as stored: normalized and lower-cased; 400 naming the field otherwise."""
    try:
        return normalize_email(email).lower()
    except ValueError as exc:
        raise invalid("INVALID_ARGUMENT", "email", f"email {exc}") from None


def check_password_length(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise invalid(
            "INVALID_ARGUMENT",
            "password",
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
        )


async def check_strength(passwords: credentials.PasswordWork, password: str, *words: str) -> None:
    """Refuses a guessable password; the account's own words are the first an attacker tries."""
    own_words = [w for w in re.split(r"[\W_]+", " ".join(words).lower()) if w]
    weakness = await passwords.weakness(password, [*own_words, *words])
    if weakness:
        raise invalid("WEAK_PASSWORD", "password", f"password is too easy to guess: {weakness}")


def _check_name(name: str, field: str, limit: int) -> str:
    name = name.strip()
    if not name or len(name) > limit:
        raise invalid("INVALID_ARGUMENT", field, f"{field} must be 1 to {limit} characters")
    return name


class Accounts:
    def __init__(self, db: Database, passwords: credentials.PasswordWork) -> None:
        self._db = db
        self._passwords = passwords

    async def find_key_owner(self, *, key_hash: str, defaults: TenantLimits) -> KeyOwner | None:
        """The tenant of an active key, or None for an unknown or revoked one;
        notes the key's last use (at most once a minute)."""
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            record = await store.find_key_by_hash(session, key_hash=key_hash)
            if record is None or record.revoked_at is not None:
                return None
            if record.last_used_at is None or now - record.last_used_at > _LAST_USED_GRANULARITY:
                await store.mark_key_used(session, key_id=record.key_id, now=now)
            limits = await limits_store.load_limits(
                session, tenant_id=record.tenant_id, defaults=defaults
            )
            return KeyOwner(
                tenant_id=record.tenant_id,
                key_id=record.key_id,
                prefix=record.prefix,
                limits=limits,
            )

    async def signup(self, *, name: str, email: str, password: str) -> SignupResult:
        name = _check_name(name, "name", 200)
        email = check_email(email)
        check_password_length(password)
        taken = ClarionError(
            ErrorKind.ALREADY_EXISTS,
            "EMAIL_TAKEN",
            "an account with this email already exists; log in to the portal instead",
        )
        # A flood past the password worker's queue is refused before any query.
        self._passwords.check_capacity()
        # Checked before the costly strength check and hash, so that repeated
        # signups with a taken email cost one indexed read. Answering sooner
        # reveals nothing the 409 itself does not say.
        async with self._db.transaction() as session:
            if await store.email_taken(session, email=email):
                raise taken
        await check_strength(self._passwords, password, name, email)
        password_hash = await self._passwords.hash(password)
        tenant_id = new_id("tnt")
        key = credentials.new_api_key()
        now = datetime.now(UTC)
        owner_id = new_id("usr")
        portal_session = new_session(now)
        try:
            async with self._db.transaction() as session:
                await store.insert_tenant(
                    session, tenant_id=tenant_id, name=name, email=email, now=now
                )
                await users_store.insert_user(
                    session,
                    user_id=owner_id,
                    tenant_id=tenant_id,
                    email=email,
                    password_hash=password_hash,
                    role=Role.OWNER,
                    now=now,
                )
                await store.insert_api_key(
                    session,
                    tenant_id=tenant_id,
                    key_id=new_id("key"),
                    name="default",
                    prefix=key.prefix,
                    key_hash=key.key_hash,
                    now=now,
                )
                await users_store.insert_session(
                    session,
                    session_id=new_id("ses"),
                    user_id=owner_id,
                    tenant_id=tenant_id,
                    new=portal_session,
                )
        except IntegrityError:
            # Two signups with one email at once: the unique index decides.
            raise taken from None
        return SignupResult(tenant_id=tenant_id, api_key=key.secret, session=portal_session)

    async def create_api_key(self, *, actor: Actor, name: str) -> CreatedKey:
        name = _check_name(name, "name", 100)
        key = credentials.new_api_key()
        key_id = new_id("key")
        tenant_id = actor.tenant_id
        async with self._db.transaction() as session:
            # The tenant's row is locked, so concurrent creates count one at a time.
            await store.lock_tenant(session, tenant_id=tenant_id)
            if await store.count_active_keys(session, tenant_id=tenant_id) >= MAX_API_KEYS:
                raise limit_reached(
                    "API_KEY_LIMIT",
                    f"a tenant may have at most {MAX_API_KEYS} active API keys; "
                    "revoke one you no longer use with DELETE /api/v1/api-keys/{key_id}",
                )
            await store.insert_api_key(
                session,
                tenant_id=tenant_id,
                key_id=key_id,
                name=name,
                prefix=key.prefix,
                key_hash=key.key_hash,
                now=datetime.now(UTC),
            )
            await record(session, actor, "api_key.created", key_id, f"{name} ({key.prefix}…)")
        return CreatedKey(key_id=key_id, api_key=key.secret)

    async def list_api_keys(
        self, *, tenant_id: str, page_size: int, page_token: str
    ) -> tuple[list[ApiKeyView], str]:
        """A page of keys, newest first, and the next page's token ("" at the end)."""
        limit = check_page_size(page_size, default=50, maximum=100)
        after = decode_page_token(page_token) if page_token else None
        async with self._db.transaction() as session:
            records = await store.list_api_keys(
                session, tenant_id=tenant_id, after=after, limit=limit + 1
            )
        views = [_key_view(r) for r in records[:limit]]
        if len(records) <= limit:
            return views, ""
        last = records[limit - 1]
        return views, encode_page_token(last.created_at, last.key_id)

    async def revoke_api_key(self, *, actor: Actor, key_id: str) -> ApiKeyView:
        if not looks_like_id("key", key_id):
            raise not_found("API key")
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            revoked = await store.revoke_api_key(
                session, tenant_id=actor.tenant_id, key_id=key_id, now=now
            )
            if revoked is None:
                raise not_found("API key")
            if revoked.revoked_at == now:
                await record(
                    session, actor, "api_key.revoked", key_id, f"{revoked.name} ({revoked.prefix}…)"
                )
        return _key_view(revoked)
