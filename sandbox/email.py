"""SMTP submission (aiosmtpd) plus Mailgun-format event webhooks."""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .context import Context
from .hang import HANG_CAP, hold
from .signing import mailgun_signature
from .store import Message
from .triggers import Kind, email_trigger


class _ParsedHeaders(HeaderRegistry):
    """The standard header parsers, with each header's class built once and
    the parses of recent values kept.

    CPython's HeaderRegistry builds a new class with type() on every header
    it parses, which was a seventh of the sandbox's CPU in an email bulk.
    And the policy parses a header anew on every read: reading a part's
    Content-Type (the same text in most messages) was a quarter of it.
    The sandbox only reads the messages it parses, so a parsed header (an
    immutable str) can be handed out again.
    """

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one registry, kept for the process
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - as above
    def __call__(self, name: str, value: str) -> BaseHeader:
        return super().__call__(name, value)


_POLICY = policy.default.clone(header_factory=_ParsedHeaders())


def _text_part(msg: EmailMessage, subtype: str) -> str | None:
    part = msg.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return None
    # SMTP carries CRLF line endings; store text the way a reader sees it.
    return content.replace("\r\n", "\n")


@dataclass(frozen=True)
class _Received:
    """What an event reports of a message: its envelope sender, Message-ID
    (without brackets) and size, each header's first value, every tag, and
    the attachments."""

    mail_from: str | None
    message_id: str
    size: int
    first: dict[str, str]
    tags: list[str]
    attachments: list[dict[str, str | None]]


