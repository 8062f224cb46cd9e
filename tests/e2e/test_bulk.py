"""Bulk sends through Envoy: the guide's body, row errors, progress, CSV
uploads and idempotency."""

import secrets
from typing import Any

import httpx

from runner.stack import Stack
from tests.conftest import Tenant
from tests.e2e.waiting import wait_for

BULK = "/api/v1/notifications/bulk"

# Section 5 of the integration guide, verbatim.
GUIDE_BULK = """{
  "channels": ["whatsapp", "email"],
  "template_id": "order_confirmation",
  "recipients": [
    {"phone": "+14155550123", "email": "a@example.com", "data": {"name": "Alex"}},
    {"phone": "+14155550124", "email": "b@example.com", "data": {"name": "Sam"}}
  ]
}"""


def make_order_template(tenant: Tenant) -> None:
    created = tenant.post(
        "/api/v1/templates",
        {
            "template_id": "order_confirmation",
            "channels": {
                "email": {"subject": "Order confirmed", "body": "Hi {{name}}, thanks."},
                "whatsapp": {"body": "Hi {{name}}, your order is confirmed.", "language": "en_US"},
            },
        },
    )
    assert created.status_code == 200, created.text

    def approved() -> bool:
        body = tenant.get("/api/v1/templates/order_confirmation").json()
        return bool(body["whatsapp_approval"]["status"] == "approved")

    wait_for(approved, timeout=30)


