"""Idempotency for operations that create things (a send, a bulk, an upload).

The first request with a key claims it in its own short transaction; a
concurrent one then sees it in progress (IDEMPOTENCY_KEY_IN_USE) instead of
waiting. Once the first is answered, a replay gets the same resource. A
refused request releases its key, so the tenant can fix it and retry.

A streamed request (a CSV upload) is claimed with the hash of what is known up
front, its parameters; the hash of the whole request is known only once the
body has been read, so it is recorded on completion and a replay compares its
own with `Claim.check_replay`."""

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.policies import IdempotencyPolicy
from server import metrics
from server.domain.errors import ClarionError, ErrorKind, invalid
from server.store import idempotency as store
from server.store.db import Database

log = logging.getLogger(__name__)


@dataclass
class Claim:
    """What the caller does next: `replay_id` set means answer with that
    resource; otherwise create it and call `completed` in the same transaction."""

    tenant_id: str
    operation: str
    key: str | None
    replay_id: str | None = None
    # The first request's whole-request hash, for a streamed request.
    replay_final_hash: str | None = None

    def check_replay(self, final_hash: str) -> None:
        """For a streamed request being replayed: refuses it unless the whole
        request, body included, is the one the key was first used with."""
        if self.replay_id is not None and final_hash != self.replay_final_hash:
            raise _key_reused()

    async def completed(
        self, session: AsyncSession, resource_id: str, *, final_hash: str | None = None
    ) -> None:
        if self.key is not None:
            await store.complete(
                session,
                tenant_id=self.tenant_id,
                operation=self.operation,
                key=self.key,
                resource_id=resource_id,
                final_hash=final_hash,
                now=datetime.now(UTC),
            )


class StreamHash:
    """SHA-256 of a streamed request: the hash of what was known up front,
    then the body as it passes through, never held whole."""

    def __init__(self, request_hash: str) -> None:
        self._digest = hashlib.sha256(request_hash.encode())

    async def through(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self._digest.update(chunk)
            yield chunk

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class Idempotency:
    def __init__(self, db: Database, policy: IdempotencyPolicy) -> None:
        self._db = db
        self._policy = policy

    @asynccontextmanager
    async def claim(
        self,
        *,
        tenant_id: str,
        operation: str,
        key: str | None,
        request_hash: str,
        long_running: bool = False,
    ) -> AsyncIterator[Claim]:
        """Claims the key for the body of the `async with`; any exception
        raised there releases it (a key that completed in the body's
        transaction stays completed). A long-running claim (an upload may take
        minutes) is refreshed while it runs, so it is not taken for abandoned."""
        claim = Claim(tenant_id, operation, key)
        if key is None:
            yield claim
            return
        first = await self._claim(tenant_id, operation, key, request_hash)
        if first is not None:
            metrics.IDEMPOTENCY_REPLAYS.labels(operation).inc()
            claim.replay_id = first.resource_id
            claim.replay_final_hash = first.final_hash
        refresh = None
        if long_running and first is None:
            refresh = asyncio.create_task(self._keep_fresh(tenant_id, operation, key))
        try:
            yield claim
        except BaseException:
            # Not only refusals: an unexpected error or a cancelled request
            # must not leave the key "in use" until it goes stale.
            if refresh is not None:
                refresh.cancel()
            if first is None:
                async with self._db.transaction() as session:
                    await store.release(session, tenant_id=tenant_id, operation=operation, key=key)
            raise
        finally:
            if refresh is not None:
                refresh.cancel()

    async def _claim(
        self, tenant_id: str, operation: str, key: str, request_hash: str
    ) -> store.KeyRecord | None:
        """None once claimed; the first request's record when this is a replay."""
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
                if expired:
                    await store.forget(session, tenant_id=tenant_id, operation=operation, key=key)
                    continue
                if abandoned:
                    await store.release(session, tenant_id=tenant_id, operation=operation, key=key)
                    continue
                if existing.request_hash != request_hash:
                    raise _key_reused()
                if existing.state != "completed" or existing.resource_id is None:
                    raise ClarionError(
                        ErrorKind.ABORTED,
                        "IDEMPOTENCY_KEY_IN_USE",
                        "a request with this idempotency_key is still being processed; "
                        "retry after it completes to get its response",
                    )
                return existing
        raise ClarionError(
            ErrorKind.ABORTED,
            "IDEMPOTENCY_KEY_IN_USE",
            "a request with this idempotency_key is still being processed; retry shortly",
        )

    async def _keep_fresh(self, tenant_id: str, operation: str, key: str) -> None:
        every = self._policy.abandoned_after.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                async with self._db.transaction() as session:
                    await store.touch(
                        session,
                        tenant_id=tenant_id,
                        operation=operation,
                        key=key,
                        now=datetime.now(UTC),
                    )
            except Exception:
                log.exception("could not refresh an idempotency claim (%s)", operation)

    async def forget_expired(self) -> int:
        async with self._db.transaction() as session:
            return await store.delete_before(
                session, cutoff=datetime.now(UTC) - self._policy.retention
            )


def _key_reused() -> ClarionError:
    return invalid(
        "IDEMPOTENCY_KEY_REUSED",
        "idempotency_key",
        "idempotency_key was already used with a different payload; "
        "use a new key for a new request",
    )
