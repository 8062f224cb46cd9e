"""Templates through Envoy: create, version, approve, send, roll out, archive."""

from typing import Any

import httpx
import pytest

from server.domain.rollout import bucket
from tests.conftest import TEST_SETTINGS, Tenant, signup
from tests.e2e.waiting import wait_for, wait_for_status

SEND = "/api/v1/notifications/send"

# The example template, verbatim.
ORDER_CONFIRMATION = {
    "template_id": "order_confirmation",
    "description": "optional",
    "channels": {
        "email": {
            "subject": "Order {{order_id}} confirmed",
            "body": "Hi {{name}} ...",
            "html_body": "<p>Hi {{name}} ...</p>",
        },
        "sms": {"body": "Hi {{name}}, order {{order_id}} confirmed"},
        "slack": {"body": "*{{service}}* alert: severity {{severity}}"},
        "voice": {"body": "Hello {{name}}. Your order {{order_id}} is confirmed."},
        "whatsapp": {
            "body": "Hi {{name}}, your order {{order_id}} is confirmed.",
            "language": "en_US",
        },
    },
}

# Section 4 of the integration guide, verbatim.
GUIDE_SLACK = """{
  "recipient": {"slack_user_id": "U123456"},
  "notification": {
    "channels": ["slack"],
    "template_id": "slack_ops_alert",
    "data": {"service": "payments", "severity": "high"}
  }
}"""

GUIDE_WHATSAPP = """{
  "recipient": {"phone": "+14155550123"},
  "notification": {
    "channels": ["whatsapp"],
    "template_id": "wa_order_update",
    "data": {"name": "Alex", "order_id": "ORD-1001"}
  }
}"""


def reason(response: httpx.Response) -> str:
    return str(response.json()["details"][0]["reason"])


def create(tenant: Tenant, template_id: str, channels: dict[str, Any]) -> dict[str, Any]:
    response = tenant.post("/api/v1/templates", {"template_id": template_id, "channels": channels})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_approved(tenant: Tenant, template_id: str) -> dict[str, Any]:
    def approved() -> dict[str, Any] | None:
        body: dict[str, Any] = tenant.get(f"/api/v1/templates/{template_id}").json()
        return body if body["whatsapp_approval"]["status"] != "pending" else None

    result: dict[str, Any] = wait_for(approved, timeout=30)
    return result


def send_raw(tenant: Tenant, payload: str) -> httpx.Response:
    return tenant.api.post(
        SEND,
        content=payload.encode(),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )


def test_create_returns_version_one_with_sorted_variables(tenant: Tenant) -> None:
    created = tenant.post("/api/v1/templates", ORDER_CONFIRMATION)
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["template_id"] == "order_confirmation"
    assert body["version"] == 1 and body["latest_version"] == 1
    assert body["variables"] == ["name", "order_id", "service", "severity"]
    assert body["created_at"]
    assert body["channels"] == ORDER_CONFIRMATION["channels"]
    assert body["whatsapp_approval"]["status"] == "pending"
    assert wait_approved(tenant, "order_confirmation")["whatsapp_approval"] == {
        "status": "approved",
        "reason": "",
    }
    again = tenant.post("/api/v1/templates", ORDER_CONFIRMATION)
    assert again.status_code == 409


def test_guide_slack_template_payload_is_delivered(tenant: Tenant, sandbox: httpx.Client) -> None:
    create(
        tenant, "slack_ops_alert", {"slack": {"body": "*{{service}}* alert: severity {{severity}}"}}
    )
    response = send_raw(tenant, GUIDE_SLACK)
    assert response.status_code == 200, response.text
    final = wait_for_status(tenant, response.json()["notification_id"], {"delivered", "failed"})
    assert final["status"] == "delivered"
    assert (final["template_id"], final["template_version"]) == ("slack_ops_alert", 1)
    posted = sandbox.get("/sandbox/api/messages", params={"channel": "slack", "to": "U123456"})
    assert "*payments* alert: severity high" in [m["body"] for m in posted.json()["messages"]]