def wait_bulk_done(tenant: Tenant, bulk_id: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = tenant.get(f"{BULK}/{bulk_id}").json()
        counts = body["counts"]
        finished = counts["delivered"] + counts["failed"] == body["total"]
        return body if finished and body.get("finished_at") else None

    result: dict[str, Any] = wait_for(done, timeout=timeout, interval=0.5)
    return result


def test_guide_bulk_body_is_delivered(tenant: Tenant, sandbox: httpx.Client) -> None:
    make_order_template(tenant)
    response = tenant.api.post(
        BULK,
        content=GUIDE_BULK.encode(),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2 and body["errors"] == []
    assert [n["index"] for n in body["notifications"]] == [0, 1]
    progress = wait_bulk_done(tenant, body["bulk_id"])
    assert progress["counts"] == {"queued": 0, "sent": 0, "delivered": 2, "failed": 0}
    assert progress["total"] == 2 and progress["rejected"] == 0
    row = tenant.get(f"/api/v1/notifications/{body['notifications'][1]['notification_id']}").json()
    assert row["bulk_id"] == body["bulk_id"]
    assert [(d["channel"], d["status"]) for d in row["deliveries"]] == [
        ("whatsapp", "delivered"),
        ("email", "delivered"),
    ]
    texts = [
        m["body"]
        for m in sandbox.get("/sandbox/api/messages", params={"channel": "whatsapp"}).json()[
            "messages"
        ]
    ]
    assert "Hi Sam, your order is confirmed." in texts


def test_row_errors_reject_only_their_rows(tenant: Tenant) -> None:
    response = tenant.post(
        BULK,
        {
            "channels": ["sms"],
            "body": "Flash sale",
            "recipients": [
                {"phone": "+14155550123"},
                {"email": "no-phone@example.com"},
                {"phone": "12345"},
                {"phone": "+14155550124"},
            ],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert [n["index"] for n in body["notifications"]] == [0, 3]
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [
        (1, "RECIPIENT_FIELD_MISSING"),
        (2, "RECIPIENT_FIELD_MISSING"),
    ]
    assert "recipients[1].phone" in body["errors"][0]["message"]
    progress = wait_bulk_done(tenant, body["bulk_id"])
    assert progress["counts"]["delivered"] == 2 and progress["rejected"] == 2


def test_request_level_errors_refuse_the_whole_bulk(tenant: Tenant) -> None:
    whatsapp = tenant.post(
        BULK, {"channels": ["whatsapp"], "recipients": [{"phone": "+14155550123"}]}
    )
    assert whatsapp.status_code == 400
    assert whatsapp.json()["details"][0]["reason"] == "TEMPLATE_REQUIRED"
    unknown = tenant.post(
        BULK,
        {"channels": ["sms"], "template_id": "nope", "recipients": [{"phone": "+14155550123"}]},
    )
    assert unknown.json()["details"][0]["reason"] == "TEMPLATE_NOT_FOUND"
    empty = tenant.post(BULK, {"channels": ["sms"], "body": "x", "recipients": []})
    assert empty.status_code == 400
    assert tenant.get("/api/v1/notifications").json()["notifications"] == []


def test_shared_data_merges_under_row_data(tenant: Tenant, sandbox: httpx.Client) -> None:
    tenant.post(
        "/api/v1/templates",
        {
            "template_id": "promo",
            "channels": {"sms": {"body": "{{greeting}} {{name}}, code {{code}}"}},
        },
    )
    tag = secrets.token_hex(3)
    response = tenant.post(
        BULK,
        {
            "channels": ["sms"],
            "template_id": "promo",
            "data": {"greeting": "Hello", "code": tag},
            "recipients": [
                {"phone": "+14155550125", "data": {"name": "Ana"}},
                {"phone": "+14155550126", "data": {"name": "Bo", "greeting": "Hi"}},
                {"phone": "+14155550127"},
            ],
        },
    ).json()
    assert [e["reason"] for e in response["errors"]] == ["TEMPLATE_VARIABLE_MISMATCH"]
    wait_bulk_done(tenant, response["bulk_id"])
    texts = {
        m["body"]
        for m in sandbox.get("/sandbox/api/messages", params={"channel": "sms"}).json()["messages"]
    }
    assert {f"Hello Ana, code {tag}", f"Hi Bo, code {tag}"} <= texts


def test_transient_failures_are_retried_within_the_bulk(tenant: Tenant) -> None:
    tag = secrets.token_hex(3)
    response = tenant.post(
        BULK,
        {
            "channels": ["sms"],
            "body": f"bulk retry {tag}",
            "recipients": [
                {"phone": "+15005550202"},
                {"phone": "+15005550001"},
                {"phone": "+14155550123"},
            ],
        },
    ).json()
    progress = wait_bulk_done(tenant, response["bulk_id"])
    assert progress["counts"] == {"queued": 0, "sent": 0, "delivered": 2, "failed": 1}
    retried, invalid, _ = (
        tenant.get(f"/api/v1/notifications/{n['notification_id']}").json()["deliveries"][0]
        for n in response["notifications"]
    )
    assert (retried["status"], retried["attempts"]) == ("delivered", 3)
    assert (invalid["status"], invalid["attempts"], invalid["reason"]) == (
        "failed",
        1,
        "invalid phone number",
    )


def test_bulk_idempotency(tenant: Tenant) -> None:
    payload = {
        "channels": ["sms"],
        "body": "once",
        "recipients": [{"phone": "+14155550123"}],
        "idempotency_key": f"bulk-{secrets.token_hex(4)}",
    }
    first = tenant.post(BULK, payload).json()
    second = tenant.post(BULK, payload).json()
    assert first == second
    reused = tenant.post(BULK, {**payload, "body": "twice"})
    assert reused.json()["details"][0]["reason"] == "IDEMPOTENCY_KEY_REUSED"


def test_csv_upload_streams_rows_and_pages_errors(tenant: Tenant, stack: Stack) -> None:
    tag = secrets.token_hex(3)
    lines = ["phone,data.name"]
    for i in range(1200):
        lines.append("not-a-phone,Bad" if i % 100 == 7 else f'+1415555{i:04d},"Name, {i}"')
    csv_bytes = ("\n".join(lines) + "\n").encode()

    def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(csv_bytes), 4096):
            yield csv_bytes[start : start + 4096]

    response = tenant.api.post(
        "/api/v1/notifications/bulk:upload",
        params={"channel": "sms", "text": f"upload {tag}"},
        headers={**tenant.headers, "Content-Type": "text/csv"},
        content=chunks(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total"], body["accepted"], body["rejected"]) == (1200, 1188, 12)
    errors: list[dict[str, Any]] = []
    token = ""
    while True:
        params: dict[str, Any] = {"page_size": 5}
        if token:
            params["page_token"] = token
        page = tenant.get(f"{BULK}/{body['bulk_id']}/errors", params=params).json()
        errors += page["errors"]
        token = page["next_page_token"]
        if not token:
            break
    assert [e["index"] for e in errors] == [i for i in range(1200) if i % 100 == 7]
    progress = wait_bulk_done(tenant, body["bulk_id"], timeout=120)
    assert progress["counts"]["delivered"] == 1188


def test_upload_needs_csv_and_known_columns(tenant: Tenant) -> None:
    wrong_type = tenant.api.post(
        "/api/v1/notifications/bulk:upload",
        params={"channel": "sms", "text": "x"},
        headers={**tenant.headers, "Content-Type": "application/json"},
        content=b"phone\n+14155550123\n",
    )
    assert wrong_type.status_code == 400
    bad_column = tenant.api.post(
        "/api/v1/notifications/bulk:upload",
        params={"channel": "sms", "text": "x"},
        headers={**tenant.headers, "Content-Type": "text/csv"},
        content=b"mobile\n+14155550123\n",
    )
    assert bad_column.status_code == 400
    assert "mobile" in bad_column.json()["message"]
