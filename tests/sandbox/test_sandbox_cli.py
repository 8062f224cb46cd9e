"""The process itself: CLI/env configuration, SMTP AUTH, inspection page, shutdown."""

from __future__ import annotations

import asyncio
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest

from .helpers import ROOT, SID, TOKEN, SandboxProcess, start_sandbox

ENV = {
    "SANDBOX_SMTP_USER": "clarion",
    "SANDBOX_SMTP_PASSWORD": "s3cret",
    "SANDBOX_TWILIO_AUTH_TOKEN": "token-from-env",
}


@pytest.fixture(scope="module")
def configured() -> Iterator[SandboxProcess]:
    proc = start_sandbox("--callback-delay", "0", env=ENV)
    yield proc
    assert proc.stop() == 0, proc.stderr()


def test_help_lists_env_vars() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    for name in ("SANDBOX_HTTP_PORT", "SANDBOX_MAILGUN_WEBHOOK_URL", "SANDBOX_CALLBACK_DELAY"):
        assert name in result.stdout


async def test_ready_line_reports_real_ports(
    client: httpx.AsyncClient, configured: SandboxProcess
) -> None:
    assert configured.smtp_port > 0 and not configured.http.endswith(":0")
    assert configured.http.startswith("http://127.0.0.1:")
    assert (await client.get(configured.http + "/healthz")).json() == {"ok": True}


async def test_env_var_configures_twilio_token(
    client: httpx.AsyncClient, configured: SandboxProcess
) -> None:
    url = f"{configured.http}/2010-04-01/Accounts/{SID}/Messages.json"
    fields = {"To": "+15551260001", "From": "+15005550006", "Body": "env"}
    assert (await client.post(url, data=fields, auth=(SID, TOKEN))).status_code == 401
    assert (await client.post(url, data=fields, auth=(SID, "token-from-env"))).status_code == 201


def _mail(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "noreply@clarion.test", to, "auth"
    msg.set_content("hi")
    return msg


def _smtp_session(proc: SandboxProcess, mechanism: str | None, password: str) -> None:
    with smtplib.SMTP(proc.smtp_host, proc.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        if mechanism:
            smtp.user, smtp.password = "clarion", password
            auth = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
            smtp.auth(mechanism, auth, initial_response_ok=mechanism == "PLAIN")
        smtp.send_message(_mail(f"auth-{mechanism}@example.com"))


async def test_smtp_auth_required_when_configured(
    client: httpx.AsyncClient, configured: SandboxProcess
) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused) as unauthenticated:
        await asyncio.to_thread(_smtp_session, configured, None, "")
    assert unauthenticated.value.smtp_code == 530
    with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
        await asyncio.to_thread(_smtp_session, configured, "PLAIN", "wrong")
    assert wrong.value.smtp_code == 535
    for mechanism in ("PLAIN", "LOGIN"):
        await asyncio.to_thread(_smtp_session, configured, mechanism, "s3cret")
        found = (
            await client.get(
                f"{configured.http}/sandbox/api/messages",
                params={"to": f"auth-{mechanism}@example.com"},
            )
        ).json()
        assert found["messages"][0]["request"]["authenticated_as"] == "clarion"


async def test_inspection_page_is_self_contained(
    client: httpx.AsyncClient, configured: SandboxProcess
) -> None:
    page = await client.get(configured.http + "/sandbox/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "<table" in html and "/sandbox/api/messages" in html
    for external in ('src="http', 'href="http', "<link", "@import"):
        assert external not in html


async def test_clear_forgets_messages_and_requests(
    client: httpx.AsyncClient, configured: SandboxProcess
) -> None:
    url = f"{configured.http}/2010-04-01/Accounts/{SID}/Messages.json"
    fields = {"To": "+15551260002", "From": "+15005550006", "Body": "to be cleared"}
    assert (await client.post(url, data=fields, auth=(SID, "token-from-env"))).status_code == 201
    assert (await client.delete(f"{configured.http}/sandbox/api/messages")).json() == {"ok": True}
    assert (await client.get(f"{configured.http}/sandbox/api/messages")).json() == {"messages": []}
    assert (await client.get(f"{configured.http}/sandbox/api/requests")).json() == {"requests": []}
    missing = await client.get(f"{configured.http}/sandbox/api/messages/msg_000001")
    assert missing.status_code == 404


def test_sigterm_shuts_down_cleanly() -> None:
    proc = start_sandbox()
    assert proc.stop() == 0
    assert "Traceback" not in proc.stderr()
