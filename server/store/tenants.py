"""Tenants and API keys. Functions never commit: the caller owns the transaction."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.tables import api_keys, tenants, users


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    tenant_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


async def email_taken(session: AsyncSession, *, email: str) -> bool:
    """True when the email signed up an account or belongs to a portal user."""
    row = await session.execute(
        select(tenants.c.id)
        .where(tenants.c.email == email)
        .union_all(select(users.c.id).where(users.c.email == email))
        .limit(1)
    )
    return row.first() is not None


async def insert_tenant(
    session: AsyncSession,
    *,
    tenant_id: str,
    name: str,
    email: str,
    now: datetime,
) -> None:
    await session.execute(
        insert(tenants).values(id=tenant_id, name=name, email=email, created_at=now)
    )


async def insert_api_key(
    session: AsyncSession,
    *,
    tenant_id: str,
    key_id: str,
    name: str,
    prefix: str,
    key_hash: str,
    now: datetime,
) -> None:
    await session.execute(
        insert(api_keys).values(
            id=key_id,
            tenant_id=tenant_id,
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            created_at=now,
        )
    )


def _key_record(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


async def find_key_by_hash(session: AsyncSession, *, key_hash: str) -> ApiKeyRecord | None:
    """The key with this hash, revoked or not. Not tenant-scoped: this is how
    a request's tenant is found."""
    row = (await session.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
    return _key_record(row) if row else None


async def list_api_keys(
    session: AsyncSession, *, tenant_id: str, after: tuple[datetime, str] | None, limit: int
) -> list[ApiKeyRecord]:
    """Newest first; `after` is the (created_at, id) of the previous page's last key."""
    query = select(api_keys).where(api_keys.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(tuple_(api_keys.c.created_at, api_keys.c.id) < tuple_(*after))
    rows = await session.execute(
        query.order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc()).limit(limit)
    )
    return [_key_record(row) for row in rows]


async def revoke_api_key(
    session: AsyncSession, *, tenant_id: str, key_id: str, now: datetime
) -> ApiKeyRecord | None:
    """Revokes the key (a second revoke keeps the first time); None if the
    tenant has no such key."""
    await session.execute(
        update(api_keys)
        .where(
            api_keys.c.tenant_id == tenant_id,
            api_keys.c.id == key_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    row = (
        await session.execute(
            select(api_keys).where(api_keys.c.tenant_id == tenant_id, api_keys.c.id == key_id)
        )
    ).first()
    return _key_record(row) if row else None


async def mark_key_used(session: AsyncSession, *, key_id: str, now: datetime) -> None:
    await session.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))


async def lock_tenant(session: AsyncSession, *, tenant_id: str) -> None:
    """Serializes changes that count a tenant's rows (keys, templates) until commit."""
    await session.execute(select(tenants.c.id).where(tenants.c.id == tenant_id).with_for_update())


async def count_active_keys(session: AsyncSession, *, tenant_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(api_keys)
        .where(api_keys.c.tenant_id == tenant_id, api_keys.c.revoked_at.is_(None))
    )
    return int(count or 0)
