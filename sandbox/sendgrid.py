"""SendGrid v3 Mail Send plus the signed Event Webhook.

Written from https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
(request body, 202 with X-Message-Id, {"errors": [...]} bodies),
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
(event objects: processed, deferred, delivered, bounce; sg_message_id,
custom_args copied onto each event) and
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
(ECDSA signature of timestamp + body in X-Twilio-Email-Event-Webhook-Signature).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import time
import uuid
from typing import Any

from aiohttp import web

from .context import Context
from .hang import never_answer
from .signing import sendgrid_public_key, sendgrid_signature
from .store import Message
from .triggers import Kind, email_trigger

# Enough of an address check for SendGrid's "Does not contain a valid address."
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_PERSONALIZATIONS = 1000
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class SendGridError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    @property
    def outcome(self) -> str:
        return "transient" if self.status == 429 or self.status >= 500 else "rejected"

    def body(self) -> dict[str, Any]:
        return {"errors": [{"message": self.message, "field": self.field, "help": None}]}

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status)


def _message_id() -> str:
    # X-Message-Id values are 22 URL-safe base64 characters.
    return secrets.token_urlsafe(16)[:22]


class SendGridApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v3/mail/send", self.send),
            # The verification key, as the Event Webhook settings API returns it.
            web.get("/v3/user/webhooks/event/settings/signed", self.public_key),
        ]

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(token.encode(), self.ctx.config.sendgrid_api_key.encode()):
            raise SendGridError(
                401, "The provided authorization grant is invalid, expired, or revoked"
            )

    async def public_key(self, request: web.Request) -> web.Response:
        try:
            self._check_auth(request)
        except SendGridError as err:
            return err.response()
        key = sendgrid_public_key(self.ctx.config.sendgrid_webhook_private_key)
        return web.json_response({"enabled": True, "public_key": key})

    async def send(self, request: web.Request) -> web.StreamResponse:
        store = self.ctx.store
        to: str | None = None
        try:
            self._check_auth(request)
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise SendGridError(400, "Bad Request", None) from exc
            if not isinstance(body, dict):
                raise SendGridError(400, "Bad Request", None)
            recipients = self._validate(body)
            to = recipients[0][0] if recipients else None
            if any(email_trigger(r).kind is Kind.SLOW for r, _ in recipients):
                await asyncio.sleep(self.ctx.config.slow_seconds)
        except SendGridError as err:
            store.log_request(
                channel="email",
                operation="mail.send",
                to=to,
                outcome=err.outcome,
                status_code=err.status,
                error=err.body(),
                provider="sendgrid",
            )
            return err.response()
        x_message_id = _message_id()
        records = []
        for recipient, custom_args in recipients:
            record = store.add_message(
                channel="email",
                to=recipient,
                from_=body["from"]["email"],
                body=self._content(body, "text/plain"),
                html=self._content(body, "text/html") or None,
                subject=str(body.get("subject", "")),
                provider_message_id=x_message_id,
                request=body,
                provider="sendgrid",
            )
            records.append(record)
            store.log_request(
                channel="email",
                operation="mail.send",
                to=recipient,
                outcome="accepted",
                status_code=202,
                message_id=record.id,
                provider="sendgrid",
            )
            self.ctx.sender.spawn(self._events(record, x_message_id, custom_args, body))
        if any(email_trigger(r.to).kind is Kind.HANG for r in records):
            return await never_answer(self.ctx.stopping, request)
        # "202 Accepted": an empty body; the id is only in X-Message-Id.
        return web.Response(status=202, headers={"X-Message-Id": x_message_id})

    @staticmethod
    def _content(body: dict[str, Any], kind: str) -> str:
        for part in body.get("content") or []:
            if isinstance(part, dict) and part.get("type") == kind:
                return str(part.get("value", ""))
        return ""

    def _validate(self, body: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
        sender = body.get("from")
        if not isinstance(sender, dict) or not _EMAIL.match(str(sender.get("email", ""))):
            raise SendGridError(
                400,
                "The from object must be provided for every email send. It is an object "
                "that requires the email parameter, but may also contain a name parameter.",
                "from",
            )
        personalizations = body.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            raise SendGridError(
                400,
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        if len(personalizations) > MAX_PERSONALIZATIONS:
            raise SendGridError(
                400, "The personalizations field is limited to 1000 objects.", "personalizations"
            )
        top_args = body.get("custom_args") if isinstance(body.get("custom_args"), dict) else {}
        has_subject = bool(body.get("subject"))
        recipients: list[tuple[str, dict[str, str]]] = []
        for i, p in enumerate(personalizations):
            to_list = p.get("to") if isinstance(p, dict) else None
            if not isinstance(to_list, list) or not to_list:
                raise SendGridError(
                    400,
                    "The to array is required for all personalization objects, and must have "
                    "at least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                )
            if not has_subject and not (isinstance(p, dict) and p.get("subject")):
                if not body.get("template_id"):
                    raise SendGridError(
                        400,
                        "The subject is required. You can get around this requirement if you "
                        "use a template with a subject defined or if every personalization "
                        "has a subject defined.",
                        "subject",
                    )
            args = dict(top_args or {})
            if isinstance(p.get("custom_args"), dict):
                args.update(p["custom_args"])
            for j, entry in enumerate(to_list):
                email = str(entry.get("email", "")) if isinstance(entry, dict) else ""
                if not _EMAIL.match(email):
                    raise SendGridError(
                        400,
                        "Does not contain a valid address.",
                        f"personalizations.{i}.to.{j}.email",
                    )
                recipients.append((email, {str(k): str(v) for k, v in args.items()}))
        content = body.get("content")
        if not body.get("template_id"):
            if not isinstance(content, list) or not content:
                raise SendGridError(
                    400,
                    "Unless a valid template_id is provided, the content parameter is required. "
                    "There must be at least one defined content block. We typically suggest "
                    "both text/plain and text/html blocks are included, but only one block is "
                    "required.",
                    "content",
                )
        return recipients

    async def _events(
        self,
        record: Message,
        x_message_id: str,
        custom_args: dict[str, str],
        body: dict[str, Any],
    ) -> None:
        cfg = self.ctx.config
        trigger = email_trigger(record.to)
        smtp_id = f"<{x_message_id}@ismtpd-sandbox>"
        sg_message_id = f"{x_message_id}.filterdrecv-sandbox-1-{uuid.uuid4().hex[:8]}.0"
        categories = body.get("categories") if isinstance(body.get("categories"), list) else None

        def event(name: str, **extra: Any) -> dict[str, Any]:
            # custom_args appear as top-level keys of every event.
            data: dict[str, Any] = {
                **custom_args,
                "email": record.to,
                "timestamp": int(time.time()),
                "smtp-id": smtp_id,
                "event": name,
                "sg_event_id": secrets.token_urlsafe(16),
                "sg_message_id": sg_message_id,
            }
            if categories:
                data["category"] = categories
            data.update(extra)
            return data

        await self._post([event("processed")], record)
        if trigger.kind is Kind.NO_CALLBACK:
            return
        await asyncio.sleep(cfg.callback_delay)
        if trigger.kind is Kind.TEMPFAIL:
            # SendGrid retries deferred mail itself; the client sees the events.
            for attempt in range(1, trigger.count + 1):
                await self._post(
                    [
                        event(
                            "deferred",
                            response="451 4.3.0 Temporary failure, please try again later",
                            attempts=str(attempt),
                        )
                    ],
                    record,
                )
        if trigger.kind in (Kind.INVALID, Kind.CALLBACK_FAIL):
            record.status = "failed"
            record.error_code = 550
            domain = record.to.rsplit("@", 1)[-1]
            await self._post(
                [
                    event(
                        "bounce",
                        type="bounce",
                        status="5.1.1",
                        reason=f"550 5.1.1 <{record.to}>: Recipient address rejected: User unknown",
                        bounce_classification="Invalid Address",
                        ip="127.0.0.1",
                        tls=1,
                        mx=f"mx.{domain}",
                    )
                ],
                record,
            )
            return
        record.status = "delivered"
        await self._post(
            [event("delivered", response="250 2.0.0 OK", ip="127.0.0.1", tls=1)], record
        )

    async def _post(self, events: list[dict[str, Any]], record: Message) -> None:
        cfg = self.ctx.config
        if not cfg.sendgrid_webhook_url:
            return
        raw = json.dumps(events).encode()
        timestamp = str(int(time.time()))
        headers = {
            "User-Agent": "SendGrid Event API",
            SIGNATURE_HEADER: sendgrid_signature(cfg.sendgrid_webhook_private_key, timestamp, raw),
            TIMESTAMP_HEADER: timestamp,
        }
        await self.ctx.sender.post(
            url=cfg.sendgrid_webhook_url,
            event=str(events[0]["event"]),
            content=raw,
            content_type="application/json",
            headers=headers,
            payload=events,
            message=record,
        )
