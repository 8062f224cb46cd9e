"""Channel fallback routing through Envoy, as a tenant sees it: steps tried
in order with the sandbox's trigger recipients, a late receipt from a
superseded step that starts nothing, the default policy for high-priority
sends, and the checks at send time."""

import base64
import hashlib
import hmac
import secrets
import time
from datetime import datetime
from typing import Any

import httpx

from runner.stack import Stack
from tests.conftest import Tenant
from tests.e2e.waiting import wait_for

TWILIO_TOKEN = "sandbox-twilio-token"
INVALID_PHONE = "+15005550001"  # Twilio 21211: a permanent refusal
SILENT_PHONE = "+15005550302"  # accepted, never a callback


def _email() -> str:
    return f"route-{secrets.token_hex(5)}@example.com"


def _send(
    tenant: Tenant, recipient: dict[str, str], routing: dict[str, Any], body: str = ""
) -> str:
    response = tenant.post(
        "/api/v1/notifications/send",
        {
            "recipient": recipient,
            "notification": {
                "subject": "Your code",
                # Unique: the sandbox counts trigger outcomes per (to, body).
                "body": body
                or f"Your OTP is {secrets.randbelow(10**6):06d} {secrets.token_hex(3)}",
                "routing": routing,
            },
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["notification_id"])


def _routed(tenant: Tenant, notification_id: str, timeout: float = 40) -> dict[str, Any]:
    """The notification once routing has ended: no step pending or trying."""

    def ended() -> dict[str, Any] | None:
        body: dict[str, Any] = tenant.get(f"/api/v1/notifications/{notification_id}").json()
        steps = body["routing"]["steps"]
        return body if all(s["outcome"] not in ("pending", "trying") for s in steps) else None

    result: dict[str, Any] = wait_for(ended, timeout)
    return result


def _messages(sandbox: httpx.Client, channel: str, to: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = sandbox.get(
        "/sandbox/api/messages", params={"channel": channel, "to": to}
    ).json()["messages"]
    return found


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _twilio_signature(url: str, form: dict[str, str]) -> str:
    """X-Twilio-Signature as Twilio (and the sandbox) computes it."""
    payload = url + "".join(k + v for k, v in sorted(form.items()))
    digest = hmac.new(TWILIO_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_first_channel_fails_permanently_then_the_second_delivers(
    tenant: Tenant, sandbox: httpx.Client
) -> None:
    email = _email()
    notification_id = _send(
        tenant,
        {"phone": INVALID_PHONE, "email": email},
        {"strategy": "fallback", "channels": ["sms", "email"], "success_on": "delivered",
         "step_timeout": "20s"},
    )  # fmt: skip
    body = _routed(tenant, notification_id)
    assert body["status"] == "delivered"
    steps = body["routing"]["steps"]
    assert [(s["channel"], s["outcome"]) for s in steps] == [
        ("sms", "failed"),
        ("email", "delivered"),
    ]
    assert steps[0]["reason"] == "invalid phone number"
    assert [(d["channel"], d["status"]) for d in body["deliveries"]] == [
        ("sms", "failed"),
        ("email", "delivered"),
    ]
    assert body["routing"]["source"] == "request"
    assert body["channels"] == ["sms", "email"]
    assert len(_messages(sandbox, "email", email)) == 1


def test_a_step_without_a_receipt_times_out_and_its_late_receipt_starts_nothing(
    stack: Stack, tenant: Tenant, sandbox: httpx.Client, webhooks: httpx.Client
) -> None:
    email = _email()
    slack_user = "U" + secrets.token_hex(4).upper()
    step_timeout = 3.0
    text = f"Your OTP is {secrets.token_hex(4)}"
    sent_at = time.time()
    notification_id = _send(
        tenant,
        {"phone": SILENT_PHONE, "email": email, "slack_user_id": slack_user},
        {"channels": ["sms", "email", "slack"], "success_on": "delivered",
         "step_timeout": f"{step_timeout:g}s"},
        body=text,
    )  # fmt: skip
    body = _routed(tenant, notification_id)
    assert body["status"] == "delivered"
    steps = body["routing"]["steps"]
    assert [(s["channel"], s["outcome"]) for s in steps] == [
        ("sms", "timed_out"),
        ("email", "delivered"),
        ("slack", "skipped"),
    ]
    assert "step_timeout 3s" in steps[0]["reason"]
    assert steps[2]["reason"] == "step 2 (email) succeeded"
    # Only the channels tried have deliveries.
    assert [d["channel"] for d in body["deliveries"]] == ["sms", "email"]
    # What a fallback step adds beyond its step_timeout: from the first
    # step's start to the second's, and to the sandbox receiving it.
    step_gap = _stamp(steps[1]["started_at"]) - _stamp(steps[0]["started_at"])
    email_message = _messages(sandbox, "email", email)[0]
    arrived = _stamp(email_message["received_at"]) - sent_at
    print(
        f"\nfallback step: started {step_gap - step_timeout:.3f} s after step_timeout "
        f"({step_timeout:g} s); email reached the provider {arrived - step_timeout:.3f} s "
        "after step_timeout, measured from the send request"
    )
    assert step_gap >= step_timeout

    # A late receipt for the superseded SMS, signed as the sandbox signs it.
    sms = _messages(sandbox, "sms", SILENT_PHONE)
    sms = [m for m in sms if m["body"] == text]
    assert len(sms) == 1
    callback_url = sms[0]["request"]["StatusCallback"]
    path = callback_url[callback_url.index("/callbacks/") :]
    form = {
        "MessageSid": sms[0]["provider_message_id"],
        "SmsSid": sms[0]["provider_message_id"],
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "To": SILENT_PHONE,
        "From": sms[0]["from"],
        "ApiVersion": "2010-04-01",
    }
    receipt = webhooks.post(
        path,
        data=form,
        headers={"X-Twilio-Signature": _twilio_signature(stack.webhook_url + path, form)},
    )
    assert receipt.status_code == 200, receipt.text

    def recorded() -> dict[str, Any] | None:
        now: dict[str, Any] = tenant.get(f"/api/v1/notifications/{notification_id}").json()
        return now if now["deliveries"][0]["status"] == "delivered" else None

    wait_for(recorded, timeout=10)
    time.sleep(1.0)
    after = tenant.get(f"/api/v1/notifications/{notification_id}").json()
    assert after["status"] == "delivered"
    assert after["routing"]["steps"] == steps
    assert [d["channel"] for d in after["deliveries"]] == ["sms", "email"]
    assert len(_messages(sandbox, "email", email)) == 1
    same_sms = [m for m in _messages(sandbox, "sms", SILENT_PHONE) if m["body"] == sms[0]["body"]]
    assert len(same_sms) == 1
    assert _messages(sandbox, "slack", slack_user) == []


def test_all_steps_fail_and_every_reason_is_listed(tenant: Tenant) -> None:
    notification_id = _send(
        tenant,
        {"phone": INVALID_PHONE, "email": f"reject+{secrets.token_hex(4)}@example.com"},
        {"channels": ["sms", "email"], "success_on": "sent", "step_timeout": "20s"},
    )
    body = _routed(tenant, notification_id)
    assert body["status"] == "failed"
    assert [(s["channel"], s["outcome"], s["reason"]) for s in body["routing"]["steps"]] == [
        ("sms", "failed", "invalid phone number"),
        ("email", "failed", "email address rejected by the receiving server"),
    ]
    assert [d["status"] for d in body["deliveries"]] == ["failed", "failed"]


def test_success_on_sent_stops_at_the_first_accepted_step(tenant: Tenant) -> None:
    notification_id = _send(
        tenant,
        {"phone": SILENT_PHONE, "email": _email()},
        {"channels": ["sms", "email"], "success_on": "sent", "step_timeout": "20s"},
    )

    body = _routed(tenant, notification_id)
    assert [(s["outcome"]) for s in body["routing"]["steps"]] == ["sent", "skipped"]
    assert body["status"] == "sent"
    assert [d["channel"] for d in body["deliveries"]] == ["sms"]


def _refused(response: httpx.Response, reason: str, field: str) -> None:
    assert response.status_code == 400, response.text
    details = response.json()["details"]
    assert any(d.get("reason") == reason for d in details), details
    violations = [
        v["field"] for d in details for v in d.get("fieldViolations", d.get("field_violations", []))
    ]
    assert field in violations, details


def test_routing_is_checked_at_send_time(tenant: Tenant) -> None:
    def send(recipient: dict[str, str], notification: dict[str, Any]) -> httpx.Response:
        return tenant.post(
            "/api/v1/notifications/send",
            {"recipient": recipient, "notification": {"body": "hi"} | notification},
        )

    both = send({"phone": "+14155550123"}, {"channels": ["sms"], "routing": {"channels": ["sms"]}})
    _refused(both, "ROUTING_CONFLICT", "notification.routing")
    for bad in ("60", "0s", "-1s", "90000s", "soon"):
        timeout = send(
            {"phone": "+14155550123"}, {"routing": {"channels": ["sms"], "step_timeout": bad}}
        )
        _refused(timeout, "INVALID_ROUTING", "notification.routing.step_timeout")
    success_on = send(
        {"phone": "+14155550123"}, {"routing": {"channels": ["sms"], "success_on": "read"}}
    )
    _refused(success_on, "INVALID_ROUTING", "notification.routing.success_on")
    strategy = send(
        {"phone": "+14155550123"}, {"routing": {"strategy": "broadcast", "channels": ["sms"]}}
    )
    _refused(strategy, "INVALID_ROUTING", "notification.routing.strategy")
    # Every step's recipient field, not only the first's.
    missing = send({"phone": "+14155550123"}, {"routing": {"channels": ["sms", "email"]}})
    _refused(missing, "RECIPIENT_FIELD_MISSING", "recipient.email")
    # WhatsApp's template rule holds for its step.
    whatsapp = send({"phone": "+14155550123"}, {"routing": {"channels": ["whatsapp", "sms"]}})
    _refused(whatsapp, "TEMPLATE_REQUIRED", "notification.template_id")
    repeated = send({"phone": "+14155550123"}, {"routing": {"channels": ["sms", "sms"]}})
    _refused(repeated, "INVALID_CHANNEL", "notification.routing.channels")


def test_high_priority_uses_the_tenants_default_routing(
    tenant: Tenant, sandbox: httpx.Client
) -> None:
    unset = tenant.get("/api/v1/routing/default")
    assert unset.status_code == 404, unset.text
    email = _email()
    high = {
        "recipient": {"phone": INVALID_PHONE, "email": email},
        "notification": {"body": f"high {secrets.token_hex(3)}", "priority": "high"},
    }
    no_default = tenant.post("/api/v1/notifications/send", high)
    _refused(no_default, "ROUTING_DEFAULT_MISSING", "notification.routing")

    put = tenant.api.put(
        "/api/v1/routing/default",
        headers=tenant.headers,
        json={"channels": ["sms", "email"], "step_timeout": "15s"},
    )
    assert put.status_code == 200, put.text
    expected = {
        "strategy": "fallback",
        "channels": ["sms", "email"],
        "success_on": "delivered",
        "step_timeout": "15s",
    }
    assert put.json()["routing"] == expected
    got = tenant.get("/api/v1/routing/default")
    assert got.status_code == 200 and got.json()["routing"] == expected
    bad = tenant.api.put(
        "/api/v1/routing/default", headers=tenant.headers, json={"channels": ["fax"]}
    )
    _refused(bad, "INVALID_CHANNEL", "routing.channels")

    response = tenant.post("/api/v1/notifications/send", high)
    assert response.status_code == 200, response.text
    body = _routed(tenant, response.json()["notification_id"])
    assert body["status"] == "delivered"
    assert body["routing"]["source"] == "default"
    assert body["routing"]["step_timeout"] == "15s"
    assert [s["outcome"] for s in body["routing"]["steps"]] == ["failed", "delivered"]


def test_capabilities_say_which_channels_give_receipts(tenant: Tenant) -> None:
    channels = tenant.get("/api/v1/channels/capabilities").json()["channels"]
    receipts = {c["channel"]: c["gives_receipts"] for c in channels}
    assert receipts == {
        "email": True,
        "sms": True,
        "slack": False,
        "voice": True,
        "whatsapp": True,
    }
