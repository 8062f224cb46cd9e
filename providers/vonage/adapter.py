"""SMS over Vonage's SMS API (`POST /sms/json`), a second SMS provider.

https://developer.vonage.com/en/api/sms: the answer is HTTP 200 even for a
refusal; each `messages[]` entry has a `status`, "0" for accepted, and its
`message-id`. Statuses 1 (Throttled) and 5 (Internal Error) are worth a retry
(https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms);
the rest are the request's or the recipient's fault.

The SMS API cannot be asked whether it has a message, so an attempt whose
answer was lost is not sent again (at most once, as for WhatsApp)."""

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from providers.base import (
    AfterUnknownOutcome,
    OutboundMessage,
    ProviderAccepted,
)
from providers.http import (
    HttpClient,
    HttpUnreachable,
    RequestHook,
    response_error,
    unreachable_error,
)

# Throttled, and Internal Error: worth a retry.
_THROTTLED = {"1"}
_TRANSIENT = {"5"}
# Statuses no retry can fix, in tenant words.
_PERMANENT = {
    "2": "provider rejected the message",
    "3": "invalid phone number",
    "4": "provider rejected the platform's credentials",
    "6": "phone number cannot receive SMS",
    "7": "recipient unsubscribed",
    "8": "provider account is barred",
    "9": "provider account is out of credit",
    "12": "message body is too long",
    "15": "sender number is not allowed",
    "22": "phone number cannot receive SMS",
    "29": "sending to this number is not enabled",
    "33": "phone number cannot receive SMS",
}
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\f"
)


class VonageSmsProvider:
    after_unknown_outcome = AfterUnknownOutcome.FAIL
    name = "vonage"

    def __init__(
        self,
        *,
        api_base: str,
        api_key: str,
        api_secret: str,
        from_number: str,
        callback_base: str,
        timeout: float = 15.0,
        request_hooks: list[RequestHook] | None = None,
    ) -> None:
        self._url = api_base.rstrip("/") + "/sms/json"
        self._key = api_key
        self._secret = api_secret
        self._from = from_number.lstrip("+")
        self._callback_base = callback_base.rstrip("/")
        self._client = HttpClient(timeout=timeout, request_hooks=request_hooks)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        form: dict[str, str | list[str]] = {
            "api_key": self._key,
            "api_secret": self._secret,
            "from": self._from,
            # E.164 without the leading +.
            "to": message.address.lstrip("+"),
            "text": message.body,
            # The delivery receipt comes to our Vonage route, naming the delivery.
            "callback": f"{self._callback_base}/callbacks/vonage?"
            + urlencode({"delivery_id": message.delivery_id}),
            "client-ref": message.delivery_id,
        }
        if not set(message.body) <= _GSM:
            form["type"] = "unicode"
        try:
            response = await self._client.post(self._url, form=form)
        except HttpUnreachable as exc:
            raise unreachable_error("Vonage", exc) from exc
        if response.status_code != 200:
            raise response_error("Vonage", response)
        try:
            entry: Any = (response.json().get("messages") or [{}])[0]
        except (ValueError, AttributeError, IndexError, TypeError):
            entry = None
        # No readable status in a 200: classified as a refusal, as before.
        status = str(entry.get("status", "")) if isinstance(entry, dict) else None
        if status == "0" and isinstance(entry, dict) and entry.get("message-id"):
            return ProviderAccepted(provider_message_id=str(entry["message-id"]))
        raise response_error(
            "Vonage",
            response,
            code=status,
            permanent=_PERMANENT,
            throttled=_THROTTLED,
            transient=_TRANSIENT,
        )

    async def look_up(self, message: OutboundMessage, *, since: datetime) -> list[ProviderAccepted]:
        return []
