"""Provider callbacks: check the signature, record the status, tell the workflow."""

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.policies import RolloutPolicy
from contracts.workflows import DeliveryReceipt
from server.domain.channels import Channel
from server.domain.errors import ClarionError, ErrorKind, invalid, not_found
from server.domain.receipts import (
    MAILGUN_FRESHNESS,
    Receipt,
    mailgun_freshness_error,
    mailgun_receipt,
    receipt_mismatch,
    refused,
    twilio_call_receipt,
    twilio_message_receipt,
    whatsapp_statuses,
    whatsapp_template_reviews,
)
from server.domain.signatures import (
    mailgun_signature_valid,
    meta_signature_valid,
    secrets_equal,
    twilio_signature_valid,
)
from server.services.deliveries import move_deliveries
from server.services.dispatch import Dispatcher
from server.store import notifications as store
from server.store import templates as template_store
from server.store import webhook_tokens
from server.store.db import Database
from server.store.notifications import DeliveryIdentity, StatusMove

log = logging.getLogger(__name__)

T = TypeVar("T")

_BAD_SIGNATURE = ClarionError(
    ErrorKind.PERMISSION_DENIED, "INVALID_SIGNATURE", "webhook signature is missing or wrong"
)
_REPLAYED = refused("RECEIPT_REPLAYED", "signature.token was already used")
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
    receipts: list[Receipt] = field(default_factory=list)
    # Mailgun's one-use signature token: spent in the transaction that
    # records the receipts, so a failed commit leaves it for the retry.
    token: "OneUseToken | None" = None


@dataclass(frozen=True)
class OneUseToken:
    value: str
    # When a signature with it is stale anyway, so it may be forgotten.
    expires_at: datetime


@dataclass(frozen=True)
class ProviderSecrets:
    webhook_base_url: str
    twilio_auth_token: str
    mailgun_signing_key: str
    meta_app_secret: str
    meta_verify_token: str


