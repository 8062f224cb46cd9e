"""Size and count limits through Envoy: each refusal is a 400 naming the
limit, in the API's JSON error shape, and leaves nothing behind; a body too
large for Envoy is a 413 in the API's words, never the gRPC server's text."""

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from server.domain.body_limits import MAX_BULK_BODY_BYTES, MAX_JSON_BODY_BYTES
from server.domain.sending import MAX_DATA_BYTES
from server.domain.templates import MAX_DESCRIPTION_LENGTH, MAX_FIELD_SOURCE_LENGTH
from server.services.accounts import MAX_API_KEYS
from server.services.bulk_csv import MAX_RECORD_CHARS
from server.services.templates import MAX_TEMPLATES, MAX_VERSIONS
from tests.conftest import Tenant
from tests.e2e.test_bulk import BULK, in_chunks, upload
from tests.e2e.test_errors import reason

SEND = "/api/v1/notifications/send"
TEMPLATES = "/api/v1/templates"
SMS_TEMPLATE = {"sms": {"body": "Hi {{name}}"}}


def sms(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "recipient": {"phone": "+14155550123"},
        "notification": {"channels": ["sms"], "body": "limits", "data": data},
    }


def data_of(size: int) -> dict[str, Any]:
    """A data object whose compact JSON is exactly `size` bytes."""
    overhead = len(json.dumps({"pad": ""}, separators=(",", ":")))
    return {"pad": "x" * (size - overhead)}


def unthrottled(call: Callable[[], httpx.Response]) -> httpx.Response:
    """The call's answer, waiting out the tenant's write rate limit (not what is tested here)."""
    for _ in range(50):
        response = call()
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))
    raise AssertionError("still rate limited after 50 tries")


def test_data_over_32_kib_is_refused_naming_the_limit(tenant: Tenant) -> None:
    assert tenant.post(SEND, sms(data_of(MAX_DATA_BYTES))).status_code == 200
    refused = tenant.post(SEND, sms(data_of(MAX_DATA_BYTES + 1)))
    assert refused.status_code == 400, refused.text
    assert reason(refused) == "DATA_TOO_LARGE"
    body = refused.json()
    assert f"{MAX_DATA_BYTES + 1} bytes" in body["message"]
    assert str(MAX_DATA_BYTES) in body["message"] and "32 KiB" in body["message"]
    violations = [d for d in body["details"] if d["@type"].endswith("BadRequest")]
    assert violations[0]["field_violations"][0]["field"] == "notification.data"
    listed = tenant.get("/api/v1/notifications").json()["notifications"]
    assert len(listed) == 1


def test_bulk_data_limits_refuse_the_bulk_or_only_their_row(tenant: Tenant) -> None:
    shared_too_large = tenant.post(
        BULK,
        {
            "channels": ["sms"],
            "body": "x",
            "data": data_of(MAX_DATA_BYTES + 1),
            "recipients": [{"phone": "+14155550123"}],
        },
    )
    assert shared_too_large.status_code == 400
    assert reason(shared_too_large) == "DATA_TOO_LARGE"
    assert "data is" in shared_too_large.json()["message"]

    rows = tenant.post(
        BULK,
        {
            "channels": ["sms"],
            "body": "x",
            "recipients": [
                {"phone": "+14155550123", "data": {"a": "b"}},
                {"phone": "+14155550124", "data": data_of(MAX_DATA_BYTES + 1)},
            ],
        },
    )
    assert rows.status_code == 200, rows.text
    body = rows.json()
    assert [e["index"] for e in body["errors"]] == [1]
    assert body["errors"][0]["reason"] == "DATA_TOO_LARGE"
    assert "recipients[1].data" in body["errors"][0]["message"]


def test_template_description_and_field_limits(tenant: Tenant) -> None:
    long_description = tenant.post(
        TEMPLATES,
        {
            "template_id": "described",
            "description": "d" * (MAX_DESCRIPTION_LENGTH + 1),
            "channels": SMS_TEMPLATE,
        },
    )
    assert long_description.status_code == 400
    assert reason(long_description) == "DESCRIPTION_TOO_LONG"
    assert str(MAX_DESCRIPTION_LENGTH) in long_description.json()["message"]

    long_body = tenant.post(
        TEMPLATES,
        {
            "template_id": "described",
            "channels": {"email": {"subject": "s", "body": "b" * (MAX_FIELD_SOURCE_LENGTH + 1)}},
        },
    )
    assert long_body.status_code == 400
    assert reason(long_body) == "TEMPLATE_TOO_LARGE"
    assert "email.body" in long_body.json()["message"]
    assert str(MAX_FIELD_SOURCE_LENGTH) in long_body.json()["message"]

    # Neither left anything behind; at the limit, the template is stored.
    at_limit = tenant.post(
        TEMPLATES,
        {
            "template_id": "described",
            "description": "d" * MAX_DESCRIPTION_LENGTH,
            "channels": SMS_TEMPLATE,
        },
    )
    assert at_limit.status_code == 200, at_limit.text


