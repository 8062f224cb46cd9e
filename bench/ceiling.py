"""The Temporal ceiling for single sends: the rate of a raw workflow with one
local activity that does nothing and one signal, on a given Temporal server,
with an unsandboxed worker in a process of its own. One workflow per
notification cannot go faster than this on the same server, whatever
Clarion does; bench.cpu_per_send and `make bench` compare against it.

    .venv/bin/python -m bench.ceiling --temporal 127.0.0.1:7233 [--workflows 2000]
"""

import argparse
import asyncio
import multiprocessing
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

TASK_QUEUE = "bench-ceiling"
# What the raw workflow waits for after its local activity: nothing; a signal
# (the receipt; the single-send ceiling); or a signal with a timeout, which
# adds a timer that the signal cancels (Clarion's wait for a receipt).
SHAPES = ("local", "signal", "receipt_wait")


@activity.defn
async def nothing() -> None:
    return None


@workflow.defn(sandboxed=False)
class RawWorkflow:
    """What a notification needs of Temporal at least: a start, a local
    activity (the provider call) and a signal (its receipt)."""

    def __init__(self) -> None:
        self._signalled = False

    @workflow.run
    async def run(self, shape: str = "signal") -> None:
        await workflow.execute_local_activity(nothing, start_to_close_timeout=timedelta(seconds=10))
        if shape == "signal":
            await workflow.wait_condition(lambda: self._signalled)
        elif shape == "receipt_wait":
            await workflow.wait_condition(lambda: self._signalled, timeout=timedelta(hours=1))

    @workflow.signal
    def receipt(self) -> None:
        self._signalled = True


async def _work(address: str) -> None:
    client = await Client.connect(address)
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[RawWorkflow],
        activities=[nothing],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await asyncio.Event().wait()


def _worker_process(address: str) -> None:
    asyncio.run(_work(address))


async def measure(address: str, workflows: int, concurrency: int, shape: str = "signal") -> float:
    """Workflows completed per second, from the first start to the last end."""
    client = await Client.connect(address)
    run = uuid.uuid4().hex[:8]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(workflows):
        queue.put_nowait(i)

    async def one() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            handle = await client.start_workflow(
                RawWorkflow.run,
                shape,
                id=f"ceiling-{run}-{i}",
                task_queue=TASK_QUEUE,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            if shape != "local":
                await handle.signal(RawWorkflow.receipt)
            await handle.result()

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    return workflows / (time.monotonic() - started)


async def _start_rate(address: str, starts: int, concurrency: int) -> float:
    client = await Client.connect(address)
    run = uuid.uuid4().hex[:8]
    numbers = iter(range(starts))

    async def one() -> None:
        for i in numbers:
            # No worker polls this queue: only the start is measured.
            await client.start_workflow(
                RawWorkflow.run, id=f"start-{run}-{i}", task_queue=f"{TASK_QUEUE}-starts-only"
            )

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    return starts / (time.monotonic() - started)


def start_rate(address: str, starts: int = 2000, concurrency: int = 16) -> float:
    """Raw `start_workflow` calls per second from `concurrency` tasks: what
    the accept path would be held to if it started each workflow itself."""
    asyncio.run(_start_rate(address, min(100, starts), concurrency))
    return asyncio.run(_start_rate(address, starts, concurrency))


def ceiling(
    address: str, workflows: int = 2000, concurrency: int = 16, shape: str = "signal"
) -> float:
    """Starts the worker process, warms up (100 workflows), then measures."""
    context = multiprocessing.get_context("spawn")
    worker = context.Process(target=_worker_process, args=(address,), daemon=True)
    worker.start()
    try:
        asyncio.run(measure(address, min(100, workflows), concurrency, shape))
        return asyncio.run(measure(address, workflows, concurrency, shape))
    finally:
        worker.terminate()
        worker.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--temporal", required=True, help="host:port of the Temporal frontend")
    parser.add_argument("--workflows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    rate = ceiling(args.temporal, args.workflows, args.concurrency)
    print(f"raw workflow (1 local activity, 1 signal): {rate:.1f}/s")


if __name__ == "__main__":
    main()