class SmtpHandler:
    """aiosmtpd handler: trigger checks at RCPT, recording and events at DATA."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        trigger = email_trigger(address)
        store = self.ctx.store
        if self.ctx.outages.active("smtp"):
            # The outage switch (sandbox/outage.py): a transient reply for everyone.
            reply = "451 4.3.2 System not accepting network messages"
            store.log_request(
                channel="email",
                operation="outage",
                to=address,
                outcome="transient",
                status_code=451,
                error=reply,
            )
            return reply
        if trigger.kind is Kind.SLOW:
            await asyncio.sleep(self.ctx.config.slow_seconds)
        if trigger.kind is Kind.INVALID:
            reply = f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
            store.log_request(
                channel="email",
                operation="smtp.rcpt",
                to=address,
                outcome="rejected",
                status_code=550,
                error=reply,
            )
            return reply
        # The subject isn't known until DATA, so tempfail counts per full
        # recipient address: use tempfail2+<tag>@ to keep tests apart.
        if trigger.kind is Kind.TEMPFAIL and self.ctx.counter.should_fail(
            ("email", address.lower()), trigger.count
        ):
            reply = "451 4.3.0 Temporary failure, please try again later"
            store.log_request(
                channel="email",
                operation="smtp.rcpt",
                to=address,
                outcome="transient",
                status_code=451,
                error=reply,
            )
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        parsed = message_from_bytes(raw, policy=_POLICY)
        assert isinstance(parsed, EmailMessage)  # guaranteed by an EmailPolicy
        # Each header parsed once: the policy parses a header on every read.
        items = [(name.lower(), str(value)) for name, value in parsed.items()]
        headers = dict(items)  # a repeated header's last value, as before
        first = dict(reversed(items))  # its first, as Message.get gives
        message_id = first.get("message-id", "").strip()
        if not message_id:
            # Mailgun stamps one on messages that arrive without it.
            message_id = make_msgid(domain="sandbox.mailgun.local")
        bare_id = message_id.strip("<>")
        subject = first.get("subject", "")
        header_from = first.get("from", "") or (envelope.mail_from or "")
        text = _text_part(parsed, "plain")
        html = _text_part(parsed, "html")
        received = _Received(
            mail_from=envelope.mail_from,
            message_id=bare_id,
            size=len(raw),
            first=first,
            tags=[value for name, value in items if name == "x-mailgun-tag"],
            attachments=[
                {"filename": part.get_filename(), "content-type": part.get_content_type()}
                for part in parsed.iter_attachments()
            ],
        )
        request: dict[str, Any] = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "headers": headers,
            "size": len(raw),
            "authenticated_as": _login(session),
        }
        for recipient in envelope.rcpt_tos:
            record = self.ctx.store.add_message(
                channel="email",
                to=recipient,
                from_=header_from,
                body=text or "",
                html=html,
                subject=subject,
                provider_message_id=bare_id,
                request=request,
            )
            self.ctx.store.log_request(
                channel="email",
                operation="smtp.data",
                to=recipient,
                outcome="accepted",
                status_code=250,
                message_id=record.id,
            )
            self.ctx.sender.spawn(self._events(record, received))
        if any(email_trigger(r).kind is Kind.HANG for r in envelope.rcpt_tos):
            await self._never_reply(server)
        return f"250 2.0.0 Ok: queued as {bare_id}"

    async def _never_reply(self, server: SMTP) -> None:
        """Hold the final DATA reply: the message is queued, the client never hears.

        aiosmtpd cancels this handler when the client disconnects; on shutdown or
        after the cap the connection is closed, so no reply is ever written.
        """
        await hold(self.ctx.stopping, lambda: server.transport is None)
        if server.transport is not None:
            server.transport.close()

    async def _events(self, record: Message, received: _Received) -> None:
        cfg = self.ctx.config
        await asyncio.sleep(cfg.callback_delay)
        trigger = email_trigger(record.to)
        if trigger.kind is Kind.NO_CALLBACK:
            return
        failed = trigger.kind is Kind.CALLBACK_FAIL
        record.status = "failed" if failed else "delivered"
        if not cfg.mailgun_webhook_url:
            return
        event_data = self._event_data(record, received, failed)
        timestamp = str(int(time.time()))
        token = secrets.token_hex(25)  # 50 characters, like Mailgun's
        body = {
            "signature": {
                "timestamp": timestamp,
                "token": token,
                "signature": mailgun_signature(cfg.mailgun_signing_key, timestamp, token),
            },
            "event-data": event_data,
        }
        await self.ctx.sender.post(
            url=cfg.mailgun_webhook_url,
            event=event_data["event"],
            content=json.dumps(body).encode(),
            content_type="application/json",
            headers={"User-Agent": "mailgun/treq-16.12.0"},
            payload=body,
            message=record,
        )

    def _event_data(self, record: Message, received: _Received, failed: bool) -> dict[str, Any]:
        recipient = record.to
        domain = recipient.rsplit("@", 1)[-1].lower()
        try:
            user_variables = json.loads(received.first.get("x-mailgun-variables", "{}"))
        except json.JSONDecodeError:
            user_variables = {}
        data: dict[str, Any] = {
            "id": secrets.token_urlsafe(16)[:22],
            "timestamp": time.time(),
            "log-level": "error" if failed else "info",
            "event": "failed" if failed else "delivered",
            "recipient": recipient,
            "recipient-domain": domain,
            "method": "smtp",
            "envelope": {
                "transport": "smtp",
                "sender": received.mail_from,
                "sending-ip": "127.0.0.1",
                "targets": recipient,
            },
            "flags": {
                "is-routed": False,
                "is-authenticated": True,
                "is-system-test": False,
                "is-test-mode": False,
            },
            "message": {
                "headers": {
                    "to": received.first.get("to", recipient),
                    "message-id": received.message_id,
                    "from": received.first.get("from", received.mail_from or ""),
                    "subject": received.first.get("subject", ""),
                },
                "attachments": received.attachments,
                "size": received.size,
            },
            "tags": received.tags,
            "campaigns": [],
            "user-variables": user_variables if isinstance(user_variables, dict) else {},
        }
        if failed:
            data["severity"] = "permanent"
            data["reason"] = "bounce"
            data["delivery-status"] = {
                "attempt-no": 1,
                "code": 550,
                "message": "5.1.1 The email account that you tried to reach does not exist.",
                "description": f"{recipient}: mailbox unavailable (sandbox bounce trigger)",
                "bounce-type": "hard",
                "mx-host": f"mx.{domain}",
                "session-seconds": 0.1,
                "tls": True,
                "utf8": True,
                "certificate-verified": True,
            }
        else:
            data["reason"] = None
            data["delivery-status"] = {
                "attempt-no": 1,
                "code": 250,
                "message": "OK",
                "description": "",
                "mx-host": f"mx.{domain}",
                "session-seconds": 0.1,
                "tls": True,
                "utf8": True,
                "certificate-verified": True,
            }
        return data


def _login(session: Session) -> str | None:
    data = session.auth_data
    if isinstance(data, LoginPassword):
        return data.login.decode("utf-8", "replace")
    return None


def make_authenticator(user: str, password: str) -> Any:
    """AUTH PLAIN/LOGIN check against the single configured account."""

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and secrets.compare_digest(auth_data.login, user.encode())
            and secrets.compare_digest(auth_data.password, password.encode())
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticator


async def start_smtp(ctx: Context) -> asyncio.Server:
    cfg = ctx.config
    handler = SmtpHandler(ctx)
    auth = bool(cfg.smtp_user)

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="sandbox.local",
            ident="Clarion provider sandbox ESMTP",
            enable_SMTPUTF8=True,
            # aiosmtpd drops idle sessions after `timeout`; the hang trigger holds one
            # for up to HANG_CAP.
            timeout=HANG_CAP,
            auth_required=auth,
            # No TLS on a loopback test server; AUTH over plain text is fine here.
            auth_require_tls=False,
            authenticator=make_authenticator(cfg.smtp_user, cfg.smtp_password) if auth else None,
        )

    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host=cfg.host, port=cfg.smtp_port)