def test_guide_whatsapp_template_payload_is_delivered(
    tenant: Tenant, sandbox: httpx.Client
) -> None:
    create(
        tenant,
        "wa_order_update",
        {
            "whatsapp": {
                "body": "Hi {{name}}, your order {{order_id}} is confirmed.",
                "language": "en_US",
            }
        },
    )
    early = send_raw(tenant, GUIDE_WHATSAPP)
    assert early.status_code == 400
    assert reason(early) == "TEMPLATE_NOT_APPROVED"
    assert tenant.get("/api/v1/notifications").json()["notifications"] == []

    wait_approved(tenant, "wa_order_update")
    response = send_raw(tenant, GUIDE_WHATSAPP)
    assert response.status_code == 200, response.text
    final = wait_for_status(tenant, response.json()["notification_id"], {"delivered", "failed"})
    assert final["status"] == "delivered"
    assert final["template_version"] == 1
    messages = sandbox.get(
        "/sandbox/api/messages", params={"channel": "whatsapp", "to": "+14155550123"}
    ).json()["messages"]
    assert "Hi Alex, your order ORD-1001 is confirmed." in [m["body"] for m in messages]
    # Meta received positional parameters; the tenant never wrote {{1}}.
    request = next(m["request"] for m in messages if "Alex" in m["body"])
    parameters = request["template"]["components"][0]["parameters"]
    assert [p["text"] for p in parameters] == ["Alex", "ORD-1001"]


def test_rejected_whatsapp_template_cannot_be_sent(tenant: Tenant) -> None:
    create(tenant, "reject_promo", {"whatsapp": {"body": "Buy {{item}}", "language": "en_US"}})
    review = wait_approved(tenant, "reject_promo")["whatsapp_approval"]
    assert review["status"] == "rejected" and review["reason"]
    response = tenant.post(
        SEND,
        {
            "recipient": {"phone": "+14155550123"},
            "notification": {
                "channels": ["whatsapp"],
                "template_id": "reject_promo",
                "data": {"item": "x"},
            },
        },
    )
    assert response.status_code == 400
    assert reason(response) == "TEMPLATE_NOT_APPROVED"
    assert "rejected" in response.json()["message"]


def test_missing_variables_are_all_named_with_the_channel(tenant: Tenant) -> None:
    create(tenant, "t_vars", {"sms": {"body": "Hi {{name}}, order {{order_id}} at {{time}}"}})
    response = tenant.post(
        SEND,
        {
            "recipient": {"phone": "+14155550123"},
            "notification": {
                "channels": ["sms"],
                "template_id": "t_vars",
                "data": {"name": "A", "extra": 1},
            },
        },
    )
    assert response.status_code == 400
    assert reason(response) == "TEMPLATE_VARIABLE_MISMATCH"
    message = response.json()["message"]
    assert "sms" in message and "order_id" in message and "time" in message
    assert tenant.get("/api/v1/notifications").json()["notifications"] == []


def test_selected_channel_without_content_is_named(tenant: Tenant) -> None:
    create(tenant, "sms_only", {"sms": {"body": "Hi"}})
    response = tenant.post(
        SEND,
        {
            "recipient": {"email": "a@example.com"},
            "notification": {"channels": ["email"], "template_id": "sms_only"},
        },
    )
    assert response.status_code == 400
    assert "email" in response.json()["message"]


@pytest.mark.parametrize(
    ("channels", "needle"),
    [
        ({"sms": {"body": "Hi {{ name "}}, "line 1"),
        ({"sms": {"body": "line one\n{{ user.name }}"}}, "line 2"),
        ({"sms": {"body": "{{ ''.__class__.__mro__ }}"}}, "line 1"),
        ({"sms": {"body": "{% for i in range(99999999) %}x{% endfor %}"}}, "line 1"),
        ({"sms": {"body": "{{ lipsum() }}"}}, "line 1"),
        ({"sms": {"body": "x" * 1601}}, "1600"),
        ({"whatsapp": {"body": "Hi {{1}}", "language": "en_US"}}, "whatsapp"),
        # Envoy's transcoder drops unknown JSON fields, so an unknown channel
        # arrives as no channel at all; the message lists the real ones.
        ({"fax": {"body": "x"}}, "email, sms, slack, voice, whatsapp"),
    ],
)
def test_bad_templates_are_refused_at_create(
    tenant: Tenant, channels: dict[str, Any], needle: str
) -> None:
    response = tenant.post("/api/v1/templates", {"template_id": "bad", "channels": channels})
    assert response.status_code == 400, response.text
    assert needle in response.json()["message"]
    assert tenant.get("/api/v1/templates/bad").status_code == 404


def test_unknown_and_foreign_templates_look_the_same(tenant: Tenant, api: httpx.Client) -> None:
    other = signup(api)
    create(other, "theirs", {"sms": {"body": "Hi"}})

    def send(template_id: str) -> httpx.Response:
        return tenant.post(
            SEND,
            {
                "recipient": {"phone": "+14155550123"},
                "notification": {"channels": ["sms"], "template_id": template_id},
            },
        )

    foreign, unknown = send("theirs"), send("nothing")
    assert foreign.status_code == unknown.status_code == 400
    assert reason(foreign) == reason(unknown) == "TEMPLATE_NOT_FOUND"
    assert tenant.get("/api/v1/templates/theirs").status_code == 404
    assert (
        tenant.get("/api/v1/templates/theirs").json()
        == tenant.get("/api/v1/templates/nothing").json()
    )


