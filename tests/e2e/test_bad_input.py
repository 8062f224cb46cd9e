"""Malformed input is a clear 400 (or 409) naming the field, never a 500:
control characters anywhere, forged page tokens, a multi-line subject, and
constraint races."""

import base64
import json
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.e2e.test_errors import reason

SEND = "/api/v1/notifications/send"


def violations(response: httpx.Response) -> list[str]:
    details: list[dict[str, Any]] = response.json()["details"]
    return [
        v["field"]
        for d in details
        if d["@type"].endswith("google.rpc.BadRequest")
        for v in d["field_violations"]
    ]


@pytest.mark.parametrize(
    ("notification", "field"),
    [
        ({"channels": ["sms"], "body": "Your OTP is \u0000549921"}, "notification.body"),
        (
            {"channels": ["sms"], "body": "hi {{name}}", "data": {"name": "a\u0000b"}},
            "notification.data.name",
        ),
        ({"channels": ["sms\u0001"], "body": "hi"}, "notification.channels"),
    ],
)
def test_control_characters_in_a_send_are_refused_naming_the_field(
    tenant: Tenant, notification: dict[str, Any], field: str
) -> None:
    response = tenant.post(
        SEND, {"recipient": {"phone": "+14155550123"}, "notification": notification}
    )
    assert response.status_code == 400, response.text
    assert reason(response) == "INVALID_CHARACTERS"
    assert violations(response) == [field]


def test_control_characters_in_signup_are_refused(api: httpx.Client) -> None:
    response = api.post(
        "/portal/signup",
        json={"name": "Ac\u0000me", "email": "nul@acme.example", "password": "correct horse 42"},
    )
    assert response.status_code == 400, response.text
    assert violations(response) == ["name"]


def _token(*values: str) -> str:
    """A page token of the list's own format, holding values it never returns."""
    raw = json.dumps(list(values)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "params",
    [
        {"recipient": "\u0000"},
        {"page_token": "\u0000"},
        {"page_token": _token("2026-01-01T00:00:00+00:00", "ntf_\u0000")},
        {"page_token": _token("2026-01-01T00:00:00", "ntf_" + "0" * 24)},
        {"page_token": _token("+999999-01-01", "x")},
    ],
)
def test_malformed_list_queries_are_400(tenant: Tenant, params: dict[str, str]) -> None:
    response = tenant.get("/api/v1/notifications", params=params)
    assert response.status_code == 400, response.text


def test_bulk_errors_page_token_out_of_range_is_400(tenant: Tenant) -> None:
    bulk = tenant.post(
        "/api/v1/notifications/bulk",
        {"channels": ["sms"], "body": "hi", "recipients": [{"phone": "+14155550123"}]},
    )
    assert bulk.status_code == 200, bulk.text
    for token in ["99999999999999999999", "-5", "x"]:
        response = tenant.get(
            f"/api/v1/notifications/bulk/{bulk.json()['bulk_id']}/errors",
            params={"page_token": token},
        )
        assert response.status_code == 400, (token, response.text)
        assert violations(response) == ["page_token"]


@pytest.mark.parametrize("subject", ["Your code\r\nBcc: victim@example.com", "two\nlines"])
def test_email_subject_with_a_line_break_is_refused_at_send_time(
    tenant: Tenant, subject: str
) -> None:
    response = tenant.post(
        SEND,
        {
            "recipient": {"email": "user@example.com"},
            "notification": {"channels": ["email"], "subject": subject, "body": "hello"},
        },
    )
    assert response.status_code == 400, response.text
    assert reason(response) == "SUBJECT_NOT_ONE_LINE"
    assert violations(response) == ["notification.subject"]


def test_a_refused_idempotent_send_leaves_its_key_free_for_the_fixed_request(
    tenant: Tenant,
) -> None:
    bad = {
        "recipient": {"phone": "+14155550123"},
        "notification": {"channels": ["sms"], "body": "OTP \u0000 1"},
        "idempotency_key": "fix-and-retry",
    }
    assert tenant.post(SEND, bad).status_code == 400
    fixed = {**bad, "notification": {"channels": ["sms"], "body": "OTP 1"}}
    response = tenant.post(SEND, fixed)
    assert response.status_code == 200, response.text


def test_whatsapp_template_ids_differing_only_in_dash_and_underscore_both_work(
    tenant: Tenant,
) -> None:
    for template_id in ["order-update", "order_update"]:
        response = tenant.post(
            "/api/v1/templates",
            {
                "template_id": template_id,
                "channels": {"whatsapp": {"body": "Order {{n}} shipped", "language": "en_US"}},
            },
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("name", ["a|b", "%c3Mo", "x~y"])
def test_header_names_grpc_cannot_carry_are_dropped_not_a_500(tenant: Tenant, name: str) -> None:
    response = tenant.api.get("/api/v1/api-keys", headers={**tenant.headers, name: "1"})
    assert response.status_code == 200, response.text
