"""`python -m server admin …` against a real database: finding tenants,
reporting, and refusing bad input with a message and a non-zero exit."""

import secrets
import subprocess
import sys

import httpx

from runner.stack import Stack
from tests.conftest import signup
from tests.e2e.operator import admin


def _fails(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server", "admin", *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0, done.stdout
    return done.stderr


def test_show_finds_a_tenant_by_id_or_email_and_reports_defaults(
    stack: Stack, api: httpx.Client
) -> None:
    email = f"ops-{secrets.token_hex(6)}@acme.example"
    created = api.post(
        "/portal/signup", json={"name": "Acme", "email": email, "password": "correct horse 42"}
    ).json()
    by_email = admin(stack, "show", email.upper())
    assert by_email["tenant_id"] == created["tenant_id"]
    by_id = admin(stack, "show", created["tenant_id"])
    assert by_id == by_email
    assert by_id["suspended"] is False
    assert by_id["daily_quota"] == 0 and by_id["quota_remaining"] is None
    assert by_id["rate_limits"]["send"]["per_second"] == 200
    assert "single sends" in by_id["rate_limits"]["send"]["applies_to"]


def test_overrides_are_kept_and_cleared(stack: Stack, api: httpx.Client) -> None:
    tenant = signup(api)
    admin(stack, "set-limit", tenant.tenant_id, "send", "--per-second", "5", "--burst", "10")
    report = admin(stack, "set-quota", tenant.tenant_id, "250")
    assert report["rate_limits"]["send"] == {
        "per_second": 5.0,
        "burst": 10,
        "applies_to": report["rate_limits"]["send"]["applies_to"],
    }
    assert report["daily_quota"] == 250 and report["quota_remaining"] == 250
    cleared = admin(stack, "set-limit", tenant.tenant_id, "send", "--default")
    assert cleared["rate_limits"]["send"]["per_second"] == 200
    assert cleared["daily_quota"] == 250
    assert admin(stack, "set-quota", tenant.tenant_id, "default")["daily_quota"] == 0


def test_bad_input_is_refused_with_a_message(stack: Stack, api: httpx.Client) -> None:
    tenant = signup(api)
    assert "no tenant with id or email" in _fails(stack, "show", "tnt_nobody")
    assert "--per-second and --burst" in _fails(
        stack, "set-limit", tenant.tenant_id, "send", "--burst", "3"
    )
    assert "per_second > 0" in _fails(
        stack, "set-limit", tenant.tenant_id, "send", "--per-second", "0", "--burst", "3"
    )
    assert "invalid choice" in _fails(stack, "set-limit", tenant.tenant_id, "sends")
    assert "whole number" in _fails(stack, "set-quota", tenant.tenant_id, "-5")
