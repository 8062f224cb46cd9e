"""Provider failover through Envoy, on a private platform whose SMS goes
twilio then vonage and email smtp then sendgrid, with breakers that open
after 3 consecutive transient failures and are probed after 4 s.

A provider outage is the sandbox's switch (`POST /sandbox/api/outage`); calls
are counted at the sandbox per provider (`?provider=`). Its own stack,
because an outage there would fail other tests' sends."""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from runner.stack import Ports, Stack
from tests.conftest import TEST_SETTINGS, Tenant, signup
from tests.e2e.waiting import wait_for

THRESHOLD = 3
COOLDOWN = 4.0


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        data_dir=tmp_path_factory.mktemp("failover"),
        ports=Ports.free(),
        overrides={
            **TEST_SETTINGS,
            "CLARION_SMS_PROVIDERS": "twilio,vonage",
            "CLARION_EMAIL_PROVIDERS": "smtp,sendgrid",
            "CLARION_BREAKER_THRESHOLD": str(THRESHOLD),
            "CLARION_BREAKER_COOLDOWN_SECONDS": str(COOLDOWN),
        },
        headless=True,
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def api(platform: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.api_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def sandbox(platform: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.sandbox_url, timeout=30) as client:
        yield client


@pytest.fixture
def tenant(api: httpx.Client) -> Tenant:
    return signup(api)


def _send(tenant: Tenant, channel: str, address: str, body: str) -> str:
    field = {"sms": "phone", "email": "email"}[channel]
    notification: dict[str, Any] = {"channels": [channel], "body": body}
    if channel == "email":
        notification["subject"] = "failover"
    response = tenant.post(
        "/api/v1/notifications/send",
        {"recipient": {field: address}, "notification": notification},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["notification_id"])


def _final(tenant: Tenant, notification_id: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        delivery = tenant.get(f"/api/v1/notifications/{notification_id}").json()["deliveries"][0]
        return delivery if delivery["status"] in ("delivered", "failed") else None

    result: dict[str, Any] = wait_for(check, timeout=timeout)
    return result


def _count(sandbox: httpx.Client, provider: str, to: str | None) -> int:
    """The provider's API calls for `to`; None: all of them (calls refused by
    an outage name no recipient)."""
    requests = sandbox.get(
        "/sandbox/api/requests", params={"provider": provider, "limit": "100000"}
    ).json()["requests"]
    return sum(1 for r in requests if to is None or r.get("to") == to)


def _number() -> str:
    # A fresh ordinary number per send (no trigger), so counts are per send.
    return f"+1650253{uuid.uuid4().int % 10_000:04d}"


def _attempts(delivery: dict[str, Any]) -> list[str]:
    return [e["detail"] for e in delivery["history"] if e["kind"] == "attempt"]


def test_sms_outage_fails_over_opens_the_breaker_and_closes_it_again(
    platform: Stack, tenant: Tenant, sandbox: httpx.Client
) -> None:
    twilio_before = _count(sandbox, "twilio", None)
    outage = sandbox.post("/sandbox/api/outage", json={"provider": "twilio", "seconds": 3600})
    assert outage.status_code == 200, outage.text
    started = time.time()
    try:
        # The first sends fail at twilio, then move to vonage and are delivered
        # by vonage's signed receipt (until it arrives they would stay `sent`).
        first = [_number() for _ in range(THRESHOLD)]
        ids = [_send(tenant, "sms", n, f"failover {n}") for n in first]
        for n, notification_id in zip(first, ids, strict=True):
            delivery = _final(tenant, notification_id)
            assert delivery["status"] == "delivered", delivery
            attempts = _attempts(delivery)
            assert any("(via twilio)" in a for a in attempts), attempts
            assert attempts[-1] == "accepted via vonage", attempts
            assert _count(sandbox, "vonage", n) == 1
        # Three consecutive twilio failures, one per send: its breaker is
        # open, so the next send goes straight to vonage.
        assert platform.database_url
        with psycopg.connect(platform.database_url) as conn:
            row = conn.execute(
                "SELECT state, extract(epoch FROM opened_at) FROM provider_breakers"
                " WHERE provider = 'twilio'"
            ).fetchone()
        assert row is not None and row[0] == "open", row
        print(f"\ntwilio outage start -> breaker open: {float(row[1]) - started:.2f} s")
        assert _count(sandbox, "twilio", None) == twilio_before + THRESHOLD
        later = _number()
        delivery = _final(tenant, _send(tenant, "sms", later, "after open"))
        assert delivery["status"] == "delivered", delivery
        assert _count(sandbox, "twilio", None) == twilio_before + THRESHOLD
        assert _count(sandbox, "vonage", later) == 1
        assert _attempts(delivery) == ["accepted via vonage"]
    finally:
        sandbox.delete("/sandbox/api/outage", params={"provider": "twilio"})
    # After the cool-down, a probe goes to twilio again and its success
    # closes the breaker: sends are back at twilio.
    time.sleep(COOLDOWN + 0.5)
    probe = _number()
    delivery = _final(tenant, _send(tenant, "sms", probe, "probe"))
    assert delivery["status"] == "delivered", delivery
    assert _count(sandbox, "twilio", probe) == 1 and _count(sandbox, "vonage", probe) == 0
    closed = _number()
    delivery = _final(tenant, _send(tenant, "sms", closed, "closed"))
    assert _attempts(delivery) == ["accepted via twilio"], delivery


def test_a_permanent_error_does_not_fail_over(tenant: Tenant, sandbox: httpx.Client) -> None:
    bad = "+15005550001"
    before = {p: _count(sandbox, p, bad) for p in ("twilio", "vonage")}
    delivery = _final(tenant, _send(tenant, "sms", bad, "bad number"))
    assert delivery["status"] == "failed", delivery
    assert _count(sandbox, "twilio", bad) == before["twilio"] + 1
    assert _count(sandbox, "vonage", bad) == before["vonage"]


def test_email_outage_fails_over_to_sendgrid(tenant: Tenant, sandbox: httpx.Client) -> None:
    outage = sandbox.post("/sandbox/api/outage", json={"provider": "smtp", "seconds": 3600})
    assert outage.status_code == 200, outage.text
    try:
        address = f"user-{uuid.uuid4().hex[:8]}@example.com"
        delivery = _final(tenant, _send(tenant, "email", address, "email failover"))
        assert delivery["status"] == "delivered", delivery
        attempts = _attempts(delivery)
        assert any("(via smtp)" in a for a in attempts), attempts
        assert attempts[-1] == "accepted via sendgrid", attempts
        assert _count(sandbox, "sendgrid", address) == 1
        assert _count(sandbox, "smtp", None) >= 1
    finally:
        sandbox.delete("/sandbox/api/outage", params={"provider": "smtp"})
