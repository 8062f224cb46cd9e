"""Alert rules through Envoy as a tenant: failures made with the sandbox's
trigger recipients fire a rule once, the alert arrives at the sandbox on the
rule's channel, recovery resolves it with a notice, and only a new breach
fires it again. The stack checks rules every second (TEST_SETTINGS)."""

import secrets
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant, signup
from tests.e2e.test_bad_input import violations
from tests.e2e.test_errors import reason
from tests.e2e.waiting import wait_for, wait_for_status

REFUSED_NUMBER = "+15005550001"  # Twilio refuses it permanently
TWICE_TRANSIENT_NUMBER = "+15005550202"  # two 5xx answers, then delivered


def send_sms(tenant: Tenant, phone: str) -> str:
    response = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": {"phone": phone},
            # A unique body: the sandbox counts transient failures per (to, body).
            "notification": {"channels": ["sms"], "body": f"alert test {secrets.token_hex(4)}"},
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["notification_id"])


def send_email(tenant: Tenant, to: str) -> str:
    response = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": {"email": to},
            "notification": {"channels": ["email"], "subject": "Hi", "body": "alert test"},
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["notification_id"])


def settle(tenant: Tenant, notification_ids: list[str], status: str) -> None:
    for notification_id in notification_ids:
        body = wait_for_status(tenant, notification_id, {"delivered", "failed"}, timeout=60)
        assert body["status"] == status, body


def messages_at(sandbox: httpx.Client, to: str, channel: str = "email") -> list[dict[str, Any]]:
    """Messages the sandbox's provider accepted for `to`, oldest first."""
    found = sandbox.get("/sandbox/api/messages", params={"channel": channel, "to": to}).json()
    return sorted(found["messages"], key=lambda m: str(m["received_at"]))


def create_rule(tenant: Tenant, rule: dict[str, Any]) -> dict[str, Any]:
    response = tenant.post("/api/v1/alert-rules", rule)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["state"] == "ok"
    return body


def rule_state(tenant: Tenant, rule_id: str) -> str:
    return str(tenant.get(f"/api/v1/alert-rules/{rule_id}").json()["state"])


def history(tenant: Tenant, rule_id: str) -> list[dict[str, Any]]:
    response = tenant.get(f"/api/v1/alert-rules/{rule_id}/history")
    assert response.status_code == 200, response.text
    return list(response.json().get("events", []))


def oncall_address() -> str:
    return f"oncall-{secrets.token_hex(4)}@example.com"


