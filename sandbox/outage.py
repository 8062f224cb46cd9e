"""The outage switch: make one provider fail every request for a while.

`POST /sandbox/api/outage {"provider": "twilio", "seconds": 30}` starts an
outage, `DELETE /sandbox/api/outage` (optionally `?provider=`) ends it early,
`GET /sandbox/api/outage` lists the active ones. While a provider is out, each
of its API calls gets the transient error that provider documents for its own
trouble, so a client sees what it would see in a real incident:

- twilio (Messages, Calls): HTTP 503, code 20500 "An internal server error has
  occurred" (https://www.twilio.com/docs/errors/20500; 503 is what Twilio's
  edge answers while it sheds load, https://www.twilio.com/docs/usage/requests-to-twilio);
- vonage (SMS API): HTTP 200 with messages[0].status "5", "Internal Error"
  (https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms:
  "There was an error processing your request in the Platform"; the SMS API
  reports its errors in the body, not the HTTP status);
- sendgrid (v3 Mail Send): HTTP 503 with SendGrid's {"errors": [...]} body
  (https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/responses:
  5xx means "try again later");
- slack (Web API): HTTP 503 {"ok": false, "error": "service_unavailable"}
  (https://api.slack.com/web#responses: 5xx during incidents, retry later);
- whatsapp (Cloud API): HTTP 503, code 131016 "Service unavailable"
  (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes);
- smtp: every RCPT is answered `451 4.3.2 System not accepting network
  messages` (RFC 5321 section 4.2.2 / RFC 3463 4.3.2), a transient reply.

Look-ups (GET) fail too, as in a real outage. The sandbox's own inspection
routes are never affected.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .context import Context

PROVIDERS = ("twilio", "vonage", "sendgrid", "slack", "whatsapp", "smtp")
MAX_SECONDS = 24 * 3600.0

_WHATSAPP = re.compile(r"^/v\d+\.\d+/\d+/(messages|message_templates)$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Outages:
    """Active outages: provider -> monotonic deadline."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def start(self, provider: str, seconds: float) -> float:
        until = time.monotonic() + seconds
        self._until[provider] = until
        return until

    def clear(self, provider: str | None = None) -> None:
        if provider is None:
            self._until.clear()
        else:
            self._until.pop(provider, None)

    def active(self, provider: str) -> bool:
        until = self._until.get(provider)
        if until is None:
            return False
        if time.monotonic() >= until:
            self._until.pop(provider, None)
            return False
        return True

    def remaining(self) -> dict[str, float]:
        now = time.monotonic()
        return {p: round(u - now, 3) for p, u in self._until.items() if u > now}


def provider_for_path(path: str) -> tuple[str, str] | None:
    """(provider, channel) of a provider API path, None for the sandbox's own routes."""
    if path.startswith("/2010-04-01/"):
        return "twilio", "voice" if "/Calls" in path else "sms"
    if path == "/sms/json":
        return "vonage", "sms"
    if path.startswith("/v3/mail/send"):
        return "sendgrid", "email"
    if path.startswith("/api/"):
        return "slack", "slack"
    if _WHATSAPP.match(path):
        return "whatsapp", "whatsapp"
    return None


def _outage_response(provider: str) -> tuple[web.Response, Any]:
    if provider == "twilio":
        body: Any = {
            "code": 20500,
            "message": "An internal server error has occurred",
            "more_info": "https://www.twilio.com/docs/errors/20500",
            "status": 503,
        }
        return web.json_response(body, status=503), body
    if provider == "vonage":
        body = {
            "message-count": "1",
            "messages": [{"status": "5", "error-text": "Internal Error"}],
        }
        return web.json_response(body, status=200), body
    if provider == "sendgrid":
        body = {"errors": [{"message": "Service Unavailable", "field": None, "help": None}]}
        return web.json_response(body, status=503), body
    if provider == "slack":
        body = {"ok": False, "error": "service_unavailable"}
        return web.json_response(body, status=503), body
    body = {
        "error": {
            "message": "(#131016) Service unavailable",
            "type": "OAuthException",
            "code": 131016,
            "error_data": {"details": "A service is temporarily unavailable."},
            "fbtrace_id": "Sandbox-outage",
        }
    }
    return web.json_response(body, status=503), body


def outage_middleware(ctx: Context) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        found = provider_for_path(request.path)
        if found is None or not ctx.outages.active(found[0]):
            return await handler(request)
        provider, channel = found
        response, body = _outage_response(provider)
        ctx.store.log_request(
            channel=channel,
            operation="outage",
            to=None,
            outcome="transient",
            status_code=response.status,
            error=body,
            provider=provider,
        )
        return response

    return middleware


class OutageApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/sandbox/api/outage", self.start),
            web.get("/sandbox/api/outage", self.list),
            web.delete("/sandbox/api/outage", self.clear),
        ]

    async def start(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        provider = body.get("provider") if isinstance(body, dict) else None
        seconds = body.get("seconds", 30) if isinstance(body, dict) else None
        if provider not in PROVIDERS:
            return web.json_response(
                {"error": f"provider must be one of {', '.join(PROVIDERS)}"}, status=400
            )
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 < seconds <= MAX_SECONDS
        ):
            return web.json_response(
                {"error": f"seconds must be a number in (0, {MAX_SECONDS:.0f}]"}, status=400
            )
        self.ctx.outages.start(provider, float(seconds))
        return web.json_response({"provider": provider, "seconds": seconds})

    async def list(self, request: web.Request) -> web.Response:
        return web.json_response({"outages": self.ctx.outages.remaining()})

    async def clear(self, request: web.Request) -> web.Response:
        provider = request.query.get("provider") or None
        if provider is not None and provider not in PROVIDERS:
            return web.json_response(
                {"error": f"provider must be one of {', '.join(PROVIDERS)}"}, status=400
            )
        self.ctx.outages.clear(provider)
        return web.json_response({"outages": self.ctx.outages.remaining()})
