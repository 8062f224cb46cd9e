"""Idempotency keys. Functions never commit: the caller owns the transaction."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.tables import idempotency_keys as keys


@dataclass(frozen=True)
class KeyRecord:
    request_hash: str
    state: str
    resource_id: str | None
    created_at: datetime
    updated_at: datetime
    final_hash: str | None


def _where(tenant_id: str, operation: str, key: str):  # type: ignore[no-untyped-def]
    return (keys.c.tenant_id == tenant_id, keys.c.operation == operation, keys.c.key == key)


async def try_claim(
    session: AsyncSession,
    *,
    tenant_id: str,
    operation: str,
    key: str,
    request_hash: str,
    now: datetime,
) -> bool:
    """Inserts the key as in progress; False if it already exists."""
    result = await session.execute(
        pg_insert(keys)
        .values(
            tenant_id=tenant_id,
            operation=operation,
            key=key,
            request_hash=request_hash,
            state="in_progress",
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
        .returning(keys.c.key)
    )
    return result.first() is not None


async def get(
    session: AsyncSession, *, tenant_id: str, operation: str, key: str
) -> KeyRecord | None:
    row = (await session.execute(select(keys).where(*_where(tenant_id, operation, key)))).first()
    if row is None:
        return None
    return KeyRecord(
        row.request_hash, row.state, row.resource_id, row.created_at, row.updated_at, row.final_hash
    )


async def complete(
    session: AsyncSession,
    *,
    tenant_id: str,
    operation: str,
    key: str,
    resource_id: str,
    final_hash: str | None,
    now: datetime,
) -> None:
    await session.execute(
        update(keys)
        .where(*_where(tenant_id, operation, key))
        .values(state="completed", resource_id=resource_id, final_hash=final_hash, updated_at=now)
    )


async def touch(
    session: AsyncSession, *, tenant_id: str, operation: str, key: str, now: datetime
) -> None:
    """Marks an in-progress claim as still alive, so it is not taken for abandoned."""
    await session.execute(
        update(keys)
        .where(*_where(tenant_id, operation, key), keys.c.state == "in_progress")
        .values(updated_at=now)
    )


async def release(session: AsyncSession, *, tenant_id: str, operation: str, key: str) -> None:
    """Forgets a key whose request was refused or failed, so it can be fixed and
    retried. A key whose request completed stays: its answer is the replay."""
    await session.execute(
        delete(keys).where(*_where(tenant_id, operation, key), keys.c.state == "in_progress")
    )


async def forget(session: AsyncSession, *, tenant_id: str, operation: str, key: str) -> None:
    """Forgets a key whatever its state (one past its retention)."""
    await session.execute(delete(keys).where(*_where(tenant_id, operation, key)))


async def delete_before(session: AsyncSession, *, cutoff: datetime) -> int:
    result = await session.execute(delete(keys).where(keys.c.created_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]