def test_failure_rate_fires_once_resolves_and_fires_again(
    tenant: Tenant, sandbox: httpx.Client
) -> None:
    oncall = oncall_address()
    rule = create_rule(
        tenant,
        {
            "kind": "failure_rate",
            "channel": "sms",
            "threshold_percent": 50,
            "window": "10m",
            "min_sends": 4,
            "notify": {"channel": "email", "to": oncall},
        },
    )
    rule_id = rule["rule_id"]
    assert rule["name"] == "failure rate of sms above 50% over 10m"

    # Three failures are below min_sends: nothing fires.
    settle(tenant, [send_sms(tenant, REFUSED_NUMBER) for _ in range(3)], "failed")
    time.sleep(3)
    assert rule_state(tenant, rule_id) == "ok"
    assert messages_at(sandbox, oncall) == []

    # A burst of failures: one alert, however many checks see the breach.
    settle(tenant, [send_sms(tenant, REFUSED_NUMBER) for _ in range(5)], "failed")
    fired = wait_for(lambda: messages_at(sandbox, oncall), timeout=30)
    assert len(fired) == 1
    assert fired[0]["subject"].startswith("[Clarion alert] failure rate of sms")
    # Checks run while failures arrive: it fires at the first check past min_sends.
    assert "failure rate 100.0% (" in fired[0]["body"]
    assert rule_state(tenant, rule_id) == "firing"
    settle(tenant, [send_sms(tenant, REFUSED_NUMBER) for _ in range(2)], "failed")
    time.sleep(4)
    assert len(messages_at(sandbox, oncall)) == 1

    # Successes bring the rate to 10 of 22 (45%): resolved, with a notice
    # (by the check that first sees 50% or less).
    settle(tenant, [send_sms(tenant, "+14155550142") for _ in range(12)], "delivered")
    notices = wait_for(lambda: (m := messages_at(sandbox, oncall))[1:] and m, timeout=30)
    assert len(notices) == 2
    assert notices[1]["subject"].startswith("[Clarion alert resolved]")
    assert rule_state(tenant, rule_id) == "ok"

    # A new breach fires again, on its way to 20 of 32 (62.5%).
    settle(tenant, [send_sms(tenant, REFUSED_NUMBER) for _ in range(10)], "failed")
    again = wait_for(lambda: (m := messages_at(sandbox, oncall))[2:] and m, timeout=30)
    time.sleep(3)
    assert len(messages_at(sandbox, oncall)) == 3
    assert again[2]["subject"].startswith("[Clarion alert] ")

    events = history(tenant, rule_id)
    assert [e["kind"] for e in events] == ["fired", "resolved", "fired"]
    again_at, resolved_at, fired_at = (e["value"] for e in events)
    assert fired_at == 100.0 and resolved_at <= 50 < again_at
    assert events[1]["failed"] == "10" and 20 <= int(events[1]["finished"]) <= 22
    for event in events:
        assert event["occurred_at"]
        measured = 100 * int(event["failed"]) / int(event["finished"])
        assert event["value"] == pytest.approx(measured)
        assert f"failure rate {event['value']:.1f}% ({event['failed']} of " in event["summary"]
        # The alert is the tenant's own notification, delivered by email.
        sent = tenant.get(f"/api/v1/notifications/{event['notification_id']}").json()
        assert sent["channels"] == ["email"] and sent["recipient"]["email"] == oncall
    # Paged, newest first.
    first = tenant.get(f"/api/v1/alert-rules/{rule_id}/history", params={"page_size": 2}).json()
    assert [e["kind"] for e in first["events"]] == ["fired", "resolved"]
    rest = tenant.get(
        f"/api/v1/alert-rules/{rule_id}/history",
        params={"page_size": 2, "page_token": first["next_page_token"]},
    ).json()
    assert [e["kind"] for e in rest["events"]] == ["fired"] and not rest.get("next_page_token")


def test_retries_that_succeed_are_not_failures(tenant: Tenant, sandbox: httpx.Client) -> None:
    slack_user = f"U{secrets.token_hex(4).upper()}"
    rule = create_rule(
        tenant,
        {
            "kind": "failure_count",
            "channel": "sms",
            "max_failures": 0,
            "window": "5m",
            "notify": {"channel": "slack", "to": slack_user},
        },
    )
    # Each is refused twice by the provider, then delivered on its third attempt.
    sent = [send_sms(tenant, TWICE_TRANSIENT_NUMBER) for _ in range(3)]
    settle(tenant, sent, "delivered")
    for notification_id in sent:
        attempts = tenant.get(f"/api/v1/notifications/{notification_id}").json()
        assert attempts["deliveries"][0]["attempts"] == 3
    time.sleep(4)
    assert rule_state(tenant, rule["rule_id"]) == "ok"
    assert messages_at(sandbox, slack_user, "slack") == []

    # One final failure is more than 0: the rule is live, and fires on Slack.
    settle(tenant, [send_sms(tenant, REFUSED_NUMBER)], "failed")
    fired = wait_for(lambda: messages_at(sandbox, slack_user, "slack"), timeout=30)
    assert fired[0]["body"].startswith("FIRING: more than 0 failures in 5m on sms.")
    assert "1 failures over 5m" in fired[0]["body"]
    assert history(tenant, rule["rule_id"])[0]["value"] == 1.0


