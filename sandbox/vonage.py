"""Vonage SMS API: `POST /sms/json` and signed delivery receipts (DLRs).

Written from https://developer.vonage.com/en/api/sms (send), the delivery
receipt guide https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts
and the troubleshooting guide's status table
https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from .context import Context
from .hang import never_answer
from .signing import vonage_signature
from .store import Message
from .triggers import Kind, Verdict, gate, phone_trigger

# "to": E.164 without the leading + or 00 (https://developer.vonage.com/en/api/sms).
_DIGITS = re.compile(r"^[1-9]\d{6,14}$")
# Fixed network code and prices of the sandbox's single fake network.
NETWORK = "12345"
PRICE = "0.03330000"


class VonageError(Exception):
    """A non-zero `status` in the SMS API's answer; the HTTP status is still 200."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text

    @property
    def outcome(self) -> str:
        # 1 Throttled and 5 Internal Error are the ones worth retrying.
        return "transient" if self.status in ("1", "5") else "rejected"

    def body(self) -> dict[str, Any]:
        return {
            "message-count": "1",
            "messages": [{"status": self.status, "error-text": self.text}],
        }


def _scts(moment: datetime) -> str:
    # "scts": the carrier's timestamp, YYMMDDHHMM.
    return moment.strftime("%y%m%d%H%M")


class VonageApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/sms/json", self.send)]

    async def _params(self, request: web.Request) -> dict[str, str]:
        # The SMS API takes the same parameters as a form or as a JSON object.
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                return {}
            if not isinstance(body, dict):
                return {}
            return {str(k): str(v) for k, v in body.items() if v is not None}
        form = await request.post()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        for k, v in request.query.items():
            params.setdefault(k, v)
        return params

    async def send(self, request: web.Request) -> web.StreamResponse:
        params = await self._params(request)
        to = params.get("to", "").strip().lstrip("+")
        store = self.ctx.store
        try:
            message = await self._send(params, to)
        except VonageError as err:
            store.log_request(
                channel="sms",
                operation="sms.send",
                to=("+" + to) if to else None,
                outcome=err.outcome,
                status_code=200,
                error=err.body(),
                provider="vonage",
            )
            return web.json_response(err.body())
        store.log_request(
            channel="sms",
            operation="sms.send",
            to=message.to,
            outcome="accepted",
            status_code=200,
            message_id=message.id,
            provider="vonage",
        )
        if phone_trigger(message.to).kind is Kind.HANG:
            return await never_answer(self.ctx.stopping, request)
        answer: dict[str, Any] = {
            "to": to,
            "message-id": message.provider_message_id,
            "status": "0",
            "remaining-balance": "10.00000000",
            "message-price": PRICE,
            "network": NETWORK,
        }
        if params.get("client-ref"):
            answer["client-ref"] = params["client-ref"]
        return web.json_response({"message-count": "1", "messages": [answer]})

    async def _send(self, params: dict[str, str], to: str) -> Message:
        cfg = self.ctx.config
        for name in ("api_key", "from", "to"):
            if not params.get(name, "").strip():
                raise VonageError("2", f"Missing {name} param")
        if "text" not in params and params.get("type", "text") in ("text", "unicode"):
            raise VonageError("2", "Missing text param")
        key_ok = hmac.compare_digest(params["api_key"].encode(), cfg.vonage_api_key.encode())
        secret_ok = hmac.compare_digest(
            params.get("api_secret", "").encode(), cfg.vonage_api_secret.encode()
        )
        if not (key_ok and secret_ok):
            raise VonageError("4", "Bad Credentials")
        if not _DIGITS.match(to):
            raise VonageError("3", "Invalid to address")
        callback = params.get("callback", "").strip()
        if callback:
            parts = urlsplit(callback)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise VonageError("23", "Invalid Callback Url")
        text = params.get("text", "")
        number = "+" + to
        verdict = await gate(
            phone_trigger(number), self.ctx.counter, ("vonage", number, text), cfg.slow_seconds
        )
        if verdict is Verdict.INVALID:
            raise VonageError("3", "Invalid to address")
        if verdict is Verdict.BLOCKED:
            # "7 Number barred: The number you are trying to send messages to is
            # on the list of barred numbers."
            raise VonageError("7", "Number barred")
        if verdict is Verdict.RATE_LIMIT:
            raise VonageError("1", "Throttled")
        if verdict is Verdict.TRANSIENT:
            raise VonageError("5", "Internal Error")
        message = self.ctx.store.add_message(
            channel="sms",
            to=number,
            from_=params["from"],
            body=text,
            provider_message_id=str(uuid.uuid4()),
            request={k: v for k, v in params.items() if k != "api_secret"},
            provider="vonage",
        )
        self.ctx.sender.spawn(self._receipt(message, params, callback or cfg.vonage_dlr_url))
        return message

    async def _receipt(self, message: Message, params: dict[str, str], url: str) -> None:
        cfg = self.ctx.config
        await asyncio.sleep(cfg.callback_delay)
        kind = phone_trigger(message.to).kind
        if kind is Kind.NO_CALLBACK:
            return
        failed = kind is Kind.CALLBACK_FAIL
        # DLR status "delivered" / "failed"; err-code 0 = Delivered, 3 = Absent
        # Subscriber - Permanent (the guide's DLR error code table).
        message.status = "failed" if failed else "delivered"
        message.error_code = 3 if failed else 0
        if not url:
            return
        now = datetime.now(UTC)
        receipt = {
            "msisdn": message.to.lstrip("+"),
            "to": message.from_ or "",
            "network-code": NETWORK,
            "messageId": message.provider_message_id,
            "price": PRICE,
            "status": message.status,
            "scts": _scts(now),
            "err-code": str(message.error_code),
            "api-key": cfg.vonage_api_key,
            "message-timestamp": now.strftime("%Y-%m-%d %H:%M:%S"),
        }
        if params.get("client-ref"):
            receipt["client-ref"] = params["client-ref"]
        # Signed webhooks carry timestamp, nonce and sig with the other fields
        # ("Verify signatures on incoming messages", signing-messages guide).
        receipt["timestamp"] = str(int(time.time()))
        receipt["nonce"] = str(uuid.uuid4())
        receipt["sig"] = vonage_signature(
            cfg.vonage_signature_secret, cfg.vonage_signature_method, receipt
        )
        await self.ctx.sender.post(
            url=url,
            event=message.status,
            content=urlencode(receipt).encode(),
            content_type="application/x-www-form-urlencoded",
            headers={"User-Agent": "Vonage-DLR/1.0", "X-Request-Id": secrets.token_hex(8)},
            payload=receipt,
            message=message,
        )
