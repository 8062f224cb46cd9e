"""SMS and voice over Twilio's REST API (2010-04-01).

Our own HTTP client rather than the twilio package: its client cannot be
pointed at another base URL cleanly, and the sandbox must be a configuration
change away.

Twilio does not de-duplicate creates (`I-Twilio-Idempotency-Token` is a
header of the webhooks Twilio sends, not of its REST API), so a create is
sent once per attempt, and an attempt whose answer was lost is reconciled
through the list APIs (`look_up`) before anything is sent again."""

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from xml.sax.saxutils import escape

from providers.base import (
    AfterUnknownOutcome,
    OutboundMessage,
    ProviderAccepted,
    ProviderError,
)
from providers.http import (
    HttpClient,
    HttpResponse,
    HttpUnreachable,
    RequestHook,
    response_error,
    unreachable_error,
)
from providers.twilio.webhooks import status_callback_url

# Twilio error codes that no retry can fix, in tenant words.
_PERMANENT = {
    21211: "invalid phone number",
    21214: "invalid phone number",
    21217: "invalid phone number",
    21408: "sending to this region is not enabled",
    21610: "recipient unsubscribed",
    21612: "this number cannot receive messages from the platform",
    21614: "phone number cannot receive SMS",
    21617: "message body is too long",
    20003: "provider rejected the platform's credentials",
    20404: "provider account not found",
}


class TwilioClient:
    """Creates Twilio resources (Messages, Calls) with one pooled HTTP client."""

    def __init__(
        self,
        *,
        api_base: str,
        account_sid: str,
        auth_token: str,
        timeout: float = 15.0,
        request_hooks: list[RequestHook] | None = None,
    ) -> None:
        self._origin = api_base.rstrip("/")
        self._base = f"{self._origin}/2010-04-01/Accounts/{account_sid}"
        self._client = HttpClient(
            timeout=timeout, basic_auth=(account_sid, auth_token), request_hooks=request_hooks
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def create(self, resource: str, form: dict[str, str | list[str]]) -> str:
        """POSTs a form to `{resource}.json` (list values repeat the field);
        returns the new resource's sid."""
        try:
            response = await self._client.post(f"{self._base}/{resource}.json", form=form)
        except HttpUnreachable as exc:
            raise unreachable_error("Twilio", exc) from exc
        if response.status_code in (200, 201):
            return str(response.json()["sid"])
        raise twilio_error(response)

    async def created_since(
        self, resource: str, filters: dict[str, str], since: datetime
    ) -> list[dict[str, Any]]:
        """Resources of `resource` ("Messages", "Calls") matching the list
        filters and created at or after `since`, oldest first.

        Twilio lists newest first, so paging stops at the first older one.
        No DateSent/StartTime filter: those stay empty until the message is
        sent or the call starts, and a queued one must be found too."""
        key = resource.lower()
        url: str | None = f"{self._base}/{resource}.json"
        params: dict[str, str] | None = {**filters, "PageSize": "100"}
        found: list[dict[str, Any]] = []
        for _ in range(_MAX_LOOK_UP_PAGES):
            if url is None:
                break
            try:
                response = await self._client.get(url, params=params)
            except HttpUnreachable as exc:
                # A read: nothing can have been sent, so the outcome is known.
                raise ProviderError(
                    "Twilio unreachable", permanent=False, detail=repr(exc)
                ) from exc
            if response.status_code != 200:
                raise twilio_error(response)
            page = response.json()
            for item in page.get(key) or []:
                created = _twilio_time(item.get("date_created"))
                if created is not None and created < since:
                    return found[::-1]
                found.append(item)
            # A path on the API host, with the query for the next page.
            next_uri = page.get("next_page_uri")
            url = f"{self._origin}{next_uri}" if next_uri else None
            params = None
        return found[::-1]


# A look-up reads at most this many pages of 100, newest first.
_MAX_LOOK_UP_PAGES = 10
# Twilio's clock and ours may differ by this much.
_CLOCK_SKEW = timedelta(seconds=30)


def _twilio_time(value: object) -> datetime | None:
    """Twilio's RFC 2822 timestamps ("Mon, 16 Aug 2010 03:45:01 +0000")."""
    try:
        return parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        return None


class TwilioSmsProvider:
    # Twilio's Messages list can be filtered by To and From (see look_up).
    after_unknown_outcome = AfterUnknownOutcome.LOOK_UP

    def __init__(self, client: TwilioClient, from_number: str, *, callback_base: str = "") -> None:
        self._client = client
        self._from = from_number
        # Where Twilio posts this message's status callbacks; none when empty.
        self._callback_base = callback_base

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        form: dict[str, str | list[str]] = {
            "To": message.address,
            "From": self._from,
            "Body": message.body,
        }
        if self._callback_base:
            form["StatusCallback"] = status_callback_url(self._callback_base, message.delivery_id)
        sid = await self._client.create("Messages", form)
        return ProviderAccepted(provider_message_id=sid)

    async def look_up(self, message: OutboundMessage, *, since: datetime) -> list[ProviderAccepted]:
        """Messages to this number from ours with this body, since the attempt.
        (The Message resource does not show its StatusCallback, so the body
        is what tells our message apart.)"""
        found = await self._client.created_since(
            "Messages", {"To": message.address, "From": self._from}, since - _CLOCK_SKEW
        )
        return [ProviderAccepted(str(m["sid"])) for m in found if m.get("body") == message.body]


class TwilioVoiceProvider:
    """Places a call that speaks the body with TwiML <Say>."""

    # Twilio's Calls list can be filtered by To and From (see look_up).
    after_unknown_outcome = AfterUnknownOutcome.LOOK_UP

    def __init__(self, client: TwilioClient, from_number: str, *, callback_base: str = "") -> None:
        self._client = client
        self._from = from_number
        # Where Twilio posts this message's status callbacks; none when empty.
        self._callback_base = callback_base

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        twiml = f"<Response><Say>{escape(message.body)}</Say></Response>"
        form: dict[str, str | list[str]] = {
            "To": message.address,
            "From": self._from,
            "Twiml": twiml,
        }
        if self._callback_base:
            form["StatusCallback"] = status_callback_url(self._callback_base, message.delivery_id)
            # Twilio sends only `completed` unless asked for the other events.
            form["StatusCallbackEvent"] = ["initiated", "ringing", "answered", "completed"]
        sid = await self._client.create("Calls", form)
        return ProviderAccepted(provider_message_id=sid)

    async def look_up(self, message: OutboundMessage, *, since: datetime) -> list[ProviderAccepted]:
        """Calls to this number from ours since the attempt. The Call resource
        carries no TwiML, so calls to one number within the window all match;
        the caller skips those already recorded for other deliveries."""
        found = await self._client.created_since(
            "Calls", {"To": message.address, "From": self._from}, since - _CLOCK_SKEW
        )
        return [ProviderAccepted(str(c["sid"])) for c in found]


def twilio_error(response: HttpResponse) -> ProviderError:
    """Classifies a Twilio error response by its `code`."""
    try:
        code = int(response.json().get("code") or 0)
    except (ValueError, AttributeError):
        code = 0
    return response_error("Twilio", response, code=code, permanent=_PERMANENT)
