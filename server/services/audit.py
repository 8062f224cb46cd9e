"""The audit log: one helper records an entry inside the change's own
transaction; AuditLog lists a tenant's entries and records for callers that
have no transaction of their own."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.audit import Actor
from server.services.paging import check_page_size, decode_position, encode_position
from server.store import audit as store
from server.store.db import Database


async def record(
    session: AsyncSession, actor: Actor, action: str, target: str, detail: str = ""
) -> None:
    """Records `action` (e.g. "api_key.revoked") on `target` (an id) by `actor`."""
    await store.record_event(
        session,
        tenant_id=actor.tenant_id,
        actor_email=actor.email,
        actor_api_key=actor.api_key,
        action=action,
        target=target,
        detail=detail,
        now=datetime.now(UTC),
    )


@dataclass(frozen=True)
class AuditEntryView:
    at: datetime
    actor_email: str
    actor_api_key: str
    action: str
    target: str
    detail: str


def _is_entry_position(position: list[object]) -> bool:
    return len(position) == 1 and isinstance(position[0], int) and position[0] > 0


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, actor: Actor, action: str, target: str, detail: str = "") -> None:
        async with self._db.transaction() as session:
            await record(session, actor, action, target, detail)

    async def list(
        self, *, tenant_id: str, page_size: int, page_token: str
    ) -> tuple[list[AuditEntryView], str]:
        """A page of entries, newest first, and the next page's token ("" at the end)."""
        limit = check_page_size(page_size, default=50, maximum=200)
        before = None
        if page_token:
            before = int(decode_position(page_token, _is_entry_position)[0])  # type: ignore[call-overload]
        async with self._db.transaction() as session:
            records = await store.list_events(
                session, tenant_id=tenant_id, before_id=before, limit=limit + 1
            )
        views = [
            AuditEntryView(r.at, r.actor_email, r.actor_api_key, r.action, r.target, r.detail)
            for r in records[:limit]
        ]
        token = encode_position([records[limit - 1].entry_id]) if len(records) > limit else ""
        return views, token
