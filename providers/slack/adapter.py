"""Slack over the Web API: conversations.open to the user's DM, then
chat.postMessage. A successful post is final: Slack sends no receipts.

Each post carries the delivery id as message metadata, so that an attempt
whose answer was lost can be found again in the DM's history
(conversations.history, which needs the bot's im:history scope)."""

from datetime import datetime
from typing import Any

from providers.base import (
    AfterUnknownOutcome,
    OutboundMessage,
    ProviderAccepted,
)
from providers.http import (
    HttpClient,
    HttpUnreachable,
    response_error,
    unavailable_error,
    unreachable_error,
)

_METADATA_EVENT = "clarion_delivery"

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
# `error` values worth a retry (https://api.slack.com/web#responses).
_THROTTLED = {"ratelimited"}
_TRANSIENT = {"internal_error", "fatal_error", "service_unavailable"}


class SlackProvider:
    after_unknown_outcome = AfterUnknownOutcome.LOOK_UP

    def __init__(self, *, api_base: str, bot_token: str, timeout: float = 15.0) -> None:
        self._base = api_base.rstrip("/")
        self._client = HttpClient(timeout=timeout, headers={"Authorization": f"Bearer {bot_token}"})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        channel = await self._dm_channel(message.address)
        posted = await self._call(
            "chat.postMessage",
            {
                "channel": channel,
                "text": message.body,
                "metadata": {
                    "event_type": _METADATA_EVENT,
                    "event_payload": {"delivery_id": message.delivery_id},
                },
            },
        )
        return ProviderAccepted(provider_message_id=f"{channel}:{posted['ts']}", delivered=True)

    async def look_up(self, message: OutboundMessage, *, since: datetime) -> list[ProviderAccepted]:
        """Posts in the user's DM since the attempt that carry this delivery's id."""
        channel = await self._dm_channel(message.address)
        history = await self._call(
            "conversations.history",
            form={
                "channel": channel,
                # Slack timestamps are epoch seconds; a minute's margin for clocks.
                "oldest": f"{since.timestamp() - 60:.6f}",
                "include_all_metadata": "true",
                "limit": "200",
            },
        )
        found: list[ProviderAccepted] = []
        for post in history.get("messages") or []:
            metadata = post.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if (
                metadata.get("event_type") == _METADATA_EVENT
                and payload.get("delivery_id") == message.delivery_id
            ):
                found.append(ProviderAccepted(f"{channel}:{post['ts']}", delivered=True))
        # Slack answers newest first.
        return found[::-1]

    async def _dm_channel(self, user: str) -> str:
        opened = await self._call("conversations.open", {"users": user})
        return str(opened["channel"]["id"])

    async def _call(
        self,
        method: str,
        payload: dict[str, Any] | None = None,
        *,
        form: dict[str, str | list[str]] | None = None,
    ) -> dict[str, Any]:
        """A Web API call with a JSON body, or a form for the read methods,
        which Slack documents as taking form-encoded arguments."""
        try:
            response = await self._client.post(
                f"{self._base}/api/{method}", json_body=payload, form=form
            )
        except HttpUnreachable as exc:
            raise unreachable_error("Slack", exc) from exc
        detail = f"{method}: HTTP {response.status_code}: {response.text[:300]}"
        if response.status_code == 429 or response.status_code >= 500:
            raise response_error("Slack", response, detail=detail)
        try:
            body = response.json()
        except ValueError:
            raise unavailable_error("Slack", response, detail) from None
        if body.get("ok") is True:
            return dict(body)
        raise response_error(
            "Slack",
            response,
            code=str(body.get("error", "")),
            permanent=_PERMANENT,
            throttled=_THROTTLED,
            transient=_TRANSIENT,
            detail=detail,
        )
