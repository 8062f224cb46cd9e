"""SMS over Twilio's Programmable Messaging REST API.

httpx rather than the twilio package: its client cannot be pointed at another
base URL cleanly, and the sandbox must be a configuration change away."""

import httpx

from workflows.providers.base import OutboundMessage, ProviderAccepted, ProviderError

# Twilio error codes that no retry can fix, in tenant words.
_PERMANENT = {
    21211: "invalid phone number",
    21214: "invalid phone number",
    21408: "sending to this region is not enabled",
    21610: "recipient unsubscribed",
    21612: "this number cannot receive messages from the platform",
    21614: "phone number cannot receive SMS",
    21617: "message body is too long",
    20003: "SMS provider rejected the platform's credentials",
    20404: "SMS provider account not found",
}


class TwilioSmsProvider:
    def __init__(
        self,
        *,
        api_base: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        timeout: float = 15.0,
    ) -> None:
        self._url = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = (account_sid, auth_token)
        self._from = from_number
        # One pooled client for the worker's lifetime.
        self._client = httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        form = {"To": message.address, "From": self._from, "Body": message.body}
        if message.status_callback_url:
            form["StatusCallback"] = message.status_callback_url
        try:
            response = await self._client.post(
                self._url,
                data=form,
                auth=self._auth,
                headers={"I-Twilio-Idempotency-Token": message.idempotency_key},
            )
        except httpx.HTTPError as exc:
            raise ProviderError(
                "SMS provider unreachable", permanent=False, detail=repr(exc)
            ) from exc
        if response.status_code in (200, 201):
            return ProviderAccepted(provider_message_id=str(response.json()["sid"]))
        raise twilio_error(response)


def twilio_error(response: httpx.Response) -> ProviderError:
    """Classifies a Twilio error response (shared by the SMS and voice adapters)."""
    try:
        code = int(response.json().get("code") or 0)
    except ValueError:
        code = 0
    detail = f"HTTP {response.status_code}: {response.text[:500]}"
    if response.status_code == 429:
        retry_after = response.headers.get("Retry-After", "")
        return ProviderError(
            "provider rate limit",
            permanent=False,
            detail=detail,
            retry_after=float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None,
        )
    if response.status_code >= 500:
        return ProviderError("provider unavailable", permanent=False, detail=detail)
    return ProviderError(
        _PERMANENT.get(code, "provider rejected the message"), permanent=True, detail=detail
    )
