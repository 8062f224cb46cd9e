"""Tenant webhook rules without I/O: signing against the Standard Webhooks
test vectors, which addresses an endpoint may resolve to, URL forms and the
retry schedule."""

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from server.domain.errors import ClarionError
from server.domain.webhooks import (
    MAX_ENDPOINTS,
    check_addresses,
    check_event_types,
    check_url,
    event_body,
    new_secret,
    next_attempt_delay,
    refused_address,
    signature_header,
)
from server.settings import Settings

# The specification's published vector (standard-webhooks/standard-webhooks,
# libraries/python/tests/test_webhooks.py test_sign_function).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = datetime.fromtimestamp(1614265330, UTC)
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_specification_test_vector() -> None:
    header = signature_header(
        [VECTOR_SECRET], message_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY
    )
    assert header == VECTOR_SIGNATURE


def test_rotation_signs_with_both_secrets_and_each_verifies() -> None:
    old, new = new_secret(), new_secret()
    now = datetime.now(UTC)
    body = event_body("delivery.sent", now, {"notification_id": "ntf_x"})
    header = signature_header([new, old], message_id="evt_1", timestamp=now, body=body)
    assert len(header.split(" ")) == 2
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": header,
    }
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["type"] == "delivery.sent"


def test_secrets_are_whsec_with_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and secret != new_secret()
    assert len(Webhook(secret)._whsecret) == 32


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255",
        "::1", "::", "fe80::1", "fc00::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "64:ff9b::a00:1", "2002:7f00:1::", "192.0.2.1", "198.18.0.1",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refused_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refused_address(address) is None


def test_a_host_with_any_private_address_is_refused() -> None:
    with pytest.raises(ClarionError) as refused:
        check_addresses("mixed.example", ["93.184.216.34", "10.0.0.1"])
    assert refused.value.reason == "INVALID_WEBHOOK_URL"
    assert "10.0.0.1" in refused.value.message
    assert refused.value.violations[0].field == "url"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://hooks.example.com/x", "https://"),
        ("ftp://hooks.example.com/x", "https://"),
        ("https:///nohost", "host"),
        ("https://user:pw@hooks.example.com/", "password"),
        ("https://hooks.example.com:99999/", "valid URL"),
        ("https://hooks.example.com/" + "a" * 2100, "2048"),
    ],
)
def test_malformed_or_plain_http_urls_are_refused(url: str, words: str) -> None:
    with pytest.raises(ClarionError) as refused:
        check_url(url, allow_private=False)
    assert refused.value.reason == "INVALID_WEBHOOK_URL"
    assert words in refused.value.message


def test_http_is_allowed_only_with_private_webhooks() -> None:
    assert check_url("http://127.0.0.1:9/x", allow_private=True).port == 9


def test_event_types_are_checked_and_deduplicated() -> None:
    assert check_event_types(["delivery.sent", "delivery.sent", "bulk.completed"]) == [
        "delivery.sent",
        "bulk.completed",
    ]
    for bad in ([], ["delivery.bounced"]):
        with pytest.raises(ClarionError) as refused:
            check_event_types(bad)
        assert refused.value.reason == "INVALID_EVENT_TYPE"
        assert "delivery.queued" in refused.value.message


def test_the_schedule_gives_each_retry_its_delay_then_stops() -> None:
    schedule = [0, 5, 300]
    assert next_attempt_delay(schedule, 1) == timedelta(seconds=5)
    assert next_attempt_delay(schedule, 2) == timedelta(seconds=300)
    assert next_attempt_delay(schedule, 3) is None


def test_one_tenants_endpoints_cannot_hold_every_sender_slot() -> None:
    settings = Settings()
    assert settings.webhook_concurrency > MAX_ENDPOINTS * settings.webhook_endpoint_concurrency
