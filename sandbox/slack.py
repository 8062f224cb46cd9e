"""Slack Web API: conversations.open, chat.postMessage and conversations.history."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from .context import Context
from .hang import never_answer
from .triggers import Kind, slack_trigger

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
BOT_USER = "U0SANDBOXBOT"
BOT_ID = "B0SANDBOXBOT"
# https://docs.slack.dev/reference/methods/conversations.history: limit
# "Default 100 ... Maximum of 999".
HISTORY_LIMIT, HISTORY_MAX = 100, 999


class SlackApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._dm_users: dict[str, str] = {}  # DM channel id -> user id
        self._posted: dict[str, dict[str, Any]] = {}  # ts -> message as history shows it
        self._last_ts = Decimal(0)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/conversations.open", self.conversations_open),
            web.post("/api/chat.postMessage", self.post_message),
            web.get("/api/conversations.history", self.history),
            web.post("/api/conversations.history", self.history),
        ]

    async def _args(self, request: web.Request) -> dict[str, Any]:
        # Slack takes JSON or form-encoded arguments (and query string args).
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            if isinstance(body, dict):
                args.update(body)
        else:
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
        return args

    def _auth_error(self, request: web.Request, args: dict[str, Any]) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else str(args.get("token", ""))
        if not token:
            return "not_authed"
        if not hmac.compare_digest(token.encode(), self.ctx.config.slack_bot_token.encode()):
            return "invalid_auth"
        return None

    def _fail(
        self,
        operation: str,
        to: str | None,
        error: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        outcome: str | None = None,
    ) -> web.Response:
        # Slack reports most errors as HTTP 200 with ok=false.
        body = {"ok": False, "error": error}
        outcome = outcome or ("transient" if status in (429, 500) else "rejected")
        self.ctx.store.log_request(
            channel="slack",
            operation=operation,
            to=to,
            outcome=outcome,
            status_code=status,
            error=body,
        )
        return web.json_response(body, status=status, headers=headers)

    @staticmethod
    def dm_channel(user: str) -> str:
        # Stable per user, like Slack's real DM channel ids.
        return "D" + hashlib.sha1(user.encode()).hexdigest()[:10].upper()

    async def conversations_open(self, request: web.Request) -> web.Response:
        op = "conversations.open"
        args = await self._args(request)
        raw_users = args.get("users", "")
        users = raw_users if isinstance(raw_users, list) else str(raw_users).split(",")
        users = [str(u).strip() for u in users if str(u).strip()]
        to = ",".join(users) or None
        if (error := self._auth_error(request, args)) is not None:
            return self._fail(op, to, error)
        if args.get("channel"):
            channel = str(args["channel"])
            if channel not in self._dm_users:
                return self._fail(op, to, "channel_not_found")
            return self._ok(op, channel, {"ok": True, "channel": {"id": channel}})
        if not users:
            return self._fail(op, to, "users_list_not_supplied")
        if len(users) > 1:
            # Multi-person DMs exist in Slack but the sandbox keeps to 1:1 DMs.
            return self._fail(op, to, "not_supported")
        user = users[0]
        if not _USER_ID.match(user) or slack_trigger(user).kind is Kind.INVALID:
            return self._fail(op, to, "user_not_found")
        channel = self.dm_channel(user)
        already = channel in self._dm_users
        self._dm_users[channel] = user
        body: dict[str, Any] = {"ok": True, "channel": {"id": channel}}
        if already:
            body["no_op"] = True
            body["already_open"] = True
        return self._ok(op, user, body)

    def _ok(self, operation: str, to: str | None, body: dict[str, Any]) -> web.Response:
        self.ctx.store.log_request(
            channel="slack", operation=operation, to=to, outcome="accepted", status_code=200
        )
        return web.json_response(body)

    async def post_message(self, request: web.Request) -> web.StreamResponse:
        op = "chat.postMessage"
        args = await self._args(request)
        channel = str(args.get("channel", "")).strip()
        if (error := self._auth_error(request, args)) is not None:
            return self._fail(op, channel or None, error)
        if not channel:
            return self._fail(op, None, "channel_not_found")
        # Posting to a user id opens (or reuses) the DM with that user.
        user: str | None = None
        if _USER_ID.match(channel):
            user = channel
            if slack_trigger(user).kind is Kind.INVALID:
                return self._fail(op, user, "channel_not_found")
            channel = self.dm_channel(user)
            self._dm_users[channel] = user
        elif channel in self._dm_users:
            user = self._dm_users[channel]
        elif not _CHANNEL_ID.match(channel) or channel.startswith("D") or "NOTFOUND" in channel:
            return self._fail(op, channel, "channel_not_found")
        to = user or channel

        text = args.get("text")
        text = text if isinstance(text, str) else ""
        blocks = _json_arg(args.get("blocks"))
        attachments = _json_arg(args.get("attachments"))
        if blocks is _INVALID:
            return self._fail(op, to, "invalid_blocks")
        if attachments is _INVALID:
            return self._fail(op, to, "invalid_attachments")
        if not text and not blocks and not attachments:
            return self._fail(op, to, "no_text")
        if len(text) > 40000:
            return self._fail(op, to, "msg_too_long")
        metadata = _metadata_arg(args.get("metadata"))
        if isinstance(metadata, str):
            return self._fail(op, to, metadata)

        trigger = slack_trigger(user or "")
        key = ("slack", to, text)
        if trigger.kind is Kind.RATE_LIMIT and self.ctx.counter.should_fail(key, trigger.count):
            return self._fail(op, to, "ratelimited", 429, {"Retry-After": "1"})
        if trigger.kind is Kind.SERVER_ERROR and self.ctx.counter.should_fail(key, trigger.count):
            return self._fail(op, to, "internal_error", 500)

        ts = self._next_ts()
        message: dict[str, Any] = {
            "user": BOT_USER,
            "type": "message",
            "ts": ts,
            "bot_id": BOT_ID,
            "app_id": "A0SANDBOX",
            "text": text,
            "team": "T0SANDBOX",
        }
        if blocks:
            message["blocks"] = blocks
        if attachments:
            message["attachments"] = attachments
        if metadata:
            message["metadata"] = metadata
        self._posted[ts] = message
        record = self.ctx.store.add_message(
            channel="slack",
            to=to,
            from_=BOT_USER,
            body=text,
            provider_message_id=ts,
            request={k: v for k, v in args.items() if k != "token"},
            status="sent",
        )
        record.request["resolved_channel"] = channel
        self.ctx.store.log_request(
            channel="slack",
            operation=op,
            to=to,
            outcome="accepted",
            status_code=200,
            message_id=record.id,
        )
        if trigger.kind is Kind.HANG:
            # Posted (conversations.history shows it), but the client never hears.
            return await never_answer(self.ctx.stopping, request)
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    def _next_ts(self) -> str:
        # A real clock reading with microseconds, unique and rising like Slack's,
        # so `oldest`/`latest` (Unix times) select by when a message was posted.
        ts = max(Decimal(f"{time.time():.6f}"), self._last_ts + Decimal("0.000001"))
        self._last_ts = ts
        return f"{ts:.6f}"

    async def history(self, request: web.Request) -> web.Response:
        """conversations.history: the channel's messages, newest first.

        https://docs.slack.dev/reference/methods/conversations.history:
        oldest "Only messages after this Unix timestamp will be included";
        latest "Only messages before this Unix timestamp ... Default is the
        current time"; inclusive "Include messages with oldest or latest
        timestamps in results"; include_all_metadata "Return all metadata
        associated with this message"; cursor-paginated via
        response_metadata.next_cursor. A user id is not a conversation here
        (unlike chat.postMessage): open the DM first.
        """
        op = "conversations.history"
        args = await self._args(request)
        channel = str(args.get("channel", "")).strip()
        to = self._dm_users.get(channel, channel) or None
        if (error := self._auth_error(request, args)) is not None:
            return self._fail(op, to, error, outcome="read")
        known = channel in self._dm_users or (
            _CHANNEL_ID.match(channel) and not channel.startswith("D") and "NOTFOUND" not in channel
        )
        if not known:
            return self._fail(op, to, "channel_not_found", outcome="read")
        try:
            oldest = _ts_arg(args.get("oldest"), Decimal(0), "invalid_ts_oldest")
            latest = _ts_arg(args.get("latest"), Decimal(f"{time.time():.6f}"), "invalid_ts_latest")
            limit = int(args.get("limit") or HISTORY_LIMIT)
            before = _cursor_arg(args.get("cursor"))
        except (ValueError, TypeError) as exc:
            error = str(exc) if str(exc).startswith("invalid_") else "invalid_arguments"
            return self._fail(op, to, error, outcome="read")
        limit = min(max(limit, 1), HISTORY_MAX)
        inclusive = _flag(args.get("inclusive"))
        with_metadata = _flag(args.get("include_all_metadata"))

        def in_range(ts: Decimal) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        found = [
            self._posted[m.provider_message_id]
            for m in reversed(self.ctx.store.messages)
            if m.channel == "slack"
            and m.request.get("resolved_channel") == channel
            and m.provider_message_id in self._posted
            and in_range(Decimal(m.provider_message_id))
            and (before is None or Decimal(m.provider_message_id) <= before)
        ]
        found.sort(key=lambda m: Decimal(m["ts"]), reverse=True)
        page, rest = found[:limit], found[limit:]
        messages = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in page
        ]
        next_cursor = base64.b64encode(f"next_ts:{rest[0]['ts']}".encode()).decode() if rest else ""
        self.ctx.store.log_request(
            channel="slack", operation=op, to=to, outcome="read", status_code=200
        )
        return web.json_response(
            {
                "ok": True,
                "messages": messages,
                "has_more": bool(rest),
                "pin_count": 0,
                "response_metadata": {"next_cursor": next_cursor},
            }
        )


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1")


def _ts_arg(value: Any, default: Decimal, error: str) -> Decimal:
    if value is None or value == "":
        return default
    try:
        ts = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(error) from exc
    if not ts.is_finite() or ts < 0:
        raise ValueError(error)
    return ts


def _cursor_arg(value: Any) -> Decimal | None:
    """Our next_cursor is base64("next_ts:<ts>"), like Slack's; None = first page."""
    if not value:
        return None
    try:
        kind, _, ts = base64.b64decode(str(value), validate=True).decode().partition(":")
        if kind != "next_ts":
            raise ValueError("invalid_cursor")
        return Decimal(ts)
    except (binascii.Error, UnicodeDecodeError, InvalidOperation) as exc:
        raise ValueError("invalid_cursor") from exc


_INVALID = object()


def _json_value(value: Any) -> Any:
    """None when absent, else the decoded value (form posts carry JSON strings), or _INVALID."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return _INVALID
    return value


def _metadata_arg(value: Any) -> dict[str, Any] | str | None:
    """Slack's `metadata` argument ({"event_type", "event_payload"}), or an error name.

    https://docs.slack.dev/messaging/message-metadata: event_type "A human
    readable alphanumeric string", event_payload "A free-form object"; form
    bodies carry it as a JSON string, like blocks.
    """
    value = _json_value(value)
    if value is None:
        return None
    if not isinstance(value, dict):
        return "invalid_metadata_format"
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        return "invalid_metadata_schema"
    return {"event_type": event_type, "event_payload": payload}


def _json_arg(value: Any) -> Any:
    """blocks/attachments arrive as JSON arrays, or JSON strings in form posts."""
    value = _json_value(value)
    return value if value is None or isinstance(value, list) else _INVALID
