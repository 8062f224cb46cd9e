"""The delivery-time SSRF check on real connections: the webhooks process's
resolver refuses a name that resolves to loopback before any connection is
made, and literal addresses are refused before the request."""

import asyncio

import aiohttp
import pytest
from aiohttp import web

from server.domain.errors import ClarionError
from server.services.webhook_sender import CheckedResolver, RefusedAddress, check_target


async def test_the_resolver_refuses_a_name_resolving_to_loopback() -> None:
    with pytest.raises(RefusedAddress, match=r"127\.0\.0\.1"):
        await CheckedResolver(allow_private=False).resolve("localhost", 443)


async def test_no_request_reaches_a_loopback_server_through_its_name() -> None:
    hits: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        refusing = aiohttp.TCPConnector(
            resolver=CheckedResolver(allow_private=False), use_dns_cache=False
        )
        async with aiohttp.ClientSession(connector=refusing) as http:
            with pytest.raises(aiohttp.ClientConnectorDNSError) as refused:
                await http.post(f"http://localhost:{port}/hook", data=b"{}")
        assert isinstance(refused.value.os_error, RefusedAddress)
        # The same server, allowed (development): the request arrives.
        allowing = aiohttp.TCPConnector(resolver=CheckedResolver(allow_private=True))
        async with aiohttp.ClientSession(connector=allowing) as http:
            async with http.post(f"http://localhost:{port}/hook", data=b"{}") as response:
                assert response.status == 200
        assert hits == ["/hook"]
    finally:
        await asyncio.wait_for(runner.cleanup(), 5)


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/x", "https://[::1]/x", "https://169.254.169.254/x", "http://example.com/x"],
)
def test_literal_private_addresses_and_http_are_refused_before_sending(url: str) -> None:
    with pytest.raises(ClarionError):
        check_target(url, allow_private=False)
