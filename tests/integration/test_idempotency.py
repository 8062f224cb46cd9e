"""Idempotency claims against real PostgreSQL: a streamed request's claim
stays fresh while it runs, and its replay is checked against the whole request."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from contracts.policies import IdempotencyPolicy
from server.domain.errors import ClarionError
from server.domain.ids import new_id
from server.services.idempotency import Idempotency, StreamHash
from server.store.db import Database


async def reason_of_claim(idempotency: Idempotency, tenant_id: str, request_hash: str) -> str:
    try:
        async with idempotency.claim(
            tenant_id=tenant_id, operation="bulk_upload", key="k", request_hash=request_hash
        ):
            return "claimed"
    except ClarionError as error:
        return error.reason


async def test_long_running_claim_is_not_taken_for_abandoned(db: Database) -> None:
    idempotency = Idempotency(db, IdempotencyPolicy(abandoned_after=timedelta(seconds=0.3)))
    tenant_id = new_id("tnt")
    async with idempotency.claim(
        tenant_id=tenant_id, operation="bulk_upload", key="k", request_hash="p", long_running=True
    ):
        await asyncio.sleep(1)
        assert await reason_of_claim(idempotency, tenant_id, "p") == "IDEMPOTENCY_KEY_IN_USE"


async def test_streamed_replay_is_compared_on_the_whole_request(db: Database) -> None:
    idempotency = Idempotency(db, IdempotencyPolicy())
    tenant_id = new_id("tnt")

    async def body(*chunks: bytes) -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def read(request_hash: str, *chunks: bytes) -> str:
        stream = StreamHash(request_hash)
        async for _ in stream.through(body(*chunks)):
            pass
        return stream.hexdigest()

    first_hash = await read("p", b"phone\n", b"+1415\n")
    async with idempotency.claim(
        tenant_id=tenant_id, operation="bulk_upload", key="k", request_hash="p"
    ) as claim:
        assert claim.replay_id is None
        async with db.transaction() as session:
            await claim.completed(session, "blk_1", final_hash=first_hash)
    async with idempotency.claim(
        tenant_id=tenant_id, operation="bulk_upload", key="k", request_hash="p"
    ) as replay:
        assert replay.replay_id == "blk_1"
        replay.check_replay(await read("p", b"phone\n+14", b"15\n"))
        with pytest.raises(ClarionError) as reused:
            replay.check_replay(await read("p", b"phone\n+1416\n"))
        assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_any_failure_inside_a_claim_releases_the_key(db: Database) -> None:
    """Not only refusals: an unexpected error (a bug, a lost connection) must
    not leave the key "in use", or the tenant's corrected retry is refused."""
    idempotency = Idempotency(db, IdempotencyPolicy())
    tenant_id = new_id("tnt")
    with pytest.raises(RuntimeError):
        async with idempotency.claim(
            tenant_id=tenant_id, operation="send", key="k", request_hash="first"
        ):
            raise RuntimeError("unexpected")
    assert await reason_of_claim_for(idempotency, tenant_id, "send", "corrected") == "claimed"


async def reason_of_claim_for(
    idempotency: Idempotency, tenant_id: str, operation: str, request_hash: str
) -> str:
    try:
        async with idempotency.claim(
            tenant_id=tenant_id, operation=operation, key="k", request_hash=request_hash
        ):
            return "claimed"
    except ClarionError as error:
        return error.reason
