"""Bulk sends with channel fallback routing, through Envoy: rows whose first
channel is refused or never confirmed move to the next one for the whole
bulk at once, with one provider call per row per tried channel; the checks
per row; and routed channels counted in usage."""

import secrets
from datetime import datetime
from typing import Any

import httpx

from tests.conftest import Tenant
from tests.e2e.waiting import wait_for

BULK = "/api/v1/notifications/bulk"
UPLOAD = "/api/v1/notifications/bulk:upload"
INVALID_PHONE = "+15005550001"  # Twilio 21211: a permanent refusal
SILENT_PHONE = "+15005550302"  # accepted, never a callback


def _phone() -> str:
    # A number no other test uses: the sandbox counts calls per number across
    # the whole run, and the suite sends thousands to +1415555xxxx.
    return f"+1650{secrets.randbelow(8 * 10**6) + 2 * 10**6:07d}"


def _email() -> str:
    return f"bulk-route-{secrets.token_hex(5)}@example.com"


def _calls(sandbox: httpx.Client, channel: str, to: str) -> int:
    found = sandbox.get(
        "/sandbox/api/requests", params={"channel": channel, "to": to, "limit": 10_000}
    ).json()["requests"]
    return len(found)


def _bulk_done(tenant: Tenant, bulk_id: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = tenant.get(f"{BULK}/{bulk_id}").json()
        counts = body["counts"]
        settled = counts["delivered"] + counts["failed"] == body["total"]
        return body if settled and body.get("finished_at") else None

    result: dict[str, Any] = wait_for(done, timeout=timeout, interval=0.5)
    return result


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _row(tenant: Tenant, notification_id: str) -> dict[str, Any]:
    body: dict[str, Any] = tenant.get(f"/api/v1/notifications/{notification_id}").json()
    return body


def test_bulk_rows_fall_back_from_a_refused_or_silent_sms_to_email(
    tenant: Tenant, sandbox: httpx.Client
) -> None:
    phones = [INVALID_PHONE, SILENT_PHONE, _phone(), _phone()]
    emails = [_email() for _ in phones]
    before = {p: _calls(sandbox, "sms", p) for p in phones}
    response = tenant.post(
        BULK,
        {
            "subject": "Your code",
            "body": f"Your bulk OTP {secrets.token_hex(4)}",
            "routing": {"strategy": "fallback", "channels": ["sms", "email"],
                        "success_on": "delivered", "step_timeout": "3s"},
            "recipients": [{"phone": p, "email": e} for p, e in zip(phones, emails, strict=True)],
        },
    )  # fmt: skip
    assert response.status_code == 200, response.text
    accepted = response.json()
    assert accepted["accepted"] == 4 and accepted["errors"] == []
    progress = _bulk_done(tenant, accepted["bulk_id"])
    assert progress["counts"] == {"queued": 0, "sent": 0, "delivered": 4, "failed": 0}
    assert progress["channels"] == ["sms", "email"]

    rows = [_row(tenant, n["notification_id"]) for n in accepted["notifications"]]
    outcomes = [[(s["channel"], s["outcome"]) for s in r["routing"]["steps"]] for r in rows]
    assert outcomes == [
        [("sms", "failed"), ("email", "delivered")],
        [("sms", "timed_out"), ("email", "delivered")],
        [("sms", "delivered"), ("email", "skipped")],
        [("sms", "delivered"), ("email", "skipped")],
    ]
    assert rows[0]["routing"]["steps"][0]["reason"] == "invalid phone number"
    assert "step_timeout 3s" in rows[1]["routing"]["steps"][0]["reason"]
    assert rows[2]["routing"]["steps"][1]["reason"] == "step 1 (sms) succeeded"
    assert [[d["channel"] for d in r["deliveries"]] for r in rows] == [
        ["sms", "email"],
        ["sms", "email"],
        ["sms"],
        ["sms"],
    ]
    assert all(r["status"] == "delivered" and r["bulk_id"] == accepted["bulk_id"] for r in rows)
    # The step clock starts once the step's pages are done: the silent row's
    # email starts at least step_timeout after its SMS.
    silent = rows[1]["routing"]["steps"]
    gap = _stamp(silent[1]["started_at"]) - _stamp(silent[0]["started_at"])
    print(f"\nbulk fallback step: email started {gap - 3:.3f} s after step_timeout (3 s)")
    assert gap >= 3

    # Exactly one provider call per row per tried channel.
    assert [_calls(sandbox, "sms", p) - before[p] for p in phones] == [1, 1, 1, 1]
    assert [_calls(sandbox, "email", e) for e in emails] == [1, 1, 0, 0]


def test_bulk_routing_is_checked_per_row_and_per_request(tenant: Tenant) -> None:
    routing = {"channels": ["sms", "email"], "success_on": "sent", "step_timeout": "5s"}
    response = tenant.post(
        BULK,
        {
            "subject": "Hello",
            "body": "Bulk hello",
            "routing": routing,
            "recipients": [{"phone": _phone(), "email": _email()}, {"phone": _phone()}],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # Every step's recipient field is needed, as for a single send.
    assert body["accepted"] == 1
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [(1, "RECIPIENT_FIELD_MISSING")]
    progress = _bulk_done(tenant, body["bulk_id"])
    assert progress["counts"]["delivered"] == 1
    row = _row(tenant, body["notifications"][0]["notification_id"])
    steps = [(s["channel"], s["outcome"]) for s in row["routing"]["steps"]]
    # The SMS step succeeds at "sent"; when its receipt was in before the
    # bulk looked at the step (so in one of four CI runs), it says so.
    assert steps in (
        [("sms", "sent"), ("email", "skipped")],
        [("sms", "delivered"), ("email", "skipped")],
    ), steps

    both = tenant.post(
        BULK,
        {"channels": ["sms"], "body": "x", "routing": routing, "recipients": [{"phone": _phone()}]},
    )
    assert both.status_code == 400
    assert both.json()["details"][0]["reason"] == "ROUTING_CONFLICT"
    bad = tenant.post(
        BULK,
        {
            "body": "x",
            "routing": {"channels": ["sms"], "step_timeout": "forever"},
            "recipients": [{"phone": _phone()}],
        },
    )
    assert bad.status_code == 400
    assert "routing.step_timeout" in bad.json()["message"]
    whatsapp = tenant.post(
        BULK,
        {"body": "x", "routing": {"channels": ["sms", "whatsapp"]},
         "recipients": [{"phone": _phone()}]},
    )  # fmt: skip
    assert whatsapp.status_code == 400, whatsapp.text


def test_csv_upload_takes_routing_as_query_parameters(tenant: Tenant) -> None:
    email = _email()
    response = tenant.api.post(
        UPLOAD,
        params=[
            ("routing.channels", "sms"),
            ("routing.channels", "email"),
            ("routing.success_on", "delivered"),
            ("routing.step_timeout", "3s"),
            ("subject", "Hello"),
            ("text", f"Upload hello {secrets.token_hex(3)}"),
        ],
        headers={**tenant.headers, "Content-Type": "text/csv"},
        content=f"phone,email\n{INVALID_PHONE},{email}\n".encode(),
    )
    assert response.status_code == 200, response.text
    bulk_id = response.json()["bulk_id"]
    progress = _bulk_done(tenant, bulk_id)
    assert progress["counts"]["delivered"] == 1
    listed = tenant.get("/api/v1/notifications", params={"recipient": email}).json()
    row = _row(tenant, listed["notifications"][0]["notification_id"])
    assert [(s["channel"], s["outcome"]) for s in row["routing"]["steps"]] == [
        ("sms", "failed"),
        ("email", "delivered"),
    ]


def test_usage_counts_every_routed_channel(tenant: Tenant) -> None:
    sent = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": {"phone": _phone(), "email": _email()},
            "notification": {"subject": "Hi", "body": "Routed hello",
                             "routing": {"channels": ["sms", "email"], "success_on": "sent"}},
        },
    )  # fmt: skip
    assert sent.status_code == 200, sent.text
    bulk = tenant.post(
        BULK,
        {
            "subject": "Hi",
            "body": "Routed bulk hello",
            "routing": {"channels": ["email", "sms"], "success_on": "sent"},
            "recipients": [{"phone": _phone(), "email": _email()} for _ in range(2)],
        },
    )
    assert bulk.status_code == 200, bulk.text
    put = tenant.api.put(
        "/api/v1/routing/default",
        json={"channels": ["email", "sms"], "success_on": "sent"},
        headers=tenant.headers,
    )
    assert put.status_code == 200, put.text
    high = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": {"phone": _phone(), "email": _email()},
            "notification": {"subject": "Hi", "body": "High hello", "priority": "high"},
        },
    )
    assert high.status_code == 200, high.text
    usage = tenant.get("/api/v1/usage").json()
    assert usage["sent_today"] == 4
    assert usage["sent_today_by_channel"] == {"email": 4, "sms": 4}