def test_bulk_outcomes_count_and_their_retries_do_not(
    tenant: Tenant, sandbox: httpx.Client
) -> None:
    oncall = oncall_address()
    rule = create_rule(
        tenant,
        {
            "kind": "failure_count",
            "channel": "sms",
            "max_failures": 0,
            "window": "5m",
            "notify": {"channel": "email", "to": oncall},
        },
    )
    response = tenant.post(
        "/api/v1/notifications/bulk",
        {
            "channels": ["sms"],
            "body": f"bulk alert {secrets.token_hex(3)}",
            "recipients": [
                {"phone": TWICE_TRANSIENT_NUMBER},
                {"phone": REFUSED_NUMBER},
                {"phone": "+14155550143"},
            ],
        },
    )
    assert response.status_code == 200, response.text
    bulk_id = response.json()["bulk_id"]
    wait_for(
        lambda: (
            tenant.get(f"/api/v1/notifications/bulk/{bulk_id}").json()["counts"]
            == {"queued": 0, "sent": 0, "delivered": 2, "failed": 1}
        ),
        timeout=60,
    )
    (fired,) = wait_for(lambda: messages_at(sandbox, oncall), timeout=30)
    time.sleep(3)
    assert len(messages_at(sandbox, oncall)) == 1
    (event,) = history(tenant, rule["rule_id"])
    # The retried row was refused twice before it was delivered: one failure.
    assert event["value"] == 1.0 and event["failed"] == "1"
    assert "1 failures over 5m" in fired["body"]


def test_an_alert_never_counts_toward_a_rule(tenant: Tenant, sandbox: httpx.Client) -> None:
    """Rule A sends its SMS alert to a number the provider refuses; had that
    failure counted, rule B (one failure more) would fire too."""
    oncall = oncall_address()
    watch = {"kind": "failure_count", "channel": "sms", "window": "5m"}
    a = create_rule(
        tenant, watch | {"max_failures": 1, "notify": {"channel": "sms", "to": REFUSED_NUMBER}}
    )
    b = create_rule(
        tenant, watch | {"max_failures": 2, "notify": {"channel": "email", "to": oncall}}
    )
    settle(tenant, [send_sms(tenant, REFUSED_NUMBER) for _ in range(2)], "failed")
    (fired,) = wait_for(lambda: history(tenant, a["rule_id"]), timeout=30)
    alert = wait_for_status(tenant, fired["notification_id"], {"failed", "delivered"}, timeout=30)
    assert alert["status"] == "failed"
    time.sleep(4)
    assert rule_state(tenant, b["rule_id"]) == "ok"
    assert history(tenant, b["rule_id"]) == [] and messages_at(sandbox, oncall) == []


def test_no_receipts_fires_when_sends_get_no_receipts(
    tenant: Tenant, sandbox: httpx.Client
) -> None:
    oncall = oncall_address()
    rule = create_rule(
        tenant,
        {
            "kind": "no_receipts",
            "channel": "email",
            "window": "1m",
            "notify": {"channel": "email", "to": oncall},
        },
    )
    assert rule["name"] == "no delivery receipts for 1m on email"
    # Accepted by the provider, and never a receipt.
    silent = send_email(tenant, f"noreceipt+{secrets.token_hex(3)}@example.com")
    wait_for_status(tenant, silent, {"sent"})
    # It counts once its minute has passed.
    fired = wait_for(lambda: messages_at(sandbox, oncall), timeout=130, interval=1)
    assert len(fired) == 1 and "0 delivery receipts for 1 messages" in fired[0]["body"]
    # A receipt clears it.
    settle(tenant, [send_email(tenant, f"ok-{secrets.token_hex(3)}@example.com")], "delivered")
    notices = wait_for(lambda: (m := messages_at(sandbox, oncall))[1:] and m, timeout=30)
    assert notices[1]["subject"].startswith("[Clarion alert resolved]")
    assert [e["kind"] for e in history(tenant, rule["rule_id"])] == ["resolved", "fired"]


GOOD_RULE: dict[str, Any] = {
    "kind": "failure_rate",
    "channel": "sms",
    "threshold_percent": 5,
    "window": "10m",
    "min_sends": 50,
    "notify": {"channel": "email", "to": "oncall@example.com"},
}

