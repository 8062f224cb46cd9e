"""Per-tenant rate limits through Envoy: 429 RATE_LIMITED with Retry-After for
the tenant over its rate, nothing for anyone else."""

from concurrent.futures import ThreadPoolExecutor

import httpx

from runner.stack import Stack
from tests.conftest import Tenant, signup
from tests.e2e.operator import SMS, admin, rate, wait_for_usage


def _limit(stack: Stack, tenant: Tenant, name: str, per_second: str, burst: str) -> None:
    admin(stack, "set-limit", tenant.tenant_id, name, "--per-second", per_second, "--burst", burst)
    wait_for_usage(tenant, lambda u: rate(u, name)["burst"] == int(burst))


def test_a_tenant_over_its_send_rate_gets_429_while_another_tenant_sends(
    stack: Stack, tenant: Tenant, api: httpx.Client
) -> None:
    other = signup(api)
    _limit(stack, tenant, "send", "0.2", "3")

    def send(who: Tenant) -> httpx.Response:
        return who.post("/api/v1/notifications/send", SMS)

    with ThreadPoolExecutor(8) as pool:
        limited = list(pool.map(send, [tenant] * 8))
        others = list(pool.map(send, [other] * 8))

    codes = sorted(r.status_code for r in limited)
    assert codes == [200] * 3 + [429] * 5, [r.text for r in limited]
    refused = next(r for r in limited if r.status_code == 429)
    body = refused.json()
    assert body["code"] == 8  # RESOURCE_EXHAUSTED
    assert body["details"][0]["reason"] == "RATE_LIMITED"
    assert "send rate limit (0.2 per second, burst 3)" in body["message"]
    # One token comes back every 5 s.
    assert 1 <= int(refused.headers["retry-after"]) <= 5
    assert "grpc-status" not in refused.headers
    # The other tenant, in the same second, is not limited at all.
    assert [r.status_code for r in others] == [200] * 8, [r.text for r in others]


def test_bulk_rows_each_take_a_token(stack: Stack, tenant: Tenant) -> None:
    _limit(stack, tenant, "bulk_rows", "0.1", "5")

    def bulk(rows: int) -> httpx.Response:
        return tenant.post(
            "/api/v1/notifications/bulk",
            {
                "channels": ["sms"],
                "body": "Sale today",
                "recipients": [{"phone": f"+1415555{i:04d}"} for i in range(rows)],
            },
        )

    too_big = bulk(6)
    assert too_big.status_code == 429
    assert "more than this tenant's burst of 5" in too_big.json()["message"]
    assert bulk(4).status_code == 200
    refused = bulk(2)
    assert refused.status_code == 429, refused.text
    assert refused.json()["details"][0]["reason"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 5
    # Single sends have their own bucket.
    assert tenant.post("/api/v1/notifications/send", SMS).status_code == 200


def test_reads_and_writes_have_their_own_limits(stack: Stack, tenant: Tenant) -> None:
    admin(stack, "set-limit", tenant.tenant_id, "writes", "--per-second", "0.1", "--burst", "1")
    _limit(stack, tenant, "reads", "0.1", "4")
    statuses = [tenant.get("/api/v1/notifications").status_code for _ in range(6)]
    assert statuses.count(429) >= 2, statuses
    assert tenant.post("/api/v1/api-keys", {"name": "one"}).status_code == 200
    second = tenant.post("/api/v1/api-keys", {"name": "two"})
    assert second.status_code == 429
    assert "writes rate limit" in second.json()["message"]
    # Sends are not reads: they still go through.
    assert tenant.post("/api/v1/notifications/send", SMS).status_code == 200
