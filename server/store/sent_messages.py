"""The provider messages a tenant's deliveries produced, for the sandbox
inbox. Functions never commit: the caller owns the transaction."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.tables import deliveries, notifications


@dataclass(frozen=True)
class SentMessage:
    notification_id: str
    channel: str
    address: str
    provider_message_id: str
    # The notification's idempotency key ("" when none).
    idempotency_key: str


async def sent_messages(
    session: AsyncSession, *, tenant_id: str, notification_id: str | None, limit: int
) -> list[SentMessage]:
    """Deliveries a provider accepted, of one notification or the tenant's
    newest notifications."""
    query = (
        select(
            deliveries.c.notification_id,
            deliveries.c.channel,
            deliveries.c.address,
            deliveries.c.provider_message_id,
            notifications.c.idempotency_key,
        )
        .join(notifications, notifications.c.id == deliveries.c.notification_id)
        .where(
            notifications.c.tenant_id == tenant_id,
            deliveries.c.tenant_id == tenant_id,
            deliveries.c.provider_message_id.is_not(None),
        )
    )
    if notification_id is not None:
        query = query.where(notifications.c.id == notification_id)
    rows = await session.execute(
        query.order_by(notifications.c.created_at.desc(), notifications.c.id.desc()).limit(limit)
    )
    return [
        SentMessage(
            notification_id=row.notification_id,
            channel=row.channel,
            address=row.address,
            provider_message_id=row.provider_message_id,
            idempotency_key=row.idempotency_key or "",
        )
        for row in rows
    ]
