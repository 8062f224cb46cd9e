"""BulkSendWorkflow: one per bulk. Works through pages of recipients with
batched activities, then retries the recipients that failed transiently,
with backoff, without holding up the other pages. A routed bulk then runs
its fallback steps for the whole bulk at once: one timer per step, not one
workflow or timer per row."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.workflows import BULK_WORKFLOW, BulkSendInput
    from workflows.bulk_activities import (
        PAGE_CONCURRENCY,
        BulkActivities,
        BulkPageInput,
        BulkPageResult,
        BulkRetryInput,
        BulkStepInput,
        BulkStepResult,
        FinishBulkInput,
    )

# Infrastructure failures of the activity itself (worker lost, database
# blip) are retried by Temporal; provider failures are handled per recipient.
_ACTIVITY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
# Bulks started with this patch run routing steps after the first step's pages.
ROUTING_PATCH = "bulk-channel-fallback-routing"


@workflow.defn(name=BULK_WORKFLOW)
class BulkSendWorkflow:
    def __init__(self) -> None:
        self._pages = 0
        self._pages_done = 0
        self._handed_over = 0
        self._failed = 0
        self._retrying = 0
        self._step = 0

    @workflow.query(name="progress")
    def progress(self) -> dict[str, int]:
        """What the Temporal UI's query tab shows for this bulk."""
        return {
            "pages": self._pages,
            "pages_done": self._pages_done,
            "handed_over": self._handed_over,
            "failed": self._failed,
            "retrying": self._retrying,
            "routing_step": self._step,
        }

    @workflow.run
    async def run(self, task: BulkSendInput) -> dict[str, int]:
        starts = list(range(0, task.rows, task.page_size))
        self._pages = len(starts)
        # A sliding window of pages: a slow page (retries, slow provider)
        # does not hold the others back.
        window = asyncio.Semaphore(task.parallel_pages)

        async def page(first: int) -> None:
            async with window:
                await self._page(task, first, min(first + task.page_size, task.rows))

        await asyncio.gather(*(page(first) for first in starts))
        if workflow.patched(ROUTING_PATCH):
            await self._route(task, page)
        await workflow.execute_activity_method(
            BulkActivities.finish_bulk,
            FinishBulkInput(task.bulk_id),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_ACTIVITY_RETRY,
        )
        return self.progress()

    async def _route(self, task: BulkSendInput, page: Callable[[int], Awaitable[None]]) -> None:
        """Step by step: once a step's pages are done, its rows that failed
        or have not reached success_on within step_timeout (one timer for
        the step; receipts land in PostgreSQL meanwhile) move to the next
        step, whose pages go out the same way. A superseded step's late
        receipt is only recorded: nothing here waits for it."""
        position = 0
        while True:
            step = await self._settle(task, position, unless_open=True)
            if not step.routed:
                return
            if step.open:
                await workflow.sleep(timedelta(seconds=step.step_timeout_seconds))
                step = await self._settle(task, position, unless_open=False)
            if not step.next_pages:
                return
            position += 1
            self._step = position
            self._pages += len(step.next_pages)
            await asyncio.gather(*(page(first) for first in step.next_pages))

    async def _settle(
        self, task: BulkSendInput, position: int, *, unless_open: bool
    ) -> BulkStepResult:
        return await workflow.execute_activity_method(
            BulkActivities.settle_bulk_step,
            BulkStepInput(task.bulk_id, position, task.page_size, unless_open),
            # Rows settle at some 5 ms each here; batches heartbeat, so a
            # dead worker is noticed long before this.
            start_to_close_timeout=timedelta(seconds=120 + task.rows * 0.05),
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=_ACTIVITY_RETRY,
        )

    async def _page(self, task: BulkSendInput, first: int, last: int) -> None:
        policy = task.policy
        # Long enough for every call of the page to take the provider's whole
        # timeout, PAGE_CONCURRENCY at a time: a slow provider must not time
        # the page out and have it retried. A dead worker is noticed sooner,
        # by the heartbeat each provider answer sends.
        waves = -(-(last - first) // PAGE_CONCURRENCY)
        timeout = timedelta(seconds=policy.provider_timeout_seconds * waves + 60)
        heartbeat = timedelta(seconds=policy.provider_timeout_seconds + 10)
        attempt = 1
        result = await workflow.execute_activity_method(
            BulkActivities.send_bulk_page,
            BulkPageInput(task.bulk_id, first, last, attempt, final=policy.max_attempts <= 1),
            start_to_close_timeout=timeout,
            heartbeat_timeout=heartbeat,
            retry_policy=_ACTIVITY_RETRY,
        )
        self._count(result)
        while result.retry_ids:
            self._retrying += len(result.retry_ids)
            ceiling = min(
                policy.retry_max_seconds, policy.retry_initial_seconds * 2 ** (attempt - 1)
            )
            # Equal jitter, drawn from the workflow's deterministic random source.
            delay = max(result.retry_after, ceiling / 2 + workflow.random().uniform(0, ceiling / 2))
            await workflow.sleep(timedelta(seconds=delay))
            attempt += 1
            retry_ids = result.retry_ids
            result = await workflow.execute_activity_method(
                BulkActivities.send_bulk_retries,
                BulkRetryInput(
                    task.bulk_id, retry_ids, attempt, final=attempt >= policy.max_attempts
                ),
                start_to_close_timeout=timeout,
                heartbeat_timeout=heartbeat,
                retry_policy=_ACTIVITY_RETRY,
            )
            self._retrying -= len(retry_ids)
            self._count(result)
        self._pages_done += 1

    def _count(self, result: BulkPageResult) -> None:
        self._handed_over += result.handed_over
        self._failed += result.failed
