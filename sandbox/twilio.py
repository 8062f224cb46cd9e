"""Twilio REST API 2010-04-01: Programmable Messaging (Messages) and Voice (Calls)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import itertools
import math
import re
import secrets
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from multidict import MultiDictProxy

from .context import Context
from .hang import never_answer
from .signing import twilio_signature
from .store import Message
from .triggers import Kind, Trigger, Verdict, gate, phone_trigger
from .twilio_list import CALLS, MESSAGES, InvalidParameter, ListSpec
from .twilio_list import page as list_page

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MAX_BODY = 1600
# Sender Twilio assigns when a message only names a MessagingServiceSid
# (Twilio's own magic "from" number for test credentials).
POOL_NUMBER = "+15005550006"

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]


class TwilioError(Exception):
    """An API error, rendered exactly like Twilio's JSON error body."""

    def __init__(
        self,
        code: int,
        message: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}
        self.detail = detail

    @property
    def outcome(self) -> str:
        return "transient" if self.status in (429, 500, 503) else "rejected"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        return body

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def rfc2822(moment: datetime | None = None) -> str:
    return format_datetime(moment or datetime.now(UTC))


def num_segments(body: str) -> int:
    """Segments as carriers count them: GSM-7 160/153, otherwise UCS-2 70/67."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in body):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in body)
        single, multi = 160, 153
    else:
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in body)
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def _text(form: Form, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _texts(form: Form, name: str) -> list[str]:
    return [v for v in form.getall(name, []) if isinstance(v, str)]


def form_fields(form: Form) -> dict[str, Any]:
    """Raw request fields for the inspection API (repeated names become lists)."""
    fields: dict[str, Any] = {}
    for key in dict.fromkeys(form.keys()):
        values = [v if isinstance(v, str) else "<binary>" for v in form.getall(key)]
        fields[key] = values[0] if len(values) == 1 else values
    return fields


def _valid_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def spoken_text(twiml: str) -> str:
    """Text of every <Say> in a TwiML document; ValueError if it isn't TwiML."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise ValueError(f"TwiML is not well-formed XML: {exc}") from exc
    if root.tag != "Response":
        raise ValueError("TwiML root element must be <Response>")
    said = (" ".join("".join(el.itertext()).split()) for el in root.iter("Say"))
    return " ".join(s for s in said if s)


class TwilioApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._resources: dict[str, dict[str, Any]] = {}

    def routes(self) -> list[web.RouteDef]:
        base = "/2010-04-01/Accounts/{account_sid}"
        return [
            web.post(base + "/Messages.json", self.create_message),
            web.get(base + "/Messages.json", self.list_messages),
            web.get(base + "/Messages/{sid}.json", self.fetch_resource),
            web.post(base + "/Calls.json", self.create_call),
            web.get(base + "/Calls.json", self.list_calls),
            web.get(base + "/Calls/{sid}.json", self.fetch_resource),
        ]

    # -- shared plumbing -------------------------------------------------

    def _check_auth(self, request: web.Request) -> None:
        cfg = self.ctx.config
        header = request.headers.get("Authorization", "")
        user = password = b""
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:], validate=True).partition(b":")
            except (binascii.Error, ValueError):
                pass
        sid_ok = hmac.compare_digest(user, cfg.twilio_account_sid.encode())
        token_ok = hmac.compare_digest(password, cfg.twilio_auth_token.encode())
        if not (sid_ok and token_ok):
            raise TwilioError(
                20003,
                "Authenticate",
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
                detail="Your AccountSid or AuthToken was incorrect.",
            )
        if request.match_info["account_sid"] != cfg.twilio_account_sid:
            raise TwilioError(20404, f"The requested resource {request.path} was not found", 404)

    def _verdict_error(self, verdict: Verdict, to: str) -> TwilioError:
        if verdict is Verdict.INVALID:
            return TwilioError(21211, f"The 'To' number {to} is not a valid phone number.")
        if verdict is Verdict.BLOCKED:
            return TwilioError(21610, "Attempt to send to unsubscribed recipient")
        if verdict is Verdict.RATE_LIMIT:
            return TwilioError(20429, "Too Many Requests", 429, {"Retry-After": "1"})
        return TwilioError(20500, "An internal server error has occurred", 503)

    async def _signed_post(
        self, url: str, params: dict[str, str], event: str, message: Message, method: str = "POST"
    ) -> str | None:
        """Send a webhook the way Twilio does; returns the response body."""
        headers = {
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        if method.upper() == "GET":
            sep = "&" if urlsplit(url).query else "?"
            full = url + sep + urlencode(params)
            headers["X-Twilio-Signature"] = twilio_signature(
                self.ctx.config.twilio_auth_token, full, {}
            )
            callback = await self.ctx.sender.post(
                url=full,
                event=event,
                content=None,
                content_type=None,
                headers=headers,
                payload=params,
                message=message,
                method="GET",
            )
        else:
            headers["X-Twilio-Signature"] = twilio_signature(
                self.ctx.config.twilio_auth_token, url, params
            )
            callback = await self.ctx.sender.post(
                url=url,
                event=event,
                content=urlencode(params).encode(),
                content_type="application/x-www-form-urlencoded; charset=utf-8",
                headers=headers,
                payload=params,
                message=message,
            )
        ok = callback.response_status is not None and 200 <= callback.response_status < 300
        return callback.response_body if ok else None

    def _set_status(
        self, resource: dict[str, Any], message: Message, status: str, error: int | None = None
    ) -> None:
        resource["status"] = status
        resource["date_updated"] = rfc2822()
        if error is not None:
            resource["error_code"] = error
        message.status = status
        message.error_code = error

    async def fetch_resource(self, request: web.Request) -> web.Response:
        try:
            self._check_auth(request)
        except TwilioError as err:
            return err.response()
        resource = self._resources.get(request.match_info["sid"])
        if resource is None:
            return TwilioError(
                20404, f"The requested resource {request.path} was not found", 404
            ).response()
        return web.json_response(resource)

    async def list_messages(self, request: web.Request) -> web.Response:
        return self._list(request, "sms", MESSAGES)

    async def list_calls(self, request: web.Request) -> web.Response:
        return self._list(request, "voice", CALLS)

    def _list(self, request: web.Request, channel: str, spec: ListSpec) -> web.Response:
        # Look-ups are logged as "read", so counting accepted creates stays exact.
        try:
            self._check_auth(request)
            newest_first = [
                self._resources[m.provider_message_id]
                for m in reversed(self.ctx.store.messages)
                if m.channel == channel and m.provider_message_id in self._resources
            ]
            try:
                body = list_page(spec, newest_first, request.query, request.path)
            except InvalidParameter as exc:
                raise TwilioError(20422, str(exc)) from exc
        except TwilioError as err:
            self._log_read(channel, spec, request, err.status, err.body())
            return err.response()
        self._log_read(channel, spec, request, 200)
        return web.json_response(body)

    def _log_read(
        self, channel: str, spec: ListSpec, request: web.Request, status: int, error: Any = None
    ) -> None:
        self.ctx.store.log_request(
            channel=channel,
            operation=f"{spec.key}.list",
            to=request.query.get("To") or None,
            outcome="read",
            status_code=status,
            error=error,
        )

    async def _handle(
        self, request: web.Request, channel: str, operation: str, create: Any
    ) -> web.StreamResponse:
        form = await request.post()
        to = _text(form, "To") or None
        store = self.ctx.store
        try:
            self._check_auth(request)
            # No de-duplication, as on Twilio: the create parameters of
            # https://www.twilio.com/docs/messaging/api/message-resource and
            # https://www.twilio.com/docs/voice/api/call-resource name no
            # idempotency key; I-Twilio-Idempotency-Token is a header of the
            # webhooks Twilio sends (https://www.twilio.com/docs/usage/webhooks).
            # A repeated create is a second message.
            resource: dict[str, Any] = await create(form)
        except TwilioError as err:
            store.log_request(
                channel=channel,
                operation=operation,
                to=to,
                outcome=err.outcome,
                status_code=err.status,
                error=err.body(),
            )
            return err.response()
        message = store.by_provider_id(resource["sid"])
        store.log_request(
            channel=channel,
            operation=operation,
            to=to,
            outcome="accepted",
            status_code=201,
            message_id=message.id if message else None,
        )
        if phone_trigger(to or "").kind is Kind.HANG:
            # Twilio has the message and sends its callbacks; the client never hears.
            return await never_answer(self.ctx.stopping, request)
        return web.json_response(resource, status=201)

    # -- Messages --------------------------------------------------------

    async def create_message(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "sms", "messages.create", self._create_message)

    async def _create_message(self, form: Form) -> dict[str, Any]:
        cfg = self.ctx.config
        to = _text(form, "To")
        from_ = _text(form, "From")
        service_sid = _text(form, "MessagingServiceSid")
        body = form.get("Body")
        body = body if isinstance(body, str) else ""
        media = _texts(form, "MediaUrl")
        callback_url = _text(form, "StatusCallback")
        if not to:
            raise TwilioError(21604, "A 'To' phone number is required.")
        if not E164.match(to):
            raise TwilioError(21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_ and not service_sid:
            raise TwilioError(
                21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."
            )
        if not body and not media:
            raise TwilioError(21602, "Message body is required.")
        if len(body) > MAX_BODY:
            raise TwilioError(
                21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if callback_url and not _valid_url(callback_url):
            raise TwilioError(21609, f"The StatusCallback URL {callback_url} is not a valid URL.")

        trigger = phone_trigger(to)
        verdict = await gate(trigger, self.ctx.counter, ("sms", to, body), cfg.slow_seconds)
        if verdict is not Verdict.ACCEPT:
            raise self._verdict_error(verdict, to)

        sid = "SM" + secrets.token_hex(16)
        now = rfc2822()
        uri = f"/{API_VERSION}/Accounts/{cfg.twilio_account_sid}/Messages/{sid}.json"
        resource: dict[str, Any] = {
            "account_sid": cfg.twilio_account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_ or None,
            "messaging_service_sid": service_sid or None,
            "num_media": str(len(media)),
            # Twilio reports 0 until a Messaging Service has picked the sender.
            "num_segments": "0" if not from_ else str(num_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # A Messaging Service send starts 'accepted', a direct one 'queued'.
            "status": "queued" if from_ else "accepted",
            "subresource_uris": {
                "media": uri.replace(".json", "/Media.json"),
                "feedback": uri.replace(".json", "/Feedback.json"),
            },
            "to": to,
            "uri": uri,
        }
        self._resources[sid] = resource
        message = self.ctx.store.add_message(
            channel="sms",
            to=to,
            from_=from_ or service_sid,
            body=body,
            provider_message_id=sid,
            request=form_fields(form),
            status=resource["status"],
        )
        self.ctx.sender.spawn(self._message_progress(message, resource, callback_url, trigger))
        return resource

    async def _message_progress(
        self, message: Message, resource: dict[str, Any], callback_url: str, trigger: Trigger
    ) -> None:
        await asyncio.sleep(self.ctx.config.callback_delay)
        if trigger.kind is Kind.NO_CALLBACK:
            return  # the carrier never reports back
        if resource["from"] is None:
            resource["from"] = POOL_NUMBER
            resource["num_segments"] = str(num_segments(resource["body"]))
        final = (
            ("undelivered", 30003) if trigger.kind is Kind.CALLBACK_FAIL else ("delivered", None)
        )
        for status, error in (("sent", None), final):
            self._set_status(resource, message, status, error)
            if status == "sent":
                resource["date_sent"] = resource["date_updated"]
            if error is not None:
                resource["error_message"] = "Unreachable destination handset"
            if not callback_url:
                continue
            params = {
                "AccountSid": self.ctx.config.twilio_account_sid,
                "ApiVersion": API_VERSION,
                "From": resource["from"],
                "MessageSid": resource["sid"],
                "MessageStatus": status,
                "SmsSid": resource["sid"],
                "SmsStatus": status,
                "To": resource["to"],
            }
            if resource["messaging_service_sid"]:
                params["MessagingServiceSid"] = resource["messaging_service_sid"]
            if error is not None:
                params["ErrorCode"] = str(error)
            await self._signed_post(callback_url, params, status, message)

    # -- Calls -----------------------------------------------------------

    async def create_call(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "voice", "calls.create", self._create_call)

    async def _create_call(self, form: Form) -> dict[str, Any]:
        cfg = self.ctx.config
        to = _text(form, "To")
        from_ = _text(form, "From")
        twiml = form.get("Twiml")
        twiml = twiml if isinstance(twiml, str) else ""
        url = _text(form, "Url")
        callback_url = _text(form, "StatusCallback")
        if not to:
            raise TwilioError(21201, "No 'To' number is specified")
        if not E164.match(to):
            raise TwilioError(21211, f"Invalid 'To' Phone Number: {to}")
        if not from_:
            raise TwilioError(21213, "No 'From' number is specified")
        if not twiml and not url and not _text(form, "ApplicationSid"):
            raise TwilioError(21205, "Url parameter is required.")
        if url and not _valid_url(url):
            raise TwilioError(21205, f"Url is not a valid URL: {url}")
        if callback_url and not _valid_url(callback_url):
            raise TwilioError(21609, f"The StatusCallback URL {callback_url} is not a valid URL.")
        spoken = ""
        if twiml:
            try:
                spoken = spoken_text(twiml)
            except ValueError as exc:
                raise TwilioError(12100, f"Document parse failure: {exc}") from exc

        trigger = phone_trigger(to)
        key = ("voice", to, twiml or url)
        verdict = await gate(trigger, self.ctx.counter, key, cfg.slow_seconds)
        if verdict is not Verdict.ACCEPT:
            raise self._verdict_error(verdict, to)

        sid = "CA" + secrets.token_hex(16)
        now = rfc2822()
        uri = f"/{API_VERSION}/Accounts/{cfg.twilio_account_sid}/Calls/{sid}.json"
        sub = uri.replace(".json", "")
        resource: dict[str, Any] = {
            "account_sid": cfg.twilio_account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": now,
            "date_updated": now,
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": from_,
            "from_formatted": from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {
                name: f"{sub}/{name.title().replace('_', '')}.json"
                for name in ("notifications", "recordings", "events", "payments")
            },
            "to": to,
            "to_formatted": to,
            "trunk_sid": None,
            "uri": uri,
        }
        self._resources[sid] = resource
        message = self.ctx.store.add_message(
            channel="voice",
            to=to,
            from_=from_,
            body=spoken,
            provider_message_id=sid,
            request=form_fields(form),
            status="queued",
        )
        self.ctx.sender.spawn(self._call_progress(message, resource, form_fields(form), trigger))
        return resource

    async def _call_progress(
        self, message: Message, resource: dict[str, Any], fields: dict[str, Any], trigger: Trigger
    ) -> None:
        await asyncio.sleep(self.ctx.config.callback_delay)
        if trigger.kind is Kind.NO_CALLBACK:
            return
        callback_url = str(fields.get("StatusCallback", "")).strip()
        raw_events = fields.get("StatusCallbackEvent", [])
        raw_events = raw_events if isinstance(raw_events, list) else [raw_events]
        # Twilio sends only the final ('completed') event unless asked for more;
        # helper libraries send the list repeated or space-separated.
        wanted = {e.lower() for value in raw_events for e in str(value).split()} | {"completed"}
        sequence = itertools.count()
        base = {
            "AccountSid": resource["account_sid"],
            "ApiVersion": API_VERSION,
            "CallSid": resource["sid"],
            "Called": resource["to"],
            "Caller": resource["from"],
            "Direction": "outbound-api",
            "From": resource["from"],
            "To": resource["to"],
        }

        async def emit(event: str, status: str, extra: dict[str, str] | None = None) -> None:
            self._set_status(resource, message, status)
            if callback_url and event in wanted:
                params = {
                    **base,
                    "CallStatus": status,
                    "CallbackSource": "call-progress-events",
                    "SequenceNumber": str(next(sequence)),
                    "Timestamp": rfc2822(),
                    **(extra or {}),
                }
                method = str(fields.get("StatusCallbackMethod", "POST")) or "POST"
                await self._signed_post(callback_url, params, status, message, method)

        def ended(seconds: int, sip: str | None = None) -> dict[str, str]:
            resource["duration"] = str(seconds)
            resource["end_time"] = rfc2822()
            extra = {"CallDuration": str(seconds), "Duration": str(math.ceil(seconds / 60))}
            if sip:
                extra["SipResponseCode"] = sip
            return extra

        # "start_time ... Empty if the call has not yet been dialed."
        # (https://www.twilio.com/docs/voice/api/call-resource): set on dialing,
        # so busy and unanswered calls have one too and StartTime filters find them.
        resource["start_time"] = rfc2822()
        await emit("initiated", "initiated")
        if trigger.kind is Kind.BUSY:
            await emit("completed", "busy", ended(0, "486"))
            return
        await emit("ringing", "ringing")
        if trigger.kind is Kind.CALLBACK_FAIL:
            await emit("completed", "no-answer", ended(0, "487"))
            return
        await emit("answered", "in-progress")
        url = str(fields.get("Url", "")).strip()
        if url and not fields.get("Twiml"):
            method = str(fields.get("Method", "POST")) or "POST"
            params = {**base, "CallStatus": "in-progress"}
            document = await self._signed_post(url, params, "twiml-fetch", message, method)
            try:
                message.body = spoken_text(document or "")
            except ValueError:
                # Twilio would play "an application error has occurred" and hang up.
                resource["error_code"] = 12100 if document else 11200
                await emit("completed", "failed", ended(0))
                message.error_code = resource["error_code"]
                return
        words = len(message.body.split())
        await emit("completed", "completed", ended(max(1, math.ceil(words / 2.5)), "200"))
