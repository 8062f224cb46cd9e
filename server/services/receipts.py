"""Provider callbacks: check the signature, record the status, tell the workflow."""

import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
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
from server.services.deliveries import move_delivery
from server.services.dispatch import Dispatcher
from server.store import notifications as store
from server.store import templates as template_store
from server.store.db import Database
from workflows.contracts import DeliveryReceipt

log = logging.getLogger(__name__)

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
    public_base_url: str
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

    async def handle(self, callback: Callback) -> None:
        if callback.provider == "twilio":
            receipts = [self._twilio(callback)]
        elif callback.provider == "mailgun":
            receipts = [self._mailgun(callback)]
        elif callback.provider == "whatsapp":
            receipts = await self._whatsapp(callback)
        else:
            raise not_found("callback route")
        for receipt in receipts:
            if receipt is not None:
                await self._record(receipt)

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
        url = self._secrets.public_base_url.rstrip("/") + callback.path
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

    async def _record(self, receipt: Receipt) -> None:
        async with self._db.transaction() as session:
            delivery = await store.get_delivery(session, delivery_id=receipt.delivery_id)
            if delivery is None:
                # Acknowledged anyway: a provider retrying forever helps no one.
                log.warning("receipt for unknown delivery %s", receipt.delivery_id)
                return
            moved = await move_delivery(
                session,
                delivery_id=receipt.delivery_id,
                status=receipt.status,
                reason=receipt.reason,
                now=datetime.now(UTC),
                rollout=self._rollout,
            )
        # Bulk deliveries have no per-notification workflow waiting.
        if moved and receipt.status.is_final and delivery.bulk_id is None:
            await self._dispatcher.signal_receipt(
                delivery.notification_id,
                DeliveryReceipt(delivery_id=receipt.delivery_id, status=receipt.status.value),
            )
