"""Provider callbacks: check the signature, record the status, tell the workflow."""

import asyncio
import hmac
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

from server.domain.errors import ClarionError, ErrorKind, invalid, not_found
from server.domain.receipts import (
    Receipt,
    mailgun_receipt,
    twilio_call_receipt,
    twilio_message_receipt,
    whatsapp_statuses,
    whatsapp_template_reviews,
)
from server.domain.rollout import RolloutPolicy
from server.domain.signatures import (
    mailgun_signature_valid,
    meta_signature_valid,
    twilio_signature_valid,
)
from server.services.deliveries import move_deliveries
from server.services.dispatch import Dispatcher
from server.store import notifications as store
from server.store import templates as template_store
from server.store.db import Database
from server.store.notifications import StatusMove
from workflows.contracts import DeliveryReceipt

log = logging.getLogger(__name__)

T = TypeVar("T")

_BAD_SIGNATURE = ClarionError(
    ErrorKind.PERMISSION_DENIED, "INVALID_SIGNATURE", "webhook signature is missing or wrong"
)


@dataclass(frozen=True)
class Callback:
    """A webhook as it arrived: raw body, headers and the path with its query."""

    provider: str
    body: bytes
    headers: dict[str, str]
    path: str


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

    async def handle(self, callback: Callback) -> None:
        if callback.provider == "twilio":
            receipts = [self._twilio(callback)]
        elif callback.provider == "mailgun":
            receipts = [self._mailgun(callback)]
        elif callback.provider == "whatsapp":
            receipts = await self._whatsapp(callback)
        else:
            raise not_found("callback route")
        await self._batches.submit([r for r in receipts if r is not None])

    def verify_subscription(
        self, *, provider: str, mode: str, verify_token: str, challenge: str
    ) -> str:
        """Meta's webhook handshake: echo the challenge when the token matches."""
        if provider != "whatsapp":
            raise not_found("callback route")
        if mode != "subscribe" or not hmac.compare_digest(
            verify_token, self._secrets.meta_verify_token
        ):
            raise _BAD_SIGNATURE
        return challenge

    def _twilio(self, callback: Callback) -> Receipt | None:
        params = parse_qsl(callback.body.decode("utf-8", "replace"), keep_blank_values=True)
        # Twilio signs the URL it was given, which is ours: base URL + path.
        url = self._secrets.webhook_base_url.rstrip("/") + callback.path
        signature = callback.headers.get("x-twilio-signature", "")
        if not twilio_signature_valid(self._secrets.twilio_auth_token, url, params, signature):
            raise _BAD_SIGNATURE
        query = dict(parse_qsl(urlsplit(callback.path).query))
        delivery_id = query.get("delivery_id", "")
        if not delivery_id:
            return None
        fields = dict(params)
        if "CallStatus" in fields:
            return twilio_call_receipt(delivery_id, fields)
        return twilio_message_receipt(delivery_id, fields)

    def _mailgun(self, callback: Callback) -> Receipt | None:
        try:
            payload = json.loads(callback.body)
            signature = payload["signature"]
            valid = mailgun_signature_valid(
                self._secrets.mailgun_signing_key,
                str(signature["timestamp"]),
                str(signature["token"]),
                str(signature["signature"]),
            )
        except (ValueError, KeyError, TypeError):
            raise _BAD_SIGNATURE from None
        if not valid:
            raise _BAD_SIGNATURE
        event = payload.get("event-data")
        return mailgun_receipt(event) if isinstance(event, dict) else None

    async def _whatsapp(self, callback: Callback) -> list[Receipt | None]:
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
        receipts: list[Receipt | None] = []
        for status in whatsapp_statuses(payload):
            delivery_id = status.delivery_id
            if not delivery_id.startswith("dlv_"):
                async with self._db.transaction() as session:
                    delivery = await store.find_delivery_by_provider_message_id(
                        session, channel="whatsapp", provider_message_id=status.message_id
                    )
                delivery_id = delivery.delivery_id if delivery else ""
            if delivery_id:
                receipts.append(Receipt(delivery_id, status.status, status.reason))
        return receipts

    async def _apply(self, receipts: list[Receipt]) -> None:
        """Records a batch of receipts in one transaction, then wakes the
        workflows waiting on them. Bulk deliveries have no workflow waiting."""
        async with self._db.transaction() as session:
            results = await move_deliveries(
                session,
                [StatusMove(r.delivery_id, r.status, r.reason) for r in receipts],
                now=datetime.now(UTC),
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
        await asyncio.gather(
            *(
                self._dispatcher.signal_receipt(
                    r.notification_id,
                    DeliveryReceipt(delivery_id=delivery_id, status=r.status.value),
                )
                for delivery_id, r in waiting.items()
            )
        )


class GroupCommit(Generic[T]):
    """Batches items from concurrent callers into one call of `apply`.

    Provider callbacks arrive hundreds per second during a bulk send; one
    transaction each cost more than all the rest of a callback together.
    Callers wait until their batch is committed, so a 2xx still means
    "recorded". When idle a batch is a single item, so latency is unchanged.
    (Hand-written: no maintained library does asyncio group commit.)"""

    def __init__(self, apply: Callable[[list[T]], Awaitable[None]], max_batch: int = 500) -> None:
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
                    await self._apply([item for items, _ in batch for item in items])
                except Exception:
                    # One caller's bad item must not fail the others: apply
                    # each caller's items alone, and each reports its own error.
                    for items, future in batch:
                        await self._apply_alone(items, future)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)

    async def _apply_alone(self, items: list[T], future: "asyncio.Future[None]") -> None:
        try:
            await self._apply(items)
        except Exception as error:
            if not future.done():
                future.set_exception(error)
        else:
            if not future.done():
                future.set_result(None)
