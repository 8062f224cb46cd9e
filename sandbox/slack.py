"""Slack Web API: conversations.open and chat.postMessage."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from typing import Any

from aiohttp import web

from .context import Context
from .triggers import Kind, slack_trigger

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
BOT_USER = "U0SANDBOXBOT"
BOT_ID = "B0SANDBOXBOT"


class SlackApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._dm_users: dict[str, str] = {}  # DM channel id -> user id
        self._ts = itertools.count(100)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/conversations.open", self.conversations_open),
            web.post("/api/chat.postMessage", self.post_message),
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
    ) -> web.Response:
        # Slack reports most errors as HTTP 200 with ok=false.
        body = {"ok": False, "error": error}
        outcome = "transient" if status in (429, 500) else "rejected"
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

    async def post_message(self, request: web.Request) -> web.Response:
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

        trigger = slack_trigger(user or "")
        key = ("slack", to, text)
        if trigger.kind is Kind.RATE_LIMIT and self.ctx.counter.should_fail(key, trigger.count):
            return self._fail(op, to, "ratelimited", 429, {"Retry-After": "1"})
        if trigger.kind is Kind.SERVER_ERROR and self.ctx.counter.should_fail(key, trigger.count):
            return self._fail(op, to, "internal_error", 500)

        ts = f"{int(time.time())}.{next(self._ts) % 1000000:06d}"
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
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})


_INVALID = object()


def _json_arg(value: Any) -> Any:
    """blocks/attachments arrive as JSON arrays, or JSON strings in form posts."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return _INVALID
    return value if isinstance(value, list) else _INVALID
