"""Idempotency for operations that create things (a send, a bulk).

The first request with a key claims it in its own short transaction; a
concurrent one then sees it in progress (IDEMPOTENCY_KEY_IN_USE) instead of
waiting. Once the first is answered, a replay gets the same resource. A
refused request releases its key, so the tenant can fix it and retry."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.errors import ClarionError, ErrorKind, invalid
from server.store import idempotency as store
from server.store.db import Database


@dataclass(frozen=True)
class IdempotencyPolicy:
    # How long a key is remembered; after that it may be used again.
    retention: timedelta = timedelta(hours=24)
    # A claim older than this with no answer is from a request that died.
    abandoned_after: timedelta = timedelta(seconds=60)


@dataclass
class Claim:
    """What the caller does next: `replay_id` set means answer with that
    resource; otherwise create it and call `completed` in the same transaction."""

    tenant_id: str
    operation: str
    key: str | None
    replay_id: str | None = None

    async def completed(self, session: AsyncSession, resource_id: str) -> None:
        if self.key is not None:
            await store.complete(
                session,
                tenant_id=self.tenant_id,
                operation=self.operation,
                key=self.key,
                resource_id=resource_id,
                now=datetime.now(UTC),
            )


class Idempotency:
    def __init__(self, db: Database, policy: IdempotencyPolicy) -> None:
        self._db = db
        self._policy = policy

    @asynccontextmanager
    async def claim(
        self, *, tenant_id: str, operation: str, key: str | None, request_hash: str
    ) -> AsyncIterator[Claim]:
        """Claims the key for the body of the `async with`; a ClarionError
        raised there releases it."""
        claim = Claim(tenant_id, operation, key)
        if key is None:
            yield claim
            return
        claim.replay_id = await self._claim(tenant_id, operation, key, request_hash)
        try:
            yield claim
        except ClarionError:
            if claim.replay_id is None:
                async with self._db.transaction() as session:
                    await store.release(session, tenant_id=tenant_id, operation=operation, key=key)
            raise

    async def _claim(
        self, tenant_id: str, operation: str, key: str, request_hash: str
    ) -> str | None:
        now = datetime.now(UTC)
        for _ in range(3):
            async with self._db.transaction() as session:
                if await store.try_claim(
                    session,
                    tenant_id=tenant_id,
                    operation=operation,
                    key=key,
                    request_hash=request_hash,
                    now=now,
                ):
                    return None
                existing = await store.get(
                    session, tenant_id=tenant_id, operation=operation, key=key
                )
                if existing is None:
                    continue  # released meanwhile; claim again
                expired = existing.created_at < now - self._policy.retention
                abandoned = (
                    existing.state == "in_progress"
                    and existing.updated_at < now - self._policy.abandoned_after
                )
                if expired or abandoned:
                    await store.release(session, tenant_id=tenant_id, operation=operation, key=key)
                    continue
                if existing.request_hash != request_hash:
                    raise invalid(
                        "IDEMPOTENCY_KEY_REUSED",
                        "idempotency_key",
                        "idempotency_key was already used with a different payload; "
                        "use a new key for a new request",
                    )
                if existing.state != "completed" or existing.resource_id is None:
                    raise ClarionError(
                        ErrorKind.ABORTED,
                        "IDEMPOTENCY_KEY_IN_USE",
                        "a request with this idempotency_key is still being processed; "
                        "retry after it completes to get its response",
                    )
                return existing.resource_id
        raise ClarionError(
            ErrorKind.ABORTED,
            "IDEMPOTENCY_KEY_IN_USE",
            "a request with this idempotency_key is still being processed; retry shortly",
        )

    async def forget_expired(self) -> int:
        async with self._db.transaction() as session:
            return await store.delete_before(
                session, cutoff=datetime.now(UTC) - self._policy.retention
            )