def test_versions_per_template_are_limited(tenant: Tenant) -> None:
    created = tenant.post(TEMPLATES, {"template_id": "versioned", "channels": SMS_TEMPLATE})
    assert created.status_code == 200, created.text
    path = f"{TEMPLATES}/versioned/versions"
    for _ in range(MAX_VERSIONS - 1):
        added = unthrottled(lambda: tenant.post(path, {"channels": SMS_TEMPLATE}))
        assert added.status_code == 200, added.text
    refused = unthrottled(lambda: tenant.post(path, {"channels": SMS_TEMPLATE}))
    assert refused.status_code == 400, refused.text
    assert reason(refused) == "VERSION_LIMIT"
    assert f"{MAX_VERSIONS} versions" in refused.json()["message"]
    assert tenant.get(f"{TEMPLATES}/versioned").json()["latest_version"] == MAX_VERSIONS


def test_api_keys_per_tenant_are_limited_and_revoking_frees_one(tenant: Tenant) -> None:
    keys = []
    for i in range(MAX_API_KEYS - 1):  # signup made the first
        created = unthrottled(lambda i=i: tenant.post("/api/v1/api-keys", {"name": f"k{i}"}))
        assert created.status_code == 200, created.text
        keys.append(created.json()["key_id"])
    refused = unthrottled(lambda: tenant.post("/api/v1/api-keys", {"name": "one more"}))
    assert refused.status_code == 400, refused.text
    assert reason(refused) == "API_KEY_LIMIT"
    assert f"at most {MAX_API_KEYS} active API keys" in refused.json()["message"]
    assert unthrottled(lambda: tenant.delete(f"/api/v1/api-keys/{keys[0]}")).status_code == 200
    again = unthrottled(lambda: tenant.post("/api/v1/api-keys", {"name": "one more"}))
    assert again.status_code == 200, again.text


