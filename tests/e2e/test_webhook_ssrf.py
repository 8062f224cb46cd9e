"""Webhook registration on the shared stack, where private webhooks are off
(the default): URLs that are not https, or whose host is or resolves to a
non-public address, are refused with 400 INVALID_WEBHOOK_URL naming `url`."""

import pytest

from tests.conftest import Tenant


def _refusal(tenant: Tenant, url: str, types: list[str] | None = None) -> dict[str, object]:
    response = tenant.post(
        "/api/v1/webhooks", {"url": url, "event_types": types or ["delivery.sent"]}
    )
    assert response.status_code == 400, response.text
    body: dict[str, object] = response.json()
    return body


def _reason_and_field(body: dict[str, object]) -> tuple[str, str]:
    details = body["details"]
    assert isinstance(details, list)
    reason = next(d["reason"] for d in details if "reason" in d)
    field = next(d["field_violations"][0]["field"] for d in details if "field_violations" in d)
    return reason, field


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("https://127.0.0.1/hook", "127.0.0.1"),
        ("https://10.0.0.1/hook", "10.0.0.1"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("https://[::1]:8443/hook", "::1"),
        ("https://100.64.1.1/hook", "100.64.1.1"),
        ("https://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1"),
        # A name that resolves to loopback (from /etc/hosts, no internet needed).
        ("https://localhost/hook", "localhost"),
    ],
)
def test_private_and_loopback_targets_are_refused(tenant: Tenant, url: str, address: str) -> None:
    body = _refusal(tenant, url)
    assert _reason_and_field(body) == ("INVALID_WEBHOOK_URL", "url")
    message = str(body["message"])
    assert address in message and "public" in message


def test_plain_http_is_refused(tenant: Tenant) -> None:
    body = _refusal(tenant, "http://hooks.example.com/clarion")
    assert _reason_and_field(body) == ("INVALID_WEBHOOK_URL", "url")
    assert "https://" in str(body["message"])


def test_unknown_event_types_name_the_field(tenant: Tenant) -> None:
    body = _refusal(tenant, "https://hooks.example.com/clarion", ["delivery.bounced"])
    assert _reason_and_field(body) == ("INVALID_EVENT_TYPE", "event_types")
    assert "delivery.queued" in str(body["message"])


def test_nothing_was_registered(tenant: Tenant) -> None:
    _refusal(tenant, "https://127.0.0.1/hook")
    assert tenant.get("/api/v1/webhooks").json()["webhooks"] == []


def test_a_host_that_cannot_resolve_is_refused_not_an_error(tenant: Tenant) -> None:
    body = _refusal(tenant, "https://" + "a" * 70 + ".example.com/hook")
    assert _reason_and_field(body) == ("INVALID_WEBHOOK_URL", "url")
    assert "does not resolve" in str(body["message"])
