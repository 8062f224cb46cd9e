"""FairGate: a tenant's queue of waiters never holds another tenant's one back."""

import asyncio

from server.services.fair_gate import FairGate


async def test_waiters_take_turns_between_keys() -> None:
    gate = FairGate(1)
    order: list[str] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.turn("a"):
            await release.wait()

    async def go(key: str, name: str) -> None:
        async with gate.turn(key):
            order.append(name)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(go("a", f"a{i}")) for i in range(3)]
    await asyncio.sleep(0)
    waiters.append(asyncio.create_task(go("b", "b0")))
    await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, *waiters), timeout=5)

    assert order == ["a0", "b0", "a1", "a2"]


async def test_a_cancelled_waiter_gives_its_place_to_the_next() -> None:
    gate = FairGate(1)
    release = asyncio.Event()
    entered: list[str] = []

    async def hold() -> None:
        async with gate.turn("a"):
            await release.wait()

    async def go(key: str) -> None:
        async with gate.turn(key):
            entered.append(key)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(go("a"))
    waiting = asyncio.create_task(go("b"))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, waiting), timeout=5)
    # The gate is free again afterwards.
    await asyncio.wait_for(go("c"), timeout=5)

    assert entered == ["b", "c"]