BAD_RULES = [
    ({"kind": "sometimes"}, "kind"),
    ({"channel": "pigeon"}, "channel"),
    ({"channel": ""}, "channel"),
    ({"template_id": "Bad Id"}, "template_id"),
    ({"threshold_percent": 0}, "threshold_percent"),
    ({"threshold_percent": 150}, "threshold_percent"),
    ({"max_failures": 3}, "max_failures"),
    ({"window": ""}, "window"),
    ({"window": "soon"}, "window"),
    ({"window": "30s"}, "window"),
    ({"window": "25h"}, "window"),
    ({"window": "90s"}, "window"),
    ({"min_sends": -1}, "min_sends"),
    ({"name": "x" * 201}, "name"),
    ({"name": "two\nlines"}, "name"),
    ({"notify": {"channel": "whatsapp", "to": "+14155550100"}}, "notify.channel"),
    ({"notify": {"channel": "email", "to": "not-an-address"}}, "notify.to"),
    ({"notify": {"channel": "sms", "to": "0800 123"}}, "notify.to"),
    ({"notify": {"channel": "slack", "to": ""}}, "notify.to"),
    ({"kind": "no_receipts", "threshold_percent": 0, "channel": "slack"}, "channel"),
    ({"kind": "failure_count", "threshold_percent": 0, "min_sends": 0, "max_failures": -1},
     "max_failures"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field"), BAD_RULES)
def test_invalid_rules_are_refused_naming_the_field(
    tenant: Tenant, change: dict[str, Any], field: str
) -> None:
    response = tenant.post("/api/v1/alert-rules", GOOD_RULE | change)
    assert response.status_code == 400, response.text
    assert reason(response) == "INVALID_ALERT_RULE"
    assert violations(response) == [field]
    assert field in response.json()["message"]


def test_rules_are_private_to_their_tenant(tenant: Tenant, api: httpx.Client) -> None:
    rule = create_rule(tenant, GOOD_RULE)
    rule_id = rule["rule_id"]
    assert rule["notify"] == {"channel": "email", "to": "oncall@example.com"}
    other = signup(api)
    assert other.get(f"/api/v1/alert-rules/{rule_id}").status_code == 404
    assert other.get(f"/api/v1/alert-rules/{rule_id}/history").status_code == 404
    assert other.delete(f"/api/v1/alert-rules/{rule_id}").status_code == 404
    assert other.get("/api/v1/alert-rules").json().get("rules", []) == []

    listed = tenant.get("/api/v1/alert-rules").json()["rules"]
    assert [r["rule_id"] for r in listed] == [rule_id]
    # Checked by its workflow within a few seconds.
    wait_for(lambda: tenant.get(f"/api/v1/alert-rules/{rule_id}").json().get("last_evaluated_at"))
    assert tenant.delete(f"/api/v1/alert-rules/{rule_id}").status_code == 200
    assert tenant.get(f"/api/v1/alert-rules/{rule_id}").status_code == 404
    assert tenant.get("/api/v1/alert-rules/alr_nonsense").status_code == 404


def test_a_disabled_rule_is_not_checked_until_enabled(
    tenant: Tenant, sandbox: httpx.Client, api: httpx.Client
) -> None:
    oncall = oncall_address()
    rule = create_rule(
        tenant,
        {
            "kind": "failure_count",
            "channel": "sms",
            "max_failures": 0,
            "window": "10m",
            "notify": {"channel": "email", "to": oncall},
        },
    )
    rule_id = rule["rule_id"]
    assert rule["enabled"] is True
    assert signup(api).post(f"/api/v1/alert-rules/{rule_id}:disable", {}).status_code == 404
    disabled = tenant.post(f"/api/v1/alert-rules/{rule_id}:disable", {})
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    settle(tenant, [send_sms(tenant, REFUSED_NUMBER)], "failed")
    time.sleep(4)
    assert rule_state(tenant, rule_id) == "ok" and messages_at(sandbox, oncall) == []

    enabled = tenant.post(f"/api/v1/alert-rules/{rule_id}:enable", {})
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    (fired,) = wait_for(lambda: messages_at(sandbox, oncall), timeout=30)
    assert "1 failures over 10m" in fired["body"]
    assert rule_state(tenant, rule_id) == "firing"
