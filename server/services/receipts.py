"""Provider callbacks: check the signature, record the status, tell the workflow."""

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.policies import RolloutPolicy
from contracts.workflows import DeliveryReceipt
from providers.base import (
    MalformedWebhook,
    OneUseToken,
    ProviderReceipt,
    ReceiptRefused,
    WebhookHandler,
    WebhookRequest,
)
from server import metrics
from server.domain.errors import ClarionError, invalid, not_found
from server.domain.receipts import delivery_status, receipt_mismatch, refusal_error, refused
from server.services.deliveries import move_deliveries
from server.services.dispatch import Dispatcher
from server.store import notifications as store
from server.store import templates as template_store
from server.store import webhook_tokens
from server.store.db import Database
from server.store.notifications import DeliveryIdentity, StatusMove

log = logging.getLogger(__name__)

T = TypeVar("T")

# The signature's one-use part (a token, a nonce, the signed bytes) was spent.
_REPLAYED = refused("RECEIPT_REPLAYED", "this signed webhook was already received")
# How often the callbacks process forgets tokens whose signatures are stale.
TOKEN_PURGE_SECONDS = 60.0


@dataclass(frozen=True)
class Callback:
    """A webhook as it arrived: raw body, headers and the path with its query."""

    provider: str
    body: bytes
    headers: dict[str, str]
    path: str


@dataclass(frozen=True)
class SignedCallback:
    """The receipts of one webhook whose signature checked out; they are
    recorded all together or, if one is refused, not at all."""

    provider: str
    receipts: list[ProviderReceipt]
    # A one-use signature token (Mailgun's): spent in the transaction that
    # records the receipts, so a failed commit leaves it for the retry.
    token: OneUseToken | None = None


