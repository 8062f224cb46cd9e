"""Email over SendGrid's v3 Mail Send API, a second email provider.

https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send:
`POST /v3/mail/send` with a bearer API key; 202 Accepted with an empty body
and the message's id in `X-Message-Id`; 429 and 5xx are worth a retry, other
4xx are the request's fault. The delivery id rides in `custom_args`, which
SendGrid copies onto every Event Webhook event.

SendGrid cannot be asked whether it has a message without the paid Email
Activity API, so an attempt whose answer was lost is not sent again."""

from datetime import datetime

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

# SendGrid answers refusals by HTTP status; those no retry can fix, in tenant words.
_PERMANENT = {
    401: "provider rejected the platform's credentials",
    403: "provider rejected the platform's credentials",
}


class SendGridEmailProvider:
    after_unknown_outcome = AfterUnknownOutcome.FAIL
    name = "sendgrid"

    def __init__(
        self,
        *,
        api_base: str,
        api_key: str,
        sender: str,
        timeout: float = 15.0,
        request_hooks: list[RequestHook] | None = None,
    ) -> None:
        self._url = api_base.rstrip("/") + "/v3/mail/send"
        self._sender = sender
        self._client = HttpClient(
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}"},
            request_hooks=request_hooks,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        content = [{"type": "text/plain", "value": message.body or " "}]
        if message.html_body:
            content.append({"type": "text/html", "value": message.html_body})
        body = {
            "personalizations": [
                {
                    "to": [{"email": message.address}],
                    "custom_args": {"delivery_id": message.delivery_id},
                }
            ],
            "from": {"email": self._sender},
            "subject": message.subject or " ",
            "content": content,
        }
        try:
            response = await self._client.post(self._url, json_body=body)
        except HttpUnreachable as exc:
            raise unreachable_error("SendGrid", exc) from exc
        if response.status_code == 202 and response.headers.get("X-Message-Id"):
            return ProviderAccepted(provider_message_id=str(response.headers["X-Message-Id"]))
        raise response_error("SendGrid", response, code=response.status_code, permanent=_PERMANENT)

    async def look_up(self, message: OutboundMessage, *, since: datetime) -> list[ProviderAccepted]:
        return []