@pytest.fixture
def database(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def test_templates_per_tenant_are_limited_and_archiving_frees_one(
    tenant: Tenant, database: psycopg.Connection[Any]
) -> None:
    # Most of the tenant's templates are stored directly: creating a thousand
    # through the API would take a minute at the write rate limit.
    database.execute(
        "INSERT INTO templates (tenant_id, template_id, description, active_version,"
        " latest_version, created_at, updated_at)"
        " SELECT %s, 'seeded-' || n, '', 1, 1, now(), now()"
        " FROM generate_series(1, %s) AS n",
        (tenant.tenant_id, MAX_TEMPLATES - 1),
    )
    last = tenant.post(TEMPLATES, {"template_id": "last-one", "channels": SMS_TEMPLATE})
    assert last.status_code == 200, last.text
    refused = tenant.post(TEMPLATES, {"template_id": "too-many", "channels": SMS_TEMPLATE})
    assert refused.status_code == 400, refused.text
    assert reason(refused) == "TEMPLATE_LIMIT"
    assert f"at most {MAX_TEMPLATES} templates" in refused.json()["message"]
    assert tenant.get(f"{TEMPLATES}/too-many").status_code == 404
    assert tenant.delete(f"{TEMPLATES}/last-one").status_code == 200
    again = tenant.post(TEMPLATES, {"template_id": "too-many", "channels": SMS_TEMPLATE})
    assert again.status_code == 200, again.text


def post_json(tenant: Tenant, path: str, body: str) -> httpx.Response:
    headers = {**tenant.headers, "Content-Type": "application/json"}
    return tenant.api.post(path, headers=headers, content=body)


def test_a_body_over_envoys_limit_is_413_in_the_apis_words(tenant: Tenant) -> None:
    response = post_json(tenant, SEND, json.dumps(sms({"pad": "x" * MAX_JSON_BODY_BYTES})))
    assert response.status_code == 413, response.text[:300]
    error = response.json()
    assert error["code"] == 3
    assert str(MAX_JSON_BODY_BYTES) in error["message"] and "4 MiB" in error["message"]
    assert reason(response) == "REQUEST_TOO_LARGE"
    assert tenant.get("/api/v1/notifications").json()["notifications"] == []


def test_a_bulk_may_be_larger_up_to_its_own_limit(tenant: Tenant) -> None:
    def bulk(pad: int) -> str:
        return json.dumps(
            {
                "channels": ["sms"],
                "body": "x",
                "data": {"pad": "x" * pad},
                "recipients": [{"phone": "+14155550123"}],
            }
        )

    # Past the single-request limit, the server answers (the data is too large).
    larger = post_json(tenant, BULK, bulk(MAX_JSON_BODY_BYTES + 1024))
    assert larger.status_code == 400, larger.text[:300]
    assert reason(larger) == "DATA_TOO_LARGE"
    too_large = post_json(tenant, BULK, bulk(MAX_BULK_BODY_BYTES))
    assert too_large.status_code == 413, too_large.text[:300]
    assert str(MAX_BULK_BODY_BYTES) in too_large.json()["message"]


def test_a_body_envoy_accepts_never_trips_the_grpc_size_limit(tenant: Tenant) -> None:
    # Numbers grow about fivefold from JSON to protobuf Values: 2 MB of them
    # is 11 MB of protobuf, past gRPC's default 4 MiB receive limit.
    numbers = [1] * 1_000_000
    body = json.dumps(sms({"numbers": numbers}), separators=(",", ":"))
    assert len(body) < MAX_JSON_BODY_BYTES
    response = post_json(tenant, SEND, body)
    assert response.status_code == 400, response.text[:300]
    assert reason(response) == "DATA_TOO_LARGE"
    assert "Received message larger than max" not in response.text


def test_a_trickled_csv_splits_quoted_line_breaks_across_chunks_correctly(
    tenant: Tenant,
) -> None:
    lines = ["phone,data.note"]
    bad = set()
    for i in range(300):
        if i % 50 == 13:
            lines.append(f'not-a-phone,"bad row {i}\nstill row {i}"')
            bad.add(i)
        else:
            # Quoted line breaks, commas and doubled quotes, cut anywhere by 7-byte chunks.
            lines.append(f'+1415556{i:04d},"note {i}, line one\nline ""two""\r\nthree"')
    csv_bytes = ("\r\n".join(lines) + "\r\n").encode()
    response = upload(
        tenant, in_chunks(csv_bytes, 7), params={"channel": "sms", "text": "trickled"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total"], body["accepted"], body["rejected"]) == (300, 300 - len(bad), len(bad))
    errors = tenant.get(f"{BULK}/{body['bulk_id']}/errors", params={"page_size": 100}).json()
    assert [e["index"] for e in errors["errors"]] == sorted(bad)


def test_a_csv_record_over_1_mib_is_refused_and_nothing_is_kept(tenant: Tenant) -> None:
    rows = "".join(f"+1415557{i:04d},ok\n" for i in range(1500))
    huge = '+14155579999,"' + "y" * (MAX_RECORD_CHARS + 1) + '"\n'
    csv_bytes = ("phone,data.note\n" + rows + huge).encode()
    response = upload(tenant, in_chunks(csv_bytes, 64 * 1024))
    assert response.status_code == 400, response.text
    assert reason(response) == "CSV_RECORD_TOO_LARGE"
    assert str(MAX_RECORD_CHARS) in response.json()["message"]
    # The first 1,000 rows had been stored; the refused upload removed them.
    listed = tenant.get("/api/v1/notifications").json()["notifications"]
    assert listed == []


def test_an_upload_larger_than_the_json_body_limit_streams_through(tenant: Tenant) -> None:
    # Envoy's body cap is off on the upload route; 5,000 refused rows are cheap to store.
    note = "n" * 1200
    rows = "".join(f"not-a-phone-{i},{note}\n" for i in range(5000))
    csv_bytes = ("phone,data.note\n" + rows).encode()
    assert len(csv_bytes) > MAX_JSON_BODY_BYTES
    response = upload(tenant, in_chunks(csv_bytes, 256 * 1024))
    assert response.status_code == 200, response.text[:300]
    assert (response.json()["total"], response.json()["rejected"]) == (5000, 5000)