class Receipts:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        handlers: Mapping[str, WebhookHandler],
        rollout: RolloutPolicy,
    ) -> None:
        self._db = db
        self._dispatcher = dispatcher
        # By callback route: providers/registry.py webhook_handlers.
        self._handlers = handlers
        self._rollout = rollout
        self._batches = GroupCommit(self._apply)
        # Each webhook's workflow signals, sent after its batch commits.
        self._signals: dict[int, asyncio.Future[list[None]]] = {}

    async def handle(self, callback: Callback) -> None:
        """Records a webhook's receipts, or raises PERMISSION_DENIED (and
        records nothing) if its signature or any receipt is not to be trusted."""
        signed = await self._check(callback)
        if signed.receipts or signed.token:
            try:
                await self._batches.submit([signed])
            finally:
                signals = self._signals.pop(id(signed), None)
            if signals is not None:
                # The 2xx waits for the signal, so a failed one is retried
                # with the provider's retry of the webhook.
                await signals
        metrics.CALLBACKS_ACCEPTED.labels(callback.provider).inc()

    async def forget_expired_tokens(self, every: float = TOKEN_PURGE_SECONDS) -> None:
        """Runs for the life of the callbacks process: deletes spent tokens
        once their signatures would be stale anyway (an index range scan)."""
        while True:
            try:
                async with self._db.transaction() as session:
                    await webhook_tokens.purge_expired_tokens(session, now=datetime.now(UTC))
            except Exception:
                log.exception("purging expired webhook tokens failed; retrying later")
            await asyncio.sleep(every)

    def verify_subscription(
        self, *, provider: str, mode: str, verify_token: str, challenge: str
    ) -> str:
        """A provider's webhook handshake (Meta's): the challenge to echo."""
        handler = self._handlers.get(provider)
        try:
            answer = (
                handler.verify_subscription(
                    mode=mode, verify_token=verify_token, challenge=challenge
                )
                if handler
                else None
            )
        except ReceiptRefused as refusal:
            raise refusal_error(refusal) from None
        if answer is None:
            raise not_found("callback route")
        return answer

    async def _check(self, callback: Callback) -> SignedCallback:
        """The provider's handler checks the signature and parses; receipts
        that name only the provider's message id get its delivery's id."""
        handler = self._handlers.get(callback.provider)
        if handler is None:
            raise not_found("callback route")
        try:
            signed = handler.parse(
                WebhookRequest(callback.body, callback.headers, callback.path),
                now=datetime.now(UTC),
            )
        except ReceiptRefused as refusal:
            raise _refusal(callback.provider, refusal.receipts, refusal_error(refusal)) from None
        except MalformedWebhook as malformed:
            raise invalid("INVALID_ARGUMENT", malformed.field, malformed.message) from None
        if signed.template_reviews:
            async with self._db.transaction() as session:
                for review in signed.template_reviews:
                    await template_store.set_whatsapp_review(
                        session,
                        whatsapp_name=review.name,
                        status=review.status,
                        reason=review.reason,
                    )
        receipts: list[ProviderReceipt] = []
        for receipt in signed.receipts:
            if not receipt.delivery_id and receipt.provider_message_id:
                async with self._db.transaction() as session:
                    delivery = await store.find_delivery_by_provider_message_id(
                        session,
                        channel=receipt.channel,
                        provider_message_id=receipt.provider_message_id,
                    )
                if delivery is None:
                    continue
                receipt = replace(receipt, delivery_id=delivery.delivery_id)
            if receipt.delivery_id:
                receipts.append(receipt)
        return SignedCallback(callback.provider, receipts, signed.token)

    async def _apply(self, callbacks: list[SignedCallback]) -> dict[int, ClarionError]:
        """Records a batch of webhooks' receipts in one transaction, then wakes
        the workflows waiting on them (routed single sends'). Every
        receipt is checked first; returns the refused webhooks by index."""
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            identities = await store.delivery_identities(
                session,
                delivery_ids=sorted({r.delivery_id for c in callbacks for r in c.receipts}),
            )
            refusals = await _refusals(session, callbacks, identities)
            receipts = [r for i, c in enumerate(callbacks) if i not in refusals for r in c.receipts]
            await store.adopt_provider_message_ids(
                session,
                {
                    r.delivery_id: r.provider_message_id
                    for r in receipts
                    if r.provider_message_id
                    and r.delivery_id in identities
                    and identities[r.delivery_id].provider_message_id is None
                },
            )
            results = await move_deliveries(
                session,
                [StatusMove(r.delivery_id, delivery_status(r.status), r.reason) for r in receipts],
                now=now,
                rollout=self._rollout,
                receipts=True,
            )
        known = {r.move.delivery_id for r in results}
        for receipt in receipts:
            if receipt.delivery_id not in known:
                # Acknowledged anyway: a provider retrying forever helps no one.
                log.warning("receipt for unknown delivery %s", receipt.delivery_id)
        # Only a routed single send's workflow waits for receipts (see
        # NotificationWorkflow; a bulk's routing runs in its own workflow). A
        # final receipt signals even when it was a duplicate: if the first
        # signal failed, the provider's retry of the callback delivers it.
        waiting = {
            r.move.delivery_id: r
            for r in results
            if r.move.status.is_final and r.status.is_final and r.routed and r.bulk_id is None
        }
        if waiting:
            # Not awaited here: the next batch (another tenant's receipts)
            # must not wait for this one's signals while Temporal is busy.
            signals = asyncio.gather(
                *(
                    self._dispatcher.signal_receipt(
                        r.notification_id,
                        DeliveryReceipt(delivery_id=delivery_id, status=r.status.value),
                    )
                    for delivery_id, r in waiting.items()
                )
            )
            for c in callbacks:
                if any(r.delivery_id in waiting for r in c.receipts):
                    self._signals[id(c)] = signals
        return refusals


