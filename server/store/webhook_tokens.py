"""One-use webhook tokens. Claiming is atomic across processes: of two
transactions inserting the same token, the second waits for the first and
then inserts nothing. Functions never commit: the caller owns the transaction,
so a token is spent only if what it carried was recorded."""

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.tables import webhook_tokens


async def claim_tokens(
    session: AsyncSession, expiries: dict[tuple[str, str], datetime]
) -> set[tuple[str, str]]:
    """Records each (provider, token) with its expiry; returns those that were new."""
    if not expiries:
        return set()
    claimed = await session.execute(
        insert(webhook_tokens)
        .values(
            [
                {"provider": provider, "token": token, "expires_at": expires_at}
                for (provider, token), expires_at in expiries.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["provider", "token"])
        .returning(webhook_tokens.c.provider, webhook_tokens.c.token)
    )
    return {(row.provider, row.token) for row in claimed}


async def purge_expired_tokens(session: AsyncSession, *, now: datetime) -> int:
    """Deletes tokens past their expiry (a range scan of the expiry index)."""
    result = await session.execute(delete(webhook_tokens).where(webhook_tokens.c.expires_at < now))
    return int(result.rowcount)  # type: ignore[attr-defined]
