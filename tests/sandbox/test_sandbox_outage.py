"""The outage switch: each provider answers its own transient error until the time passes."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from .helpers import SID, TOKEN, SandboxProcess
from .test_sandbox_sendgrid import API_KEY, mail


@pytest.fixture(autouse=True)
async def no_outage(sandbox: SandboxProcess) -> AsyncIterator[None]:
    yield
    async with httpx.AsyncClient() as c:
        await c.delete(sandbox.http + "/sandbox/api/outage")


async def outage(
    client: httpx.AsyncClient, sandbox: SandboxProcess, provider: str, seconds: float
) -> None:
    response = await client.post(
        sandbox.http + "/sandbox/api/outage", json={"provider": provider, "seconds": seconds}
    )
    assert response.status_code == 200, response.text


async def twilio_send(client: httpx.AsyncClient, sandbox: SandboxProcess) -> httpx.Response:
    return await client.post(
        f"{sandbox.http}/2010-04-01/Accounts/{SID}/Messages.json",
        data={"To": "+14155550123", "From": "+15005550006", "Body": uuid.uuid4().hex},
        auth=(SID, TOKEN),
    )


async def test_twilio_outage_then_recovery(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    await outage(client, sandbox, "twilio", 1.0)
    down = await twilio_send(client, sandbox)
    assert down.status_code == 503 and down.json()["code"] == 20500
    listed = (await client.get(sandbox.http + "/sandbox/api/outage")).json()["outages"]
    assert 0 < listed["twilio"] <= 1.0
    # Other providers are unaffected.
    sg = await client.post(
        sandbox.http + "/v3/mail/send",
        json=mail("ok@example.com"),
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert sg.status_code == 202
    await asyncio.sleep(1.1)
    assert (await twilio_send(client, sandbox)).status_code == 201
    logged = (
        await client.get(sandbox.http + "/sandbox/api/rejections", params={"provider": "twilio"})
    ).json()["rejections"]
    assert any(r["operation"] == "outage" and r["status_code"] == 503 for r in logged)


async def test_delete_ends_outage_and_other_providers(
    client: httpx.AsyncClient, sandbox: SandboxProcess
) -> None:
    await outage(client, sandbox, "vonage", 30)
    await outage(client, sandbox, "sendgrid", 30)
    vonage = await client.post(
        sandbox.http + "/sms/json",
        data={
            "api_key": "sandboxkey",
            "api_secret": "sandbox-vonage-secret",
            "from": "C",
            "to": "14155550100",
            "text": "x",
        },
    )
    assert vonage.status_code == 200
    assert vonage.json()["messages"][0] == {"status": "5", "error-text": "Internal Error"}
    sg = await client.post(
        sandbox.http + "/v3/mail/send",
        json=mail("ok@example.com"),
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert sg.status_code == 503 and sg.json()["errors"]
    cleared = await client.delete(
        sandbox.http + "/sandbox/api/outage", params={"provider": "vonage"}
    )
    assert set(cleared.json()["outages"]) == {"sendgrid"}
    again = await client.post(
        sandbox.http + "/sms/json",
        data={
            "api_key": "sandboxkey",
            "api_secret": "sandbox-vonage-secret",
            "from": "C",
            "to": "14155550100",
            "text": "x",
        },
    )
    assert again.json()["messages"][0]["status"] == "0"


async def test_smtp_outage_is_a_transient_reply(sandbox: SandboxProcess) -> None:
    async with httpx.AsyncClient() as client:
        await outage(client, sandbox, "smtp", 30)

    def deliver() -> None:
        with smtplib.SMTP(sandbox.smtp_host, sandbox.smtp_port, timeout=10) as smtp:
            smtp.sendmail("a@clarion.test", ["b@example.com"], "Subject: x\r\n\r\nhi")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(deliver)
    code, _ = refused.value.recipients["b@example.com"]
    assert code == 451


async def test_bad_requests(client: httpx.AsyncClient, sandbox: SandboxProcess) -> None:
    unknown = await client.post(sandbox.http + "/sandbox/api/outage", json={"provider": "nope"})
    assert unknown.status_code == 400
    for seconds in (0, -1, "x", True):
        bad = await client.post(
            sandbox.http + "/sandbox/api/outage", json={"provider": "twilio", "seconds": seconds}
        )
        assert bad.status_code == 400
    assert (
        await client.post(sandbox.http + "/sandbox/api/outage", content=b"{")
    ).status_code == 400
