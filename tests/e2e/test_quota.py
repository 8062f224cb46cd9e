"""Daily quotas, usage and suspension through Envoy, set by the admin CLI."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from runner.stack import Stack
from tests.conftest import Tenant
from tests.e2e.operator import SMS, admin, wait_for_usage
from tests.e2e.waiting import wait_for


def _next_utc_midnight() -> datetime:
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)


def test_the_sandbox_deployment_has_no_quota_by_default(tenant: Tenant) -> None:
    usage = tenant.get("/api/v1/usage").json()
    assert usage["daily_quota"] == 0
    assert "quota_remaining" not in usage
    assert usage["sent_today"] == 0 and usage["sent_today_by_channel"] == {}
    assert {r["name"] for r in usage["rate_limits"]} == {"send", "bulk_rows", "writes", "reads"}
    send = next(r for r in usage["rate_limits"] if r["name"] == "send")
    assert send["per_second"] >= 100 and send["burst"] >= 100
    bulk = next(r for r in usage["rate_limits"] if r["name"] == "bulk_rows")
    assert bulk["burst"] >= 10_000


def test_quota_exhaustion_and_its_reset(stack: Stack, tenant: Tenant, database_url: str) -> None:
    admin(stack, "set-quota", tenant.tenant_id, "3")
    wait_for_usage(tenant, lambda u: u["daily_quota"] == 3)
    for _ in range(3):
        assert tenant.post("/api/v1/notifications/send", SMS).status_code == 200
    over = tenant.post("/api/v1/notifications/send", SMS)
    assert over.status_code == 429, over.text
    body = over.json()
    assert body["code"] == 8
    assert body["details"][0]["reason"] == "QUOTA_EXCEEDED"
    midnight = _next_utc_midnight()
    assert midnight.strftime("%Y-%m-%dT00:00:00Z") in body["message"]
    expected_wait = (midnight - datetime.now(UTC)).total_seconds()
    assert abs(int(over.headers["retry-after"]) - expected_wait) < 30
    # A bulk is refused whole when its rows do not fit.
    bulk = tenant.post(
        "/api/v1/notifications/bulk",
        {"channels": ["sms"], "body": "x", "recipients": [{"phone": "+14155550100"}]},
    )
    assert bulk.status_code == 429 and bulk.json()["details"][0]["reason"] == "QUOTA_EXCEEDED"

    usage = tenant.get("/api/v1/usage").json()
    assert usage["sent_today"] == 3 and usage["quota_remaining"] == 0
    assert usage["quota_resets_at"] == midnight.strftime("%Y-%m-%dT%H:%M:%SZ")

    # UTC midnight: the new day has no count yet. Moving today's count to
    # yesterday is what the clock does to it.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE daily_usage SET day = day - 1 WHERE tenant_id = %s", [tenant.tenant_id]
        )
    assert tenant.post("/api/v1/notifications/send", SMS).status_code == 200
    assert tenant.get("/api/v1/usage").json()["quota_remaining"] == 2


def test_raising_the_quota_lets_sends_through_again(stack: Stack, tenant: Tenant) -> None:
    admin(stack, "set-quota", tenant.tenant_id, "1")
    wait_for_usage(tenant, lambda u: u["daily_quota"] == 1)
    assert tenant.post("/api/v1/notifications/send", SMS).status_code == 200
    assert tenant.post("/api/v1/notifications/send", SMS).status_code == 429
    report = admin(stack, "set-quota", tenant.tenant_id, "5")
    assert report["daily_quota"] == 5 and report["quota_remaining"] == 4
    wait_for_usage(tenant, lambda u: u["daily_quota"] == 5)
    assert tenant.post("/api/v1/notifications/send", SMS).status_code == 200


def test_usage_counts_what_was_accepted_today(tenant: Tenant) -> None:
    both = {
        "recipient": {"email": "user@example.com", "phone": "+14155550123"},
        "notification": {"channels": ["sms", "email"], "subject": "Hi", "body": "Both"},
    }
    assert tenant.post("/api/v1/notifications/send", SMS).status_code == 200
    assert tenant.post("/api/v1/notifications/send", both).status_code == 200
    # Refused requests count for nothing.
    bad = {"recipient": {}, "notification": {"channels": ["sms"], "body": "x"}}
    assert tenant.post("/api/v1/notifications/send", bad).status_code == 400
    bulk = tenant.post(
        "/api/v1/notifications/bulk",
        {
            "channels": ["email"],
            "subject": "News",
            "body": "Hello",
            "recipients": [
                {"email": "a@example.com"},
                {"email": "not-an-email"},
                {"email": "b@example.com"},
            ],
        },
    )
    assert bulk.status_code == 200 and bulk.json()["accepted"] == 2
    usage = tenant.get("/api/v1/usage").json()
    assert usage["day"] == datetime.now(UTC).date().isoformat()
    assert usage["sent_today"] == 4
    assert usage["sent_today_by_channel"] == {"email": 3, "sms": 2}


def test_a_suspended_tenant_gets_403_with_the_reason(stack: Stack, tenant: Tenant) -> None:
    report = admin(stack, "suspend", tenant.tenant_id, "--reason", "unpaid invoice")
    assert report["suspended"] is True
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while (response := tenant.post("/api/v1/notifications/send", SMS)).status_code == 200:
            assert datetime.now(UTC) < deadline, "suspension not applied within 10 s"
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["details"][0]["reason"] == "TENANT_SUSPENDED"
        assert "unpaid invoice" in body["message"]
        assert tenant.get("/api/v1/usage").status_code == 403
    finally:
        admin(stack, "unsuspend", tenant.tenant_id)
    # The suspension stays cached for up to CLARION_API_KEY_CACHE_SECONDS.
    wait_for(lambda: tenant.get("/api/v1/usage").status_code == 200, timeout=10)
    assert tenant.post("/api/v1/notifications/send", SMS).status_code == 200


@pytest.mark.parametrize("page_size", [2, 3])
def test_api_keys_come_in_pages(tenant: Tenant, page_size: int) -> None:
    for i in range(4):
        assert tenant.post("/api/v1/api-keys", {"name": f"k{i}"}).status_code == 200
    names: list[str] = []
    token = ""
    while True:
        params = {"page_size": page_size, **({"page_token": token} if token else {})}
        page = tenant.get("/api/v1/api-keys", params=params).json()
        assert len(page["api_keys"]) <= page_size
        names += [k["name"] for k in page["api_keys"]]
        token = page["next_page_token"]
        if not token:
            break
    assert names == ["k3", "k2", "k1", "k0", "default"]
    assert len(tenant.get("/api/v1/api-keys").json()["api_keys"]) == 5


def test_api_key_page_arguments_are_checked(tenant: Tenant) -> None:
    too_big = tenant.get("/api/v1/api-keys", params={"page_size": 101})
    assert too_big.status_code == 400 and "page_size must be 1 to 100" in too_big.json()["message"]
    forged = tenant.get("/api/v1/api-keys", params={"page_token": "bm9wZQ"})
    assert forged.status_code == 400
    assert forged.json()["details"][1]["field_violations"][0]["field"] == "page_token"
