"""Bulk sends through Envoy: the guide's body, row errors, progress, CSV
uploads and idempotency."""

import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from runner.stack import Stack
from tests.conftest import Tenant
from tests.e2e.waiting import wait_for

BULK = "/api/v1/notifications/bulk"
UPLOAD = "/api/v1/notifications/bulk:upload"

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


def upload(
    tenant: Tenant,
    csv_body: bytes | Iterable[bytes],
    *,
    key: str = "",
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """An SMS upload; `key` goes in the Idempotency-Key header."""
    headers = {**tenant.headers, "Content-Type": "text/csv"}
    if key:
        headers["Idempotency-Key"] = key
    return tenant.api.post(
        UPLOAD,
        params=params or {"channel": "sms", "text": "upload once"},
        headers=headers,
        content=csv_body,
    )


def in_chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def listed_ids(tenant: Tenant) -> set[str]:
    page = tenant.get("/api/v1/notifications", params={"page_size": 100}).json()
    assert page["next_page_token"] == ""
    return {n["notification_id"] for n in page["notifications"]}


RECIPIENTS_CSV = b"phone\n+14155550123\nnot-a-phone\n+14155550124\n"


def test_upload_replay_returns_the_first_bulk_and_sends_nothing_again(tenant: Tenant) -> None:
    key = f"upload-{secrets.token_hex(4)}"
    first = upload(tenant, in_chunks(RECIPIENTS_CSV, 7), key=key)
    assert first.status_code == 200, first.text
    assert (first.json()["total"], first.json()["accepted"], first.json()["rejected"]) == (3, 2, 1)
    # The same bytes in other chunks are the same request.
    second = upload(tenant, in_chunks(RECIPIENTS_CSV, 5), key=key)
    assert second.status_code == 200, second.text
    assert second.json() == first.json()
    bulk = tenant.get(f"{BULK}/{first.json()['bulk_id']}").json()
    assert (bulk["total"], bulk["rejected"]) == (2, 1)
    listed = listed_ids(tenant)
    assert len(listed) == 2
    assert {tenant.get(f"/api/v1/notifications/{n}").json()["bulk_id"] for n in listed} == {
        first.json()["bulk_id"]
    }


def test_upload_key_reused_with_another_body_or_parameters_is_refused(tenant: Tenant) -> None:
    key = f"upload-{secrets.token_hex(4)}"
    params = {"channel": "sms", "text": "upload once", "idempotency_key": key}
    first = upload(tenant, RECIPIENTS_CSV, params=params)
    assert first.status_code == 200, first.text
    other_body = upload(tenant, RECIPIENTS_CSV + b"+14155550125\n", params=params)
    other_text = upload(tenant, RECIPIENTS_CSV, params={**params, "text": "upload twice"})
    for reused in (other_body, other_text):
        assert reused.status_code == 400, reused.text
        assert reused.json()["details"][0]["reason"] == "IDEMPOTENCY_KEY_REUSED"
    # The header carries the same key as the query parameter.
    header = upload(tenant, RECIPIENTS_CSV + b"+14155550125\n", key=key)
    assert header.json()["details"][0]["reason"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(listed_ids(tenant)) == 2


def test_refused_upload_releases_its_key_for_a_fixed_retry(tenant: Tenant) -> None:
    key = f"upload-{secrets.token_hex(4)}"
    bad_header = upload(tenant, b"mobile\n+14155550123\n", key=key)
    assert bad_header.status_code == 400
    assert "mobile" in bad_header.json()["message"]
    unknown_template = upload(
        tenant, b"phone\n+14155550123\n", key=key, params={"channel": "sms", "template_id": "nope"}
    )
    assert unknown_template.json()["details"][0]["reason"] == "TEMPLATE_NOT_FOUND"
    assert listed_ids(tenant) == set()
    fixed = upload(tenant, b"phone\n+14155550123\n", key=key)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["accepted"] == 1
    assert upload(tenant, b"phone\n+14155550123\n", key=key).json() == fixed.json()
    assert len(listed_ids(tenant)) == 1


def test_upload_refused_past_its_first_batch_leaves_nothing_behind(tenant: Tenant) -> None:
    key = f"upload-{secrets.token_hex(4)}"
    # More rows than one stored batch, then bytes that are not UTF-8.
    rows = b"".join(b"+1415555%04d\n" % i for i in range(1500))
    refused = upload(tenant, in_chunks(b"phone\n" + rows + b"\xff\xfe\n", 4096), key=key)
    assert refused.status_code == 400, refused.text
    assert "UTF-8" in refused.json()["message"]
    assert listed_ids(tenant) == set()
    fixed = upload(tenant, b"phone\n" + b"".join(rows.splitlines(keepends=True)[:2]), key=key)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["accepted"] == 2
    assert len(listed_ids(tenant)) == 2


def test_upload_key_is_in_use_while_the_first_upload_streams(tenant: Tenant) -> None:
    key = f"upload-{secrets.token_hex(4)}"
    head, tail = b"phone\n+14155550123\n", b"+14155550124\n"
    first_chunk_sent, finish = threading.Event(), threading.Event()

    def paused() -> Iterator[bytes]:
        yield head
        first_chunk_sent.set()
        finish.wait(timeout=60)
        yield tail

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(upload, tenant, paused(), key=key)
        try:
            assert first_chunk_sent.wait(timeout=30)
            time.sleep(0.5)

            # A probe whose header is refused: if it came first, it releases the key.
            def claimed() -> httpx.Response | None:
                probe = upload(tenant, b"mobile\n", key=key)
                return probe if probe.status_code == 409 else None

            in_use = wait_for(claimed, timeout=15, interval=0.3)
            assert in_use.json()["details"][0]["reason"] == "IDEMPOTENCY_KEY_IN_USE"
            same = upload(tenant, head + tail, key=key)
            assert same.status_code == 409, same.text
            assert same.json()["details"][0]["reason"] == "IDEMPOTENCY_KEY_IN_USE"
        finally:
            finish.set()
        answered = first.result(timeout=60)
    assert answered.status_code == 200, answered.text
    assert answered.json()["accepted"] == 2
    assert upload(tenant, head + tail, key=key).json() == answered.json()
    assert len(listed_ids(tenant)) == 2
