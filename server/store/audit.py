"""The audit log: who changed what in a tenant. Functions never commit: the
caller owns the transaction, so an entry lands with the change it records."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.tables import audit_log


@dataclass(frozen=True)
class AuditRecord:
    entry_id: int
    at: datetime
    actor_email: str
    actor_api_key: str
    action: str
    target: str
    detail: str


async def record_event(
    session: AsyncSession,
    *,
    tenant_id: str,
    actor_email: str,
    actor_api_key: str,
    action: str,
    target: str,
    detail: str,
    now: datetime,
) -> None:
    await session.execute(
        insert(audit_log).values(
            tenant_id=tenant_id,
            at=now,
            actor_email=actor_email,
            actor_api_key=actor_api_key,
            action=action,
            target=target,
            detail=detail,
        )
    )


async def list_events(
    session: AsyncSession, *, tenant_id: str, before_id: int | None, limit: int
) -> list[AuditRecord]:
    """Newest first; `before_id` is the previous page's last entry."""
    query = select(audit_log).where(audit_log.c.tenant_id == tenant_id)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    rows = await session.execute(query.order_by(audit_log.c.id.desc()).limit(limit))
    return [
        AuditRecord(
            entry_id=row.id,
            at=row.at,
            actor_email=row.actor_email,
            actor_api_key=row.actor_api_key,
            action=row.action,
            target=row.target,
            detail=row.detail,
        )
        for row in rows
    ]