async def _refusals(
    session: AsyncSession,
    callbacks: list[SignedCallback],
    identities: dict[str, DeliveryIdentity],
) -> dict[int, ClarionError]:
    """Spends the batch's tokens (one statement) and checks every receipt
    against the delivery it names; returns the refused webhooks by index."""
    refusals: dict[int, ClarionError] = {}
    first_use: dict[tuple[str, str], int] = {}
    expiries: dict[tuple[str, str], datetime] = {}
    for index, callback in enumerate(callbacks):
        if callback.token is None:
            continue
        key = (callback.provider, callback.token.value)
        if key in first_use:
            refusals[index] = _REPLAYED
        else:
            first_use[key] = index
            expiries[key] = callback.token.expires_at
    fresh = await webhook_tokens.claim_tokens(session, expiries)
    for key in expiries.keys() - fresh:
        refusals[first_use[key]] = _REPLAYED
    for index, callback in enumerate(callbacks):
        for receipt in callback.receipts if index not in refusals else []:
            identity = identities.get(receipt.delivery_id)
            if identity is None:
                continue
            mismatch = receipt_mismatch(
                receipt,
                channel=identity.channel,
                address=identity.address,
                provider_message_id=identity.provider_message_id,
            )
            if mismatch:
                refusals[index] = mismatch
                break
    for index, error in refusals.items():
        _refusal(callbacks[index].provider, callbacks[index].receipts, error)
    return refusals


def _refusal(provider: str, receipts: list[ProviderReceipt], error: ClarionError) -> ClarionError:
    """Logs a refused webhook (never its body) and returns the error to raise."""
    delivery_ids = ",".join(r.delivery_id for r in receipts) or "-"
    log.warning("refused %s receipt for %s: %s", provider, delivery_ids, error.reason)
    metrics.CALLBACKS_REFUSED.labels(provider, error.reason).inc()
    return error


# What `apply` may answer: the items it refused, by index, each with the
# error its caller gets; the other items were applied.
Refusals = Mapping[int, Exception] | None


class GroupCommit(Generic[T]):
    """Batches items from concurrent callers into one call of `apply`.

    Provider callbacks arrive hundreds per second during a bulk send; one
    transaction each cost more than all the rest of a callback together.
    Callers wait until their batch is committed, so a 2xx still means
    "recorded". When idle a batch is a single item, so latency is unchanged.
    A caller whose item `apply` refuses gets that error; the others succeed.
    (Hand-written: no maintained library does asyncio group commit.)"""

    def __init__(
        self, apply: Callable[[list[T]], Awaitable[Refusals]], max_batch: int = 500
    ) -> None:
        self._apply = apply
        self._max_batch = max_batch
        self._pending: deque[tuple[list[T], asyncio.Future[None]]] = deque()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, items: list[T]) -> None:
        if not items:
            return
        future = asyncio.get_running_loop().create_future()
        self._pending.append((items, future))
        self._wake.set()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch: list[tuple[list[T], asyncio.Future[None]]] = []
                size = 0
                while self._pending and size < self._max_batch:
                    entry = self._pending.popleft()
                    batch.append(entry)
                    size += len(entry[0])
                try:
                    refusals = await self._apply([item for items, _ in batch for item in items])
                except Exception:
                    # One caller's bad item must not fail the others: apply
                    # each caller's items alone, and each reports its own error.
                    for items, future in batch:
                        await self._apply_alone(items, future)
                else:
                    _settle(batch, refusals or {})

    async def _apply_alone(self, items: list[T], future: "asyncio.Future[None]") -> None:
        try:
            refusals = await self._apply(items)
        except Exception as error:
            if not future.done():
                future.set_exception(error)
        else:
            _settle([(items, future)], refusals or {})


def _settle(
    batch: "list[tuple[list[T], asyncio.Future[None]]]", refusals: Mapping[int, Exception]
) -> None:
    """Answers each caller: its first refused item's error, or success."""
    start = 0
    for items, future in batch:
        errors = [refusals[i] for i in range(start, start + len(items)) if i in refusals]
        start += len(items)
        if future.done():
            continue
        if errors:
            future.set_exception(errors[0])
        else:
            future.set_result(None)
