"""Idempotent sends and the notification list the dashboard stands on."""

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from runner.stack import Stack
from tests.conftest import Tenant, signup
from tests.e2e.waiting import wait_for_status

SEND = "/api/v1/notifications/send"


def sms(body: str = "hello", key: str = "", phone: str = "+14155550123") -> dict[str, Any]:
    payload: dict[str, Any] = {
        "recipient": {"phone": phone},
        "notification": {"channels": ["sms"], "body": body},
    }
    if key:
        payload["idempotency_key"] = key
    return payload


def test_same_key_same_payload_returns_the_first_notification(
    tenant: Tenant, sandbox: httpx.Client
) -> None:
    key = f"order-{secrets.token_hex(4)}"
    body = f"idempotent {key}"
    first = tenant.post(SEND, sms(body, key))
    second = tenant.post(SEND, sms(body, key))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    listed = tenant.get("/api/v1/notifications").json()["notifications"]
    assert [n["notification_id"] for n in listed] == [first.json()["notification_id"]]
    assert listed[0]["idempotency_key"] == key


def test_same_key_different_payload_is_rejected(tenant: Tenant) -> None:
    key = f"order-{secrets.token_hex(4)}"
    assert tenant.post(SEND, sms("first", key)).status_code == 200
    reused = tenant.post(SEND, sms("second", key))
    assert reused.status_code == 400
    assert reused.json()["details"][0]["reason"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(tenant.get("/api/v1/notifications").json()["notifications"]) == 1


def test_idempotency_key_header_is_accepted(tenant: Tenant) -> None:
    key = f"hdr-{secrets.token_hex(4)}"
    headers = {**tenant.headers, "Idempotency-Key": key}
    first = tenant.api.post(SEND, json=sms("via header"), headers=headers)
    second = tenant.api.post(SEND, json=sms("via header"), headers=headers)
    assert first.json()["notification_id"] == second.json()["notification_id"]


def test_keys_are_scoped_per_tenant(tenant: Tenant, api: httpx.Client) -> None:
    other = signup(api)
    key = "shared-key"
    mine = tenant.post(SEND, sms("x", key)).json()["notification_id"]
    theirs = other.post(SEND, sms("x", key)).json()["notification_id"]
    assert mine != theirs


def test_failed_validation_stores_nothing_so_the_key_can_be_reused(tenant: Tenant) -> None:
    key = f"fix-{secrets.token_hex(4)}"
    bad = tenant.post(SEND, {**sms("x", key), "recipient": {}})
    assert bad.status_code == 400
    assert tenant.post(SEND, sms("x", key)).status_code == 200


def test_concurrent_identical_requests_make_one_notification_and_one_message(
    tenant: Tenant, sandbox: httpx.Client, stack: Stack
) -> None:
    key = f"race-{secrets.token_hex(4)}"
    body = f"race {key}"
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _: tenant.post(SEND, sms(body, key)), range(50)))
    # The first is answered; the rest either replay it or hear it is still running.
    assert {r.status_code for r in responses} <= {200, 409}
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["details"][0]["reason"] == "IDEMPOTENCY_KEY_IN_USE"
    ids = {r.json()["notification_id"] for r in responses if r.status_code == 200}
    assert len(ids) == 1
    [notification_id] = ids
    # Once answered, a retry replays it.
    assert tenant.post(SEND, sms(body, key)).json()["notification_id"] == notification_id
    wait_for_status(tenant, notification_id, {"delivered"})
    assert [
        n["notification_id"] for n in tenant.get("/api/v1/notifications").json()["notifications"]
    ] == [notification_id]
    messages = sandbox.get(
        "/sandbox/api/messages", params={"channel": "sms", "to": "+14155550123", "limit": 1000}
    ).json()["messages"]
    assert [m["body"] for m in messages].count(body) == 1
    url = f"http://127.0.0.1:{stack.ports.temporal_http}/api/v1/namespaces/default/workflows"
    workflows = httpx.get(url, params={"query": f"TenantId = '{tenant.tenant_id}'"}).json()
    assert len(workflows.get("executions", [])) == 1


def test_list_is_newest_first_paged_and_filtered(tenant: Tenant) -> None:
    sent = [tenant.post(SEND, sms(f"page {i}")).json()["notification_id"] for i in range(5)]
    email = tenant.post(
        SEND,
        {
            "recipient": {"email": "list@example.com"},
            "notification": {"channels": ["email"], "subject": "s", "body": "b"},
        },
    ).json()["notification_id"]

    seen: list[str] = []
    token = ""
    while True:
        params: dict[str, Any] = {"page_size": 2}
        if token:
            params["page_token"] = token
        page = tenant.get("/api/v1/notifications", params=params).json()
        assert len(page["notifications"]) <= 2
        seen += [n["notification_id"] for n in page["notifications"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == [email, *reversed(sent)]

    by_channel = tenant.get("/api/v1/notifications", params={"channel": "email"}).json()
    assert [n["notification_id"] for n in by_channel["notifications"]] == [email]
    by_recipient = tenant.get("/api/v1/notifications", params={"recipient": "+14155550123"}).json()
    assert [n["notification_id"] for n in by_recipient["notifications"]] == list(reversed(sent))
    assert by_recipient["notifications"][0]["deliveries"][0]["channel"] == "sms"


def test_list_never_shows_other_tenants(tenant: Tenant, api: httpx.Client) -> None:
    other = signup(api)
    other.post(SEND, sms("not yours"))
    assert tenant.get("/api/v1/notifications").json()["notifications"] == []


def test_list_rejects_bad_filters_and_tokens(tenant: Tenant) -> None:
    for params, field in [
        ({"status": "done"}, "status"),
        ({"channel": "fax"}, "channel"),
        ({"page_size": 1000}, "page_size"),
        ({"page_token": "garbage!"}, "page_token"),
    ]:
        response = tenant.get("/api/v1/notifications", params=params)
        assert response.status_code == 400, params
        assert response.json()["details"][1]["field_violations"][0]["field"] == field
