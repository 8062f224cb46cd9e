"""Slack over the Web API: conversations.open to the user's DM, then
chat.postMessage. A successful post is final: Slack sends no receipts."""

from typing import Any

from workflows.providers.base import OutboundMessage, ProviderAccepted, ProviderError
from workflows.providers.http import HttpClient, HttpUnreachable

# Slack `error` values that no retry can fix, in tenant words.
_PERMANENT = {
    "user_not_found": "Slack user not found",
    "channel_not_found": "Slack user not found",
    "user_disabled": "Slack user is deactivated",
    "cannot_dm_bot": "Slack user is a bot and cannot receive direct messages",
    "invalid_auth": "Slack rejected the platform's credentials",
    "not_authed": "Slack rejected the platform's credentials",
    "account_inactive": "Slack rejected the platform's credentials",
    "token_revoked": "Slack rejected the platform's credentials",
    "missing_scope": "the platform's Slack app lacks a required permission",
    "msg_too_long": "message is too long for Slack",
    "no_text": "message is empty",
}


class SlackProvider:
    def __init__(self, *, api_base: str, bot_token: str, timeout: float = 15.0) -> None:
        self._base = api_base.rstrip("/")
        self._client = HttpClient(timeout=timeout, headers={"Authorization": f"Bearer {bot_token}"})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        opened = await self._call("conversations.open", {"users": message.address})
        channel = str(opened["channel"]["id"])
        posted = await self._call("chat.postMessage", {"channel": channel, "text": message.body})
        return ProviderAccepted(provider_message_id=f"{channel}:{posted['ts']}", delivered=True)

    async def _call(self, method: str, payload: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._client.post(f"{self._base}/api/{method}", json_body=payload)
        except HttpUnreachable as exc:
            raise ProviderError("Slack unreachable", permanent=False, detail=repr(exc)) from exc
        detail = f"{method}: HTTP {response.status_code}: {response.text[:300]}"
        if response.status_code == 429:
            raise ProviderError(
                "Slack rate limit",
                permanent=False,
                detail=detail,
                retry_after=response.retry_after_seconds(),
            )
        if response.status_code >= 500:
            raise ProviderError("Slack unavailable", permanent=False, detail=detail)
        try:
            body = response.json()
        except ValueError:
            raise ProviderError("Slack unavailable", permanent=False, detail=detail) from None
        if body.get("ok") is True:
            return dict(body)
        error = str(body.get("error", ""))
        if error in ("ratelimited", "internal_error", "fatal_error", "service_unavailable"):
            raise ProviderError("Slack unavailable", permanent=False, detail=detail)
        raise ProviderError(
            _PERMANENT.get(error, "Slack rejected the message"), permanent=True, detail=detail
        )