class Receipts:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        secrets: ProviderSecrets,
        rollout: RolloutPolicy,
    ) -> None:
        self._db = db
        self._dispatcher = dispatcher
        self._secrets = secrets
        self._rollout = rollout
        self._batches = GroupCommit(self._apply)
        # Each webhook's workflow signals, sent after its batch commits.
        self._signals: dict[int, asyncio.Future[list[None]]] = {}

    async def handle(self, callback: Callback) -> None:
        """Records a webhook's receipts, or raises PERMISSION_DENIED (and
        records nothing) if its signature or any receipt is not to be trusted."""
        if callback.provider == "twilio":
            signed = self._twilio(callback)
        elif callback.provider == "mailgun":
            signed = self._mailgun(callback, now=datetime.now(UTC))
        elif callback.provider == "whatsapp":
            signed = await self._whatsapp(callback)
        else:
            raise not_found("callback route")
        if signed.receipts or signed.token:
            try:
                await self._batches.submit([signed])
            finally:
                signals = self._signals.pop(id(signed), None)
            if signals is not None:
                # The 2xx waits for the signal, so a failed one is retried
                # with the provider's retry of the webhook.
                await signals

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
        """Meta's webhook handshake: echo the challenge when the token matches."""
        if provider != "whatsapp":
            raise not_found("callback route")
        if mode != "subscribe" or not secrets_equal(self._secrets.meta_verify_token, verify_token):
            raise _BAD_SIGNATURE
        return challenge

    def _twilio(self, callback: Callback) -> SignedCallback:
        params = parse_qsl(callback.body.decode("utf-8", "replace"), keep_blank_values=True)
        # Twilio signs the URL it was given, which is ours: base URL + path.
        url = self._secrets.webhook_base_url.rstrip("/") + callback.path
        signature = callback.headers.get("x-twilio-signature", "")
        if not twilio_signature_valid(self._secrets.twilio_auth_token, url, params, signature):
            raise _BAD_SIGNATURE
        query = dict(parse_qsl(urlsplit(callback.path).query))
        delivery_id = query.get("delivery_id", "")
        fields = dict(params)
        if not delivery_id:
            receipt = None
        elif "CallStatus" in fields:
            receipt = twilio_call_receipt(delivery_id, fields)
        else:
            receipt = twilio_message_receipt(delivery_id, fields)
        return SignedCallback("twilio", [receipt] if receipt else [])

    def _mailgun(self, callback: Callback, *, now: datetime) -> SignedCallback:
        """Mailgun signs only timestamp + token, not event-data: the timestamp
        must be fresh, the token unused, and the event must match the delivery."""
        try:
            payload = json.loads(callback.body)
            signature = payload["signature"]
            timestamp = str(signature["timestamp"])
            token = str(signature["token"])
            valid = token != "" and mailgun_signature_valid(
                self._secrets.mailgun_signing_key, timestamp, token, str(signature["signature"])
            )
        except (ValueError, KeyError, TypeError):
            raise _BAD_SIGNATURE from None
        if not valid:
            raise _BAD_SIGNATURE
        event = payload.get("event-data")
        receipt = mailgun_receipt(event) if isinstance(event, dict) else None
        stale = mailgun_freshness_error(timestamp, now)
        if stale:
            raise _refusal("mailgun", [receipt] if receipt else [], stale)
        return SignedCallback(
            "mailgun",
            [receipt] if receipt else [],
            token=OneUseToken(
                token, datetime.fromtimestamp(int(timestamp), UTC) + MAILGUN_FRESHNESS
            ),
        )

    async def _whatsapp(self, callback: Callback) -> SignedCallback:
        signature = callback.headers.get("x-hub-signature-256", "")
        if not meta_signature_valid(self._secrets.meta_app_secret, callback.body, signature):
            raise _BAD_SIGNATURE
        try:
            payload = json.loads(callback.body)
        except ValueError:
            raise invalid("INVALID_ARGUMENT", "body", "webhook body is not JSON") from None
        payload = payload if isinstance(payload, dict) else {}
        async with self._db.transaction() as session:
            for review in whatsapp_template_reviews(payload):
                await template_store.set_whatsapp_review(
                    session, whatsapp_name=review.name, status=review.status, reason=review.reason
                )
        receipts: list[Receipt] = []
        for status in whatsapp_statuses(payload):
            delivery_id = status.delivery_id
            if not delivery_id.startswith("dlv_"):
                async with self._db.transaction() as session:
                    delivery = await store.find_delivery_by_provider_message_id(
                        session, channel="whatsapp", provider_message_id=status.message_id
                    )
                delivery_id = delivery.delivery_id if delivery else ""
            if delivery_id:
                receipts.append(
                    Receipt(
                        delivery_id,
                        status.status,
                        status.reason,
                        Channel.WHATSAPP,
                        status.message_id,
                    )
                )
        return SignedCallback("whatsapp", receipts)

    async def _apply(self, callbacks: list[SignedCallback]) -> dict[int, ClarionError]:
        """Records a batch of webhooks' receipts in one transaction, then wakes
        the workflows waiting on them (bulk deliveries have none). Every
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
                [StatusMove(r.delivery_id, r.status, r.reason) for r in receipts],
                now=now,
                rollout=self._rollout,
            )
        known = {r.move.delivery_id for r in results}
        for receipt in receipts:
            if receipt.delivery_id not in known:
                # Acknowledged anyway: a provider retrying forever helps no one.
                log.warning("receipt for unknown delivery %s", receipt.delivery_id)
        # A final receipt signals even when it was a duplicate: if the first
        # signal failed, the provider's retry of the callback delivers it.
        waiting = {
            r.move.delivery_id: r
            for r in results
            if r.move.status.is_final and r.status.is_final and r.bulk_id is None
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


def _refusal(provider: str, receipts: list[Receipt], error: ClarionError) -> ClarionError:
    """Logs a refused webhook (never its body) and returns the error to raise."""
    delivery_ids = ",".join(r.delivery_id for r in receipts) or "-"
    log.warning("refused %s receipt for %s: %s", provider, delivery_ids, error.reason)
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
