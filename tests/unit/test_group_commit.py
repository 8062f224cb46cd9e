"""GroupCommit: concurrent callers share one apply, and one caller's bad
item fails only that caller."""

import asyncio

import pytest

from server.services.receipts import GroupCommit


async def test_concurrent_submits_share_batches_and_all_complete() -> None:
    calls: list[list[int]] = []

    async def apply(items: list[int]) -> None:
        calls.append(items)
        await asyncio.sleep(0.01)

    batches = GroupCommit(apply)
    await asyncio.gather(*(batches.submit([i]) for i in range(50)))
    assert sorted(i for call in calls for i in call) == list(range(50))
    # All 50 arrive before the batcher first runs: one transaction for all.
    assert len(calls) == 1


async def test_a_bad_item_fails_only_its_caller() -> None:
    applied: list[int] = []

    async def apply(items: list[int]) -> None:
        if 13 in items:
            raise ValueError("poison")
        applied.extend(items)

    batches = GroupCommit(apply)
    results = await asyncio.gather(
        *(batches.submit([i]) for i in range(20)), return_exceptions=True
    )
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert failed == [13]
    assert sorted(applied) == [i for i in range(20) if i != 13]


async def test_batches_are_capped() -> None:
    sizes: list[int] = []

    async def apply(items: list[int]) -> None:
        sizes.append(len(items))
        await asyncio.sleep(0)

    batches = GroupCommit(apply, max_batch=10)
    await asyncio.gather(*(batches.submit([i]) for i in range(35)))
    assert sum(sizes) == 35
    assert max(sizes) == 10


@pytest.mark.parametrize("items", [[]])
async def test_nothing_to_record_returns_at_once(items: list[int]) -> None:
    async def apply(batch: list[int]) -> None:
        raise AssertionError("not called for an empty submit")

    await GroupCommit(apply).submit(items)
