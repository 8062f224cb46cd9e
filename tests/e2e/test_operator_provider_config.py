"""Operators' configuration is the truth: with the sandbox off, the stack
leaves the provider addresses the operator set alone. A second sandbox
process on other ports poses as the real providers; messages must arrive
there, and their signed receipts must come back and be accepted."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runner.stack import ROOT, Ports, Stack
from tests.conftest import TEST_SETTINGS, signup
from tests.e2e.waiting import wait_for, wait_for_status

# Not the sandbox defaults, so the start-up refusal does not fire.
SECRETS = {
    "CLARION_TWILIO_ACCOUNT_SID": "AC5ef8732a3c49700934481addd5ce1659",
    "CLARION_TWILIO_AUTH_TOKEN": "f3a1c09b7e2d4c5a8b6e9d0c1f2a3b4c",
    "CLARION_MAILGUN_SIGNING_KEY": "key-7d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a",
    "CLARION_SLACK_BOT_TOKEN": "xoxb-1111111111-2222222222-operatorTokenValue",
    "CLARION_META_ACCESS_TOKEN": "EAAGoperatorAccessToken0123456789",
    "CLARION_META_APP_SECRET": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "CLARION_META_VERIFY_TOKEN": "operator-verify-token-5b8e",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def real_provider(tmp_path: Path) -> Iterator[tuple[str, int, Ports]]:
    """A `python -m sandbox` started by the test (not by the stack), with the
    operator's secrets; yields its HTTP base, its SMTP port and the ports the
    stack will use (its webhook Envoy takes this provider's callbacks)."""
    ports = Ports.free()
    http_port, smtp_port = _free_port(), _free_port()
    webhooks = f"http://127.0.0.1:{ports.webhooks}/callbacks"
    log = (tmp_path / "real-provider.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "sandbox",
            "--http-port", str(http_port), "--smtp-port", str(smtp_port),
            "--twilio-account-sid", SECRETS["CLARION_TWILIO_ACCOUNT_SID"],
            "--twilio-auth-token", SECRETS["CLARION_TWILIO_AUTH_TOKEN"],
            "--mailgun-signing-key", SECRETS["CLARION_MAILGUN_SIGNING_KEY"],
            "--mailgun-webhook-url", f"{webhooks}/mailgun",
            "--slack-bot-token", SECRETS["CLARION_SLACK_BOT_TOKEN"],
            "--meta-access-token", SECRETS["CLARION_META_ACCESS_TOKEN"],
            "--meta-app-secret", SECRETS["CLARION_META_APP_SECRET"],
            "--meta-verify-token", SECRETS["CLARION_META_VERIFY_TOKEN"],
            "--whatsapp-webhook-url", f"{webhooks}/whatsapp",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _listening(http_port) and _listening(smtp_port), timeout=30)
        yield f"http://127.0.0.1:{http_port}", smtp_port, ports
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_operator_provider_addresses_win_with_the_sandbox_off(
    real_provider: tuple[str, int, Ports], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider_url, smtp_port, ports = real_provider
    # The operator's environment, as for `make run` against real providers.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CLARION_DATABASE_URL", raising=False)
    operator = {
        **SECRETS,
        "CLARION_RUN_SANDBOX": "false",
        "CLARION_TWILIO_API_BASE": provider_url,
        "CLARION_SLACK_API_BASE": provider_url,
        "CLARION_META_API_BASE": provider_url,
        "CLARION_SMTP_HOST": "127.0.0.1",
        "CLARION_SMTP_PORT": str(smtp_port),
    }
    for name, value in operator.items():
        monkeypatch.setenv(name, value)
    platform = Stack(
        data_dir=tmp_path / "stack", ports=ports, overrides=TEST_SETTINGS, headless=True
    )
    assert {k: platform.env()[k] for k in operator} == operator
    platform.start()
    try:
        assert "sandbox" not in {child.spec.name for child in platform.children}
        assert not _listening(ports.sandbox_http) and not _listening(ports.sandbox_smtp)
        with httpx.Client(base_url=platform.api_url, timeout=30) as api:
            tenant = signup(api)
            started = time.monotonic()
            sent = tenant.post(
                "/api/v1/notifications/send",
                {
                    "recipient": {"phone": "+14155550142", "email": "ops@acme.example"},
                    "notification": {
                        "channels": ["sms", "email"],
                        "subject": "Real provider",
                        "body": "sent to the operator's provider",
                    },
                },
            )
            assert sent.status_code == 200, sent.text
            final = wait_for_status(
                tenant, sent.json()["notification_id"], {"delivered", "failed"}, timeout=60
            )
            # Delivered: the receipts, signed with the operator's secrets by
            # the provider at the operator's address, were accepted.
            assert final["status"] == "delivered", final
            assert {d["status"] for d in final["deliveries"]} == {"delivered"}, final
        with httpx.Client(base_url=provider_url, timeout=10) as provider:
            messages = provider.get("/sandbox/api/messages").json()["messages"]
        by_channel = {m["channel"]: m for m in messages}
        assert set(by_channel) == {"sms", "email"}, messages
        assert by_channel["sms"]["to"] == "+14155550142"
        assert by_channel["email"]["to"] == "ops@acme.example"
        elapsed = time.monotonic() - started
        print(f"sms + email delivered via the operator's provider in {elapsed:.1f} s")
    finally:
        platform.stop()
