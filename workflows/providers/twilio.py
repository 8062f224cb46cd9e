"""SMS and voice over Twilio's REST API (2010-04-01).

Our own HTTP client rather than the twilio package: its client cannot be
pointed at another base URL cleanly, and the sandbox must be a configuration
change away."""

from xml.sax.saxutils import escape

from workflows.providers.base import OutboundMessage, ProviderAccepted, ProviderError
from workflows.providers.http import HttpClient, HttpResponse, HttpUnreachable, RequestHook

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
        self._base = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}"
        self._client = HttpClient(
            timeout=timeout, basic_auth=(account_sid, auth_token), request_hooks=request_hooks
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def create(
        self, resource: str, form: dict[str, str | list[str]], idempotency_key: str
    ) -> str:
        """POSTs a form to `{resource}.json` (list values repeat the field);
        returns the new resource's sid."""
        try:
            response = await self._client.post(
                f"{self._base}/{resource}.json",
                form=form,
                headers={"I-Twilio-Idempotency-Token": idempotency_key},
            )
        except HttpUnreachable as exc:
            raise ProviderError("provider unreachable", permanent=False, detail=repr(exc)) from exc
        if response.status_code in (200, 201):
            return str(response.json()["sid"])
        raise twilio_error(response)


class TwilioSmsProvider:
    def __init__(self, client: TwilioClient, from_number: str) -> None:
        self._client = client
        self._from = from_number

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        form: dict[str, str | list[str]] = {
            "To": message.address,
            "From": self._from,
            "Body": message.body,
        }
        if message.status_callback_url:
            form["StatusCallback"] = message.status_callback_url
        sid = await self._client.create("Messages", form, message.idempotency_key)
        return ProviderAccepted(provider_message_id=sid)


class TwilioVoiceProvider:
    """Places a call that speaks the body with TwiML <Say>."""

    def __init__(self, client: TwilioClient, from_number: str) -> None:
        self._client = client
        self._from = from_number

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        twiml = f"<Response><Say>{escape(message.body)}</Say></Response>"
        form: dict[str, str | list[str]] = {
            "To": message.address,
            "From": self._from,
            "Twiml": twiml,
        }
        if message.status_callback_url:
            form["StatusCallback"] = message.status_callback_url
            # Twilio sends only `completed` unless asked for the other events.
            form["StatusCallbackEvent"] = ["initiated", "ringing", "answered", "completed"]
        sid = await self._client.create("Calls", form, message.idempotency_key)
        return ProviderAccepted(provider_message_id=sid)


def twilio_error(response: HttpResponse) -> ProviderError:
    """Classifies a Twilio error response."""
    try:
        code = int(response.json().get("code") or 0)
    except ValueError:
        code = 0
    detail = f"HTTP {response.status_code}: {response.text[:500]}"
    if response.status_code == 429:
        return ProviderError(
            "provider rate limit",
            permanent=False,
            detail=detail,
            retry_after=response.retry_after_seconds(),
        )
    if response.status_code >= 500:
        return ProviderError("provider unavailable", permanent=False, detail=detail)
    return ProviderError(
        _PERMANENT.get(code, "provider rejected the message"), permanent=True, detail=detail
    )