def test_versions_are_immutable_and_not_live_until_rolled_out(tenant: Tenant) -> None:
    create(tenant, "versioned", {"sms": {"body": "v1 {{name}}"}})
    v2 = tenant.post(
        "/api/v1/templates/versioned/versions", {"channels": {"sms": {"body": "v2 {{name}}"}}}
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["version"] == 2
    state = tenant.get("/api/v1/templates/versioned").json()
    assert (state["version"], state["latest_version"]) == (1, 2)
    assert (
        tenant.get("/api/v1/templates/versioned/versions/1").json()["channels"]["sms"]["body"]
        == "v1 {{name}}"
    )
    preview = tenant.post("/api/v1/templates/versioned/preview", {"data": {"name": "Al"}})
    assert preview.json()["rendered"][0]["body"] == "v1 Al"

    promoted = tenant.post("/api/v1/templates/versioned/rollout", {"version": 2, "percent": 100})
    assert promoted.json()["version"] == 2
    assert (
        tenant.post("/api/v1/templates/versioned/preview", {"data": {"name": "Al"}}).json()[
            "rendered"
        ][0]["body"]
        == "v2 Al"
    )
    rolled_back = tenant.post("/api/v1/templates/versioned/rollout", {"version": 1, "percent": 100})
    assert rolled_back.json()["version"] == 1
    assert tenant.get("/api/v1/templates/versioned/versions/3").status_code == 404


def test_preview_renders_and_fails_like_a_send(tenant: Tenant) -> None:
    tenant.post("/api/v1/templates", {**ORDER_CONFIRMATION, "template_id": "preview_me"})
    ok = tenant.post(
        "/api/v1/templates/preview_me/preview",
        {"data": {"name": "<b>Al</b>", "order_id": "7"}, "channels": ["email", "sms"]},
    )
    assert ok.status_code == 200, ok.text
    email, sms = ok.json()["rendered"]
    assert email["subject"] == "Order 7 confirmed"
    assert email["html_body"] == "<p>Hi &lt;b&gt;Al&lt;/b&gt; ...</p>"  # escaped in HTML only
    assert email["body"] == "Hi <b>Al</b> ..."
    assert sms["body"] == "Hi <b>Al</b>, order 7 confirmed"
    bad = tenant.post("/api/v1/templates/preview_me/preview", {"data": {}, "channels": ["sms"]})
    assert bad.status_code == 400
    assert reason(bad) == "TEMPLATE_VARIABLE_MISMATCH"


def test_archived_template_refuses_sends_but_keeps_history(tenant: Tenant) -> None:
    create(tenant, "old", {"sms": {"body": "Hello {{name}}"}})
    sent = tenant.post(
        SEND,
        {
            "recipient": {"phone": "+14155550123"},
            "notification": {"channels": ["sms"], "template_id": "old", "data": {"name": "B"}},
        },
    ).json()
    assert tenant.delete("/api/v1/templates/old").status_code == 200
    again = tenant.post(
        SEND,
        {
            "recipient": {"phone": "+14155550123"},
            "notification": {"channels": ["sms"], "template_id": "old", "data": {"name": "B"}},
        },
    )
    assert reason(again) == "TEMPLATE_NOT_FOUND"
    assert tenant.get("/api/v1/templates/old").status_code == 404
    kept = tenant.get(f"/api/v1/notifications/{sent['notification_id']}").json()
    assert kept["template_id"] == "old"


def guarded_rollout_addresses(tenant: Tenant) -> tuple[list[str], list[str]]:
    """Starts a 50% rollout of a version 2 of `guarded`; returns addresses
    whose sticky bucket lands on version 2 and that the sandbox rejects
    permanently, and ordinary addresses that stay on version 1."""
    create(tenant, "guarded", {"email": {"subject": "s", "body": "v1"}})
    tenant.post(
        "/api/v1/templates/guarded/versions",
        {"channels": {"email": {"subject": "s", "body": "v2"}}},
    )
    tenant.post("/api/v1/templates/guarded/rollout", {"version": 2, "percent": 50})
    failing = [
        a
        for a in (f"reject+{i}@example.com" for i in range(400))
        if bucket("guarded", f"email={a}") < 50
    ]
    passing = [
        a
        for a in (f"ok{i}@example.com" for i in range(400))
        if bucket("guarded", f"email={a}") >= 50
    ]
    return failing, passing


def test_rollout_stops_itself_when_the_new_version_fails_more(tenant: Tenant) -> None:
    failing, passing = guarded_rollout_addresses(tenant)
    min_sends = int(TEST_SETTINGS["CLARION_ROLLOUT_MIN_SENDS"])
    for address in failing[:min_sends] + passing[:min_sends]:
        response = tenant.post(
            SEND,
            {
                "recipient": {"email": address},
                "notification": {"channels": ["email"], "template_id": "guarded"},
            },
        )
        assert response.status_code == 200, response.text

    def stopped() -> dict[str, Any] | None:
        rollout: dict[str, Any] = tenant.get("/api/v1/templates/guarded").json()["rollout"]
        return rollout if rollout["state"] == "stopped" else None

    assert "version 2 failed" in wait_for(stopped, timeout=60)["stopped_reason"]
    # Stopped means every recipient gets the active version again.
    later = tenant.post(
        SEND,
        {
            "recipient": {"email": failing[min_sends]},
            "notification": {"channels": ["email"], "template_id": "guarded"},
        },
    ).json()
    assert (
        tenant.get(f"/api/v1/notifications/{later['notification_id']}").json()["template_version"]
        == 1
    )


def test_rollout_guard_watches_bulk_sends_too(tenant: Tenant) -> None:
    # Slack sends no receipts, so only the bulk page's own outcomes can stop
    # this rollout. UNOTFOUND is refused by the sandbox and its sticky bucket
    # (under this template id) is on version 2.
    assert bucket("bulk_guarded", "slack_user_id=UNOTFOUND") < 50
    create(tenant, "bulk_guarded", {"slack": {"body": "v1"}})
    tenant.post("/api/v1/templates/bulk_guarded/versions", {"channels": {"slack": {"body": "v2"}}})
    tenant.post("/api/v1/templates/bulk_guarded/rollout", {"version": 2, "percent": 50})
    passing = [
        u
        for u in (f"U{i:08d}" for i in range(400))
        if bucket("bulk_guarded", f"slack_user_id={u}") >= 50
    ]
    min_sends = int(TEST_SETTINGS["CLARION_ROLLOUT_MIN_SENDS"])
    response = tenant.post(
        "/api/v1/notifications/bulk",
        {
            "channels": ["slack"],
            "template_id": "bulk_guarded",
            "recipients": [{"slack_user_id": u} for u in ["UNOTFOUND"] * min_sends]
            + [{"slack_user_id": u} for u in passing[:min_sends]],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2 * min_sends

    def stopped() -> dict[str, Any] | None:
        rollout: dict[str, Any] = tenant.get("/api/v1/templates/bulk_guarded").json()["rollout"]
        return rollout if rollout["state"] == "stopped" else None

    assert "version 2 failed" in wait_for(stopped, timeout=60)["stopped_reason"]


def test_template_ids_are_validated(tenant: Tenant) -> None:
    response = tenant.post(
        "/api/v1/templates", {"template_id": "Bad Id!", "channels": {"sms": {"body": "x"}}}
    )
    assert response.status_code == 400
    assert "template_id" in response.json()["message"]


def test_rollout_at_30_percent_is_sticky_per_recipient(tenant: Tenant) -> None:
    create(tenant, "split", {"slack": {"body": "one {{name}}"}})
    tenant.post(
        "/api/v1/templates/split/versions", {"channels": {"slack": {"body": "two {{name}}"}}}
    )
    started = tenant.post("/api/v1/templates/split/rollout", {"version": 2, "percent": 30})
    assert started.json()["rollout"]["state"] == "running"

    def bulk(count: int) -> list[int]:
        """Sends to `count` distinct recipients in one bulk; each row's version."""
        response = tenant.post(
            "/api/v1/notifications/bulk",
            {
                "channels": ["slack"],
                "template_id": "split",
                "data": {"name": "x"},
                "recipients": [{"slack_user_id": f"U{i:07d}"} for i in range(count)],
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["accepted"] == count
        versions: dict[str, int] = {}
        token = ""
        while True:
            params: dict[str, Any] = {"page_size": 100, "channel": "slack"}
            if token:
                params["page_token"] = token
            page = tenant.get("/api/v1/notifications", params=params).json()
            versions |= {n["notification_id"]: n["template_version"] for n in page["notifications"]}
            token = page["next_page_token"]
            if not token:
                break
        return [versions[n["notification_id"]] for n in body["notifications"]]

    versions = bulk(1000)
    share = versions.count(2) / len(versions)
    assert 0.25 <= share <= 0.35, share
    # Sent again, the first 100 recipients get the same versions.
    assert bulk(100) == versions[:100]
