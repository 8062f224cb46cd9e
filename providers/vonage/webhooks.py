"""Vonage SMS API delivery receipts: the signature and the fields.

Signed webhooks (https://developer.vonage.com/en/getting-started/concepts/signing-messages)
carry `timestamp`, `nonce` and `sig` among the form fields. `sig` is over
every other field, sorted by name, each as `&name=value` with `&` and `=`
in values replaced by `_`: "md5hash" appends the signature secret and takes
MD5; the HMAC methods key that string with the secret. Hex, compared
case-insensitively (the client libraries emit upper case for the HMACs).
The timestamp must be fresh and the nonce is spent once.

Receipt fields (https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts):
`messageId` (the send's message-id), `status`, `err-code`, `client-ref`
(the delivery id we sent, inside the signature; the URL's query is not)."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from providers.base import (
    OneUseToken,
    ProviderReceipt,
    ReceiptRefused,
    ReceiptStatus,
    SignedWebhook,
    WebhookRequest,
    bad_signature,
)
from providers.signing import as_bytes, timestamp_age_error

ROUTE = "vonage"
METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
# A signature is trusted this long either side of its timestamp, and its
# nonce remembered as long, so that a replay is either stale or known.
FRESHNESS = timedelta(minutes=5)

# DLR err-codes in tenant words (the delivery receipts guide's table).
_ERRORS = {
    "1": "the carrier could not deliver the message",
    "2": "recipient phone is unreachable",
    "3": "unknown or inactive phone number",
    "4": "recipient blocked the message",
    "5": "the carrier could not deliver the message",
    "6": "message blocked by the carrier as spam",
    "7": "recipient phone is unreachable",
    "8": "the carrier could not deliver the message",
    "9": "unknown or inactive phone number",
    "10": "the carrier rejected the message",
    "11": "the carrier could not deliver the message",
    "12": "recipient phone is unreachable",
    "14": "recipient's carrier blocked the message",
}


def signature_valid(secret: str, method: str, params: dict[str, str]) -> bool:
    given = params.get("sig", "")
    if method not in METHODS or not given:
        return False
    data = as_bytes(
        "".join(
            f"&{name}={value.replace('&', '_').replace('=', '_')}"
            for name, value in sorted(params.items())
            if name != "sig"
        )
    )
    key = as_bytes(secret)
    if method == "md5hash":
        expected = hashlib.md5(data + key).hexdigest()
    else:
        expected = hmac.new(key, data, method).hexdigest()
    return hmac.compare_digest(expected.lower().encode(), as_bytes(given.lower()))


def delivery_receipt(params: dict[str, str]) -> ProviderReceipt | None:
    """A DLR; None for interim statuses (accepted, buffered) or no client-ref."""
    status = params.get("status", "")
    if status == "delivered":
        moved, reason = ReceiptStatus.DELIVERED, ""
    elif status in ("failed", "rejected", "expired"):
        moved = ReceiptStatus.FAILED
        reason = _ERRORS.get(
            params.get("err-code", ""), "the carrier could not deliver the message"
        )
    else:
        return None
    delivery_id = params.get("client-ref", "")
    if not delivery_id:
        return None
    return ProviderReceipt(delivery_id, moved, reason, "sms", params.get("messageId", ""))


class VonageWebhooks:
    def __init__(self, *, signature_secret: str, signature_method: str) -> None:
        self._secret = signature_secret
        self._method = signature_method

    def parse(self, request: WebhookRequest, *, now: datetime) -> SignedWebhook:
        params = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        if not signature_valid(self._secret, self._method, params):
            raise bad_signature()
        receipt = delivery_receipt(params)
        receipts = [receipt] if receipt else []
        timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
        stale = timestamp_age_error(timestamp, now, field="timestamp", window=FRESHNESS)
        if stale is None and not nonce:
            stale = ReceiptRefused("RECEIPT_REPLAYED", "nonce is missing")
        if stale:
            raise ReceiptRefused(stale.reason, stale.message, receipts)
        expires = datetime.fromtimestamp(int(timestamp), UTC) + FRESHNESS
        return SignedWebhook(receipts, token=OneUseToken(nonce, expires))

    def verify_subscription(self, *, mode: str, verify_token: str, challenge: str) -> str | None:
        return None
