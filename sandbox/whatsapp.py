"""WhatsApp Cloud API (Meta Graph): messages, message templates and webhooks."""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import json
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .context import Context
from .hang import never_answer
from .signing import meta_signature
from .store import Message
from .triggers import Kind, Trigger, Verdict, gate, phone_trigger, template_rejected

VERSION = r"{version:v\d+\.\d+}"
_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_CATEGORIES = {"AUTHENTICATION", "MARKETING", "UTILITY"}
_ERROR_DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


class MetaError(Exception):
    """A Graph API error: {"error": {"message", "type", "code", ..., "fbtrace_id"}}."""

    def __init__(
        self,
        code: int,
        message: str,
        status: int = 400,
        details: str | None = None,
        subcode: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details
        self.subcode = subcode
        self.headers = headers or {}

    @property
    def outcome(self) -> str:
        return "transient" if self.status in (429, 500, 503) else "rejected"

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            # Graph prefixes the message with the code, except for OAuth token errors.
            "message": self.message if self.code == 190 else f"(#{self.code}) {self.message}",
            "type": "OAuthException",
            "code": self.code,
        }
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        alphabet = string.ascii_letters + string.digits
        error["fbtrace_id"] = "A" + "".join(secrets.choice(alphabet) for _ in range(22))
        return {"error": error}

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


@dataclass
class Template:
    id: str
    waba_id: str
    name: str
    language: str
    category: str
    components: list[dict[str, Any]]
    status: str = "PENDING"
    rejected_reason: str = "NONE"
    created_at: float = field(default_factory=time.time)

    @property
    def body_text(self) -> str:
        for component in self.components:
            if str(component.get("type", "")).upper() == "BODY":
                return str(component.get("text", ""))
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "components": self.components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
            "rejected_reason": self.rejected_reason,
        }


def _placeholders(text: str) -> list[int]:
    return [int(n) for n in _PLACEHOLDER.findall(text)]


def _param_text(param: Any) -> str:
    if not isinstance(param, dict):
        return ""
    kind = param.get("type")
    if kind == "text":
        return str(param.get("text", ""))
    if kind in ("currency", "date_time"):
        value = param.get(kind)
        return str(value.get("fallback_value", "")) if isinstance(value, dict) else ""
    return str(param.get(kind, ""))


def _wamid() -> str:
    return "wamid." + base64.b64encode(secrets.token_bytes(30)).decode()


class WhatsAppApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.templates: dict[str, Template] = {}
        self._ids = itertools.count(1)

    def routes(self) -> list[web.RouteDef]:
        # Deliberately no GET of a sent message: the Cloud API reports a message's
        # status only through the `statuses` webhooks
        # (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components,
        # sent/delivered/read/failed); the send response's wamid cannot be looked up.
        # A client that lost the answer cannot ask Meta whether the message went out.
        return [
            web.post(f"/{VERSION}/{{phone_number_id}}/messages", self.send_message),
            web.post(f"/{VERSION}/{{waba_id}}/message_templates", self.create_template),
            web.get(f"/{VERSION}/{{waba_id}}/message_templates", self.list_templates),
            web.delete(f"/{VERSION}/{{waba_id}}/message_templates", self.delete_template),
            web.post("/sandbox/api/whatsapp/verify-webhook", self.verify_webhook),
            web.get("/sandbox/api/templates", self.inspect_templates),
        ]

    # -- plumbing ----------------------------------------------------------

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        token = token or request.query.get("access_token", "")
        if not hmac.compare_digest(token.encode(), self.ctx.config.meta_access_token.encode()):
            raise MetaError(190, "Invalid OAuth access token - Cannot parse access token", 401)

    @staticmethod
    def _check_object_id(object_id: str) -> None:
        if not object_id.isdigit():
            raise MetaError(
                100,
                f"Unsupported post request. Object with ID '{object_id}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation.",
                subcode=33,
            )

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MetaError(
                100, "Invalid parameter", details="Request body is not valid JSON"
            ) from exc
        if not isinstance(body, dict):
            raise MetaError(100, "Invalid parameter", details="Request body must be a JSON object")
        return body

    def _log_error(self, operation: str, to: str | None, err: MetaError) -> web.Response:
        self.ctx.store.log_request(
            channel="whatsapp",
            operation=operation,
            to=to,
            outcome=err.outcome,
            status_code=err.status,
            error=err.body(),
        )
        return err.response()

    async def _post_webhook(
        self, body: dict[str, Any], event: str, message: Message | None
    ) -> None:
        cfg = self.ctx.config
        if not cfg.whatsapp_webhook_url:
            return
        # Sign the exact bytes we send: receivers must verify the raw body.
        content = json.dumps(body).encode()
        await self.ctx.sender.post(
            url=cfg.whatsapp_webhook_url,
            event=event,
            content=content,
            content_type="application/json",
            headers={
                "X-Hub-Signature-256": meta_signature(cfg.meta_app_secret, content),
                "User-Agent": "facebookexternalua",
            },
            payload=body,
            message=message,
        )

    # -- messages ----------------------------------------------------------

    async def send_message(self, request: web.Request) -> web.StreamResponse:
        op = "messages.send"
        to: str | None = None
        try:
            self._check_auth(request)
            phone_number_id = request.match_info["phone_number_id"]
            self._check_object_id(phone_number_id)
            payload = await self._json(request)
            raw_to = payload.get("to")
            to = str(raw_to) if raw_to else None
            record, trigger, category = await self._accept(phone_number_id, payload)
        except MetaError as err:
            return self._log_error(op, to, err)
        self.ctx.store.log_request(
            channel="whatsapp",
            operation=op,
            to=record.to,
            outcome="accepted",
            status_code=200,
            message_id=record.id,
        )
        self.ctx.sender.spawn(self._progress(record, phone_number_id, trigger, category))
        if trigger.kind is Kind.HANG:
            # Meta has the message and sends its webhooks; the client never hears.
            return await never_answer(self.ctx.stopping, request)
        wa_id = record.to.lstrip("+")
        message: dict[str, Any] = {"id": record.provider_message_id}
        if payload.get("type") == "template":
            message["message_status"] = "accepted"
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": wa_id}],
                "messages": [message],
            }
        )

    async def _accept(
        self, phone_number_id: str, payload: dict[str, Any]
    ) -> tuple[Message, Trigger, str]:
        if payload.get("messaging_product") != "whatsapp":
            raise MetaError(100, "The parameter messaging_product is required.")
        raw_to = payload.get("to")
        if not raw_to:
            raise MetaError(100, "The parameter to is required.")
        digits = re.sub(r"[\s()+\-.]", "", str(raw_to))
        if not digits.isdigit() or not 7 <= len(digits) <= 15:
            raise MetaError(
                131009, "Parameter value is not valid", details=f"Invalid 'to' number: {raw_to}"
            )
        to = "+" + digits
        kind = payload.get("type", "text")
        if kind == "text":
            text = payload.get("text")
            body = text.get("body") if isinstance(text, dict) else None
            if not isinstance(body, str) or not body:
                raise MetaError(100, "The parameter text['body'] is required.")
            if len(body) > 4096:
                raise MetaError(100, "Param text['body'] must be at most 4096 characters long.")
            key: tuple[Any, ...] = ("whatsapp", to, "text", body)
            category = "service"
        elif kind == "template":
            template, body, params = self._resolve_template(payload.get("template"))
            key = ("whatsapp", to, template.name, template.language, tuple(params))
            category = template.category.lower()
        else:
            raise MetaError(
                131009, "Parameter value is not valid", details=f"Unsupported message type: {kind}"
            )

        trigger = phone_trigger(to)
        verdict = await gate(trigger, self.ctx.counter, key, self.ctx.config.slow_seconds)
        if verdict is Verdict.INVALID:
            raise MetaError(
                131026,
                "Message undeliverable",
                details="Message failed to send because the recipient is not a WhatsApp user.",
            )
        if verdict is Verdict.BLOCKED:
            raise MetaError(
                131050,
                "Unable to deliver the message. This recipient has chosen to stop "
                "receiving marketing messages on WhatsApp from your business.",
            )
        if verdict is Verdict.RATE_LIMIT:
            raise MetaError(130429, "Rate limit hit", 429, headers={"Retry-After": "1"})
        if verdict is Verdict.TRANSIENT:
            raise MetaError(
                131016, "Service unavailable", 503, details="A service is temporarily unavailable."
            )
        record = self.ctx.store.add_message(
            channel="whatsapp",
            to=to,
            from_=phone_number_id,
            body=body,
            provider_message_id=_wamid(),
            request=payload,
            status="accepted",
        )
        return record, trigger, category

    def _resolve_template(self, spec: Any) -> tuple[Template, str, list[str]]:
        if not isinstance(spec, dict) or not spec.get("name"):
            raise MetaError(100, "The parameter template['name'] is required.")
        name = str(spec["name"])
        language = spec.get("language")
        code = language.get("code") if isinstance(language, dict) else None
        if not code:
            raise MetaError(100, "The parameter template['language']['code'] is required.")
        template = next(
            (
                t
                for t in self.templates.values()
                if t.name == name and t.language == code and t.status == "APPROVED"
            ),
            None,
        )
        if template is None:
            raise MetaError(
                132001,
                "Template name does not exist in the translation",
                details=f"template name ({name}) does not exist in {code}",
            )
        params: list[str] = []
        components = spec.get("components") or []
        if not isinstance(components, list):
            raise MetaError(
                100, "Invalid parameter", details="template['components'] must be an array"
            )
        for component in components:
            if isinstance(component, dict) and str(component.get("type", "")).lower() == "body":
                raw = component.get("parameters") or []
                params.extend(_param_text(p) for p in (raw if isinstance(raw, list) else []))
        expected = len(set(_placeholders(template.body_text)))
        if len(params) != expected:
            raise MetaError(
                132000,
                "Number of parameters does not match the expected number of params",
                details=f"body: number of localizable_params ({len(params)}) does not match "
                f"the expected number of params ({expected})",
            )
        if any(not p.strip() for p in params):
            raise MetaError(
                131008, "Required parameter is missing", details="Parameter text is empty"
            )
        body = _PLACEHOLDER.sub(lambda m: params[int(m.group(1)) - 1], template.body_text)
        return template, body, params

    async def _progress(
        self, record: Message, phone_number_id: str, trigger: Trigger, category: str
    ) -> None:
        await asyncio.sleep(self.ctx.config.callback_delay)
        if trigger.kind is Kind.NO_CALLBACK:
            return
        conversation = {"id": secrets.token_hex(16), "origin": {"type": category}}
        display_number = self.ctx.config.whatsapp_display_phone_number
        steps = ["sent", "failed" if trigger.kind is Kind.CALLBACK_FAIL else "delivered"]
        for status in steps:
            record.status = status
            entry: dict[str, Any] = {
                "id": record.provider_message_id,
                "status": status,
                "timestamp": str(int(time.time())),
                "recipient_id": record.to.lstrip("+"),
            }
            # Meta echoes the sender's tracking string in every status webhook.
            opaque = record.request.get("biz_opaque_callback_data")
            if isinstance(opaque, str) and opaque:
                entry["biz_opaque_callback_data"] = opaque
            if status == "failed":
                record.error_code = 131026
                entry["errors"] = [
                    {
                        "code": 131026,
                        "title": "Message undeliverable",
                        "message": "Message undeliverable",
                        "error_data": {
                            "details": "Message failed to send because the recipient's phone "
                            "is unreachable (sandbox failure trigger)."
                        },
                        "href": _ERROR_DOCS,
                    }
                ]
            else:
                entry["conversation"] = conversation
                entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": category}
            body = {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": self.ctx.config.whatsapp_waba_id,
                        "changes": [
                            {
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {
                                        "display_phone_number": display_number,
                                        "phone_number_id": phone_number_id,
                                    },
                                    "statuses": [entry],
                                },
                                "field": "messages",
                            }
                        ],
                    }
                ],
            }
            await self._post_webhook(body, status, record)

    # -- templates ---------------------------------------------------------

    async def create_template(self, request: web.Request) -> web.Response:
        op = "message_templates.create"
        name: str | None = None
        try:
            self._check_auth(request)
            waba_id = request.match_info["waba_id"]
            self._check_object_id(waba_id)
            payload = await self._json(request)
            name = str(payload.get("name", "")) or None
            template = self._validate_template(waba_id, payload)
        except MetaError as err:
            return self._log_error(op, name, err)
        self.templates[template.id] = template
        self.ctx.store.log_request(
            channel="whatsapp", operation=op, to=template.name, outcome="accepted", status_code=200
        )
        self.ctx.sender.spawn(self._review(template))
        return web.json_response(
            {"id": template.id, "status": template.status, "category": template.category}
        )

    def _validate_template(self, waba_id: str, payload: dict[str, Any]) -> Template:
        def invalid(details: str, subcode: int = 2388001) -> MetaError:
            return MetaError(100, "Invalid parameter", details=details, subcode=subcode)

        name = str(payload.get("name", ""))
        if not _TEMPLATE_NAME.match(name):
            raise invalid("name must be 1-512 lowercase letters, digits or underscores")
        language = str(payload.get("language", ""))
        if not language:
            raise invalid("language is required")
        category = str(payload.get("category", "")).upper()
        if category not in _CATEGORIES:
            raise invalid("category must be one of AUTHENTICATION, MARKETING, UTILITY")
        components = payload.get("components")
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise invalid("components must be an array of objects")
        bodies = [c for c in components if str(c.get("type", "")).upper() == "BODY"]
        if len(bodies) != 1 or not str(bodies[0].get("text", "")).strip():
            raise invalid("exactly one BODY component with text is required")
        numbers = _placeholders(str(bodies[0]["text"]))
        distinct = sorted(set(numbers))
        if distinct != list(range(1, len(distinct) + 1)):
            raise invalid("body placeholders must be sequential: {{1}}, {{2}}, ...", 2388043)
        if distinct:
            example = bodies[0].get("example")
            samples = example.get("body_text") if isinstance(example, dict) else None
            if (
                not isinstance(samples, list)
                or not samples
                or not isinstance(samples[0], list)
                or len(samples[0]) != len(distinct)
            ):
                raise invalid(
                    "Message template 'example' field is missing or does not provide one "
                    "sample per body parameter",
                    2388043,
                )
        for existing in self.templates.values():
            if (
                existing.waba_id == waba_id
                and existing.name == name
                and existing.language == language
            ):
                raise invalid("Content in this language already exists", 2388024)
        template_id = str(1000000000000000 + next(self._ids))
        return Template(
            id=template_id,
            waba_id=waba_id,
            name=name,
            language=language,
            category=category,
            components=components,
        )

    async def _review(self, template: Template) -> None:
        await asyncio.sleep(self.ctx.config.template_review_delay)
        if template_rejected(template.name):
            template.status, template.rejected_reason = "REJECTED", "INVALID_FORMAT"
        else:
            template.status, template.rejected_reason = "APPROVED", "NONE"
        value: dict[str, Any] = {
            "event": template.status,
            "message_template_id": int(template.id),
            "message_template_name": template.name,
            "message_template_language": template.language,
            "reason": template.rejected_reason,
            "message_template_category": template.category,
        }
        body = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": template.waba_id,
                    "time": int(time.time()),
                    "changes": [{"value": value, "field": "message_template_status_update"}],
                }
            ],
        }
        await self._post_webhook(body, f"template_{template.status.lower()}", None)

    async def list_templates(self, request: web.Request) -> web.Response:
        try:
            self._check_auth(request)
        except MetaError as err:
            return err.response()
        waba_id = request.match_info["waba_id"]
        name = request.query.get("name", "")
        status = request.query.get("status", "").upper()
        language = request.query.get("language", "")
        found = [
            t.to_json()
            for t in self.templates.values()
            if t.waba_id == waba_id
            and (not name or name in t.name)
            and (not status or t.status == status)
            and (not language or t.language == language)
        ]
        cursor = base64.b64encode(b"sandbox").decode()
        return web.json_response(
            {"data": found, "paging": {"cursors": {"before": cursor, "after": cursor}}}
        )

    async def delete_template(self, request: web.Request) -> web.Response:
        try:
            self._check_auth(request)
        except MetaError as err:
            return err.response()
        waba_id = request.match_info["waba_id"]
        name = request.query.get("name", "")
        doomed = [k for k, t in self.templates.items() if t.waba_id == waba_id and t.name == name]
        if not name or not doomed:
            return MetaError(
                100, "Invalid parameter", details=f"template {name!r} not found"
            ).response()
        for key in doomed:
            del self.templates[key]
        return web.json_response({"success": True})

    async def inspect_templates(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"templates": [t.to_json() | {"waba_id": t.waba_id} for t in self.templates.values()]}
        )

    async def verify_webhook(self, request: web.Request) -> web.Response:
        """Perform Meta's GET verification handshake against the configured webhook URL."""
        cfg = self.ctx.config
        if not cfg.whatsapp_webhook_url:
            return web.json_response(
                {"ok": False, "error": "no --whatsapp-webhook-url"}, status=400
            )
        challenge = str(secrets.randbelow(10**9))
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": cfg.meta_verify_token,
            "hub.challenge": challenge,
        }
        try:
            response = await self.ctx.sender.request("GET", cfg.whatsapp_webhook_url, params=params)
        except Exception as exc:  # any network failure is a failed verification
            return web.json_response({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        ok = response.status_code == 200 and response.text.strip() == challenge
        return web.json_response(
            {
                "ok": ok,
                "status": response.status_code,
                "challenge": challenge,
                "response": response.text[:1000],
            }
        )
