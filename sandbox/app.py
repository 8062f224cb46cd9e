"""HTTP wiring, the inspection API/page, and the Sandbox lifecycle."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from .config import Config
from .context import Context
from .email import start_smtp
from .outage import OutageApi, outage_middleware
from .sendgrid import SendGridApi
from .slack import SlackApi
from .store import Store
from .twilio import TwilioApi
from .vonage import VonageApi
from .webhooks import CallbackSender
from .whatsapp import WhatsAppApi

PAGE = Path(__file__).with_name("page.html")


def _limit(request: web.Request, default: int) -> int:
    try:
        return max(1, int(request.query.get("limit", default)))
    except ValueError:
        return default


class InspectionApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/sandbox", self.page),
            web.get("/sandbox/", self.page),
            web.get("/sandbox/api/messages", self.messages),
            web.delete("/sandbox/api/messages", self.clear),
            web.get("/sandbox/api/messages/{id}", self.message),
            web.get("/sandbox/api/requests", self.requests),
            web.get("/sandbox/api/rejections", self.rejections),
            web.get("/sandbox/api/callbacks", self.callbacks),
        ]

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(encoding="utf-8"), content_type="text/html")

    async def messages(self, request: web.Request) -> web.Response:
        found = self.ctx.store.find_messages(
            channel=request.query.get("channel") or None,
            to=request.query.get("to") or None,
            limit=_limit(request, 100),
            provider=request.query.get("provider") or None,
        )
        return web.json_response({"messages": [m.to_json() for m in found]})

    async def message(self, request: web.Request) -> web.Response:
        found = self.ctx.store.get(request.match_info["id"])
        if found is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(found.to_json())

    async def clear(self, request: web.Request) -> web.Response:
        self.ctx.reset()
        return web.json_response({"ok": True})

    def _requests(self, request: web.Request, outcomes: set[str] | None, key: str) -> web.Response:
        wanted = request.query.get("outcome")
        if wanted:
            outcomes = {wanted} if outcomes is None else outcomes & {wanted}
        found = self.ctx.store.find_requests(
            channel=request.query.get("channel") or None,
            to=request.query.get("to") or None,
            outcomes=outcomes,
            limit=_limit(request, 1000),
            provider=request.query.get("provider") or None,
        )
        return web.json_response({key: [r.to_json() for r in found]})

    async def requests(self, request: web.Request) -> web.Response:
        return self._requests(request, None, "requests")

    async def rejections(self, request: web.Request) -> web.Response:
        return self._requests(request, {"rejected", "transient"}, "rejections")

    async def callbacks(self, request: web.Request) -> web.Response:
        found = list(reversed(self.ctx.store.callbacks))[: _limit(request, 1000)]
        return web.json_response({"callbacks": [c.to_json() for c in found]})


def build_app(ctx: Context) -> web.Application:
    app = web.Application(client_max_size=32 * 1024 * 1024, middlewares=[outage_middleware(ctx)])
    apis = (
        InspectionApi(ctx),
        OutageApi(ctx),
        TwilioApi(ctx),
        VonageApi(ctx),
        SendGridApi(ctx),
        SlackApi(ctx),
        WhatsAppApi(ctx),
    )
    for api in apis:
        app.add_routes(api.routes())
    return app


class Sandbox:
    """Both listeners plus the callback machinery; start() then stop()."""

    def __init__(self, config: Config) -> None:
        self.config = config
        store = Store()
        sender = CallbackSender(store, config.callback_retries, config.callback_backoff)
        self.ctx = Context(config=config, store=store, sender=sender)
        self._runner: web.AppRunner | None = None
        self._smtp: asyncio.Server | None = None
        self.http_port = 0
        self.smtp_port = 0

    async def start(self) -> None:
        self._runner = web.AppRunner(build_app(self.ctx), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.http_port)
        await site.start()
        # aiohttp exposes the bound port only here; the server is uvloop's
        # or asyncio's, both with `sockets`.
        sockets = getattr(site._server, "sockets", None)
        assert sockets, "the HTTP server did not bind"
        self.http_port = sockets[0].getsockname()[1]
        self._smtp = await start_smtp(self.ctx)
        self.smtp_port = self._smtp.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.ctx.stopping.set()
        if self._smtp is not None:
            self._smtp.close()
            await self._smtp.wait_closed()
        await self.ctx.sender.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
