"""WhatsApp over Meta's Cloud API: approved templates with positional parameters."""

from datetime import datetime
from typing import Any

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

# Meta error codes, in tenant words. Codes not listed and not transient are permanent.
_REASONS = {
    131026: "recipient cannot receive WhatsApp messages",
    131050: "recipient opted out of WhatsApp messages from this business",
    132000: "template parameters do not match the approved template",
    132001: "WhatsApp template is not approved or does not exist",
    132015: "WhatsApp template is paused",
    132016: "WhatsApp template is disabled",
    131009: "invalid WhatsApp recipient or parameters",
    100: "invalid WhatsApp recipient or parameters",
    190: "WhatsApp rejected the platform's credentials",
    10: "WhatsApp rejected the platform's credentials",
}
# Throttling (API Too Many Calls, rate limit issues, rate limit hit, spam rate
# limit hit, pair rate limit hit) and temporary errors (API Unknown, API
# Service, something went wrong, service unavailable), which Meta says to
# retry with backoff.
_THROTTLED = {4, 80007, 130429, 131048, 131056}
_TRANSIENT = {1, 2, 131000, 131016}


class WhatsAppCloudProvider:
    # The Cloud API has no look-up of a sent message: its status comes only by
    # webhook, and a webhook that names the delivery records the message id
    # (receipts). With neither, a resend could deliver a second template
    # message, which the business pays for and the user sees twice: fail.
    after_unknown_outcome = AfterUnknownOutcome.FAIL

    def __init__(
        self,
        *,
        api_base: str,
        api_version: str,
        phone_number_id: str,
        business_account_id: str,
        access_token: str,
        timeout: float = 15.0,
        request_hooks: list[RequestHook] | None = None,
    ) -> None:
        graph = f"{api_base.rstrip('/')}/{api_version}"
        self._url = f"{graph}/{phone_number_id}/messages"
        self._templates_url = f"{graph}/{business_account_id}/message_templates"
        self._client = HttpClient(
            timeout=timeout,
            headers={"Authorization": f"Bearer {access_token}"},
            request_hooks=request_hooks,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        template = message.template
        if template is None:
            raise ProviderError("WhatsApp needs an approved template", permanent=True)
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.address,
            "type": "template",
            "template": {
                "name": template.name,
                "language": {"code": template.language, "policy": "deterministic"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": p} for p in template.parameters],
                    }
                ],
            },
            # Echoed back in every status webhook, so receipts find the delivery.
            "biz_opaque_callback_data": message.delivery_id,
        }
        response = await self._post(self._url, payload)
        return ProviderAccepted(provider_message_id=str(response.json()["messages"][0]["id"]))

    async def look_up(self, message: OutboundMessage, *, since: datetime) -> list[ProviderAccepted]:
        return []

    async def submit_template(
        self, *, name: str, language: str, body: str, examples: list[str]
    ) -> str:
        """Submits template text for Meta's review; returns Meta's template id."""
        component: dict[str, Any] = {"type": "BODY", "text": body}
        if examples:
            component["example"] = {"body_text": [examples]}
        payload = {
            "name": name,
            "language": language,
            "category": "UTILITY",
            "components": [component],
        }
        response = await self._post(self._templates_url, payload)
        return str(response.json()["id"])

    async def _post(self, url: str, payload: dict[str, Any]) -> HttpResponse:
        try:
            response = await self._client.post(url, json_body=payload)
        except HttpUnreachable as exc:
            raise unreachable_error("WhatsApp", exc) from exc
        if response.status_code == 200:
            return response
        try:
            code = int(response.json().get("error", {}).get("code") or 0)
        except (ValueError, AttributeError, TypeError):
            code = 0
        raise response_error(
            "WhatsApp",
            response,
            code=code,
            permanent=_REASONS,
            throttled=_THROTTLED,
            transient=_TRANSIENT,
        )
