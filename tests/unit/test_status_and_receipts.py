"""Status movement, roll-up, receipts and provider signatures."""

import pytest

from providers.mailgun.message_ids import delivery_id_from_message_id, email_message_id
from providers.mailgun.webhooks import mailgun_receipt, mailgun_signature_valid
from providers.twilio.webhooks import (
    twilio_message_receipt,
    twilio_signature,
    twilio_signature_valid,
)
from server.domain.status import DeliveryStatus as S
from server.domain.status import can_move, roll_up
from workflows.activities import backoff_with_jitter


def test_statuses_only_move_forward() -> None:
    assert can_move(S.QUEUED, S.SENT)
    assert can_move(S.QUEUED, S.DELIVERED)
    assert can_move(S.SENT, S.FAILED)
    assert not can_move(S.SENT, S.QUEUED)
    assert not can_move(S.DELIVERED, S.SENT)
    assert not can_move(S.DELIVERED, S.FAILED)
    assert not can_move(S.FAILED, S.DELIVERED)
    assert not can_move(S.SENT, S.SENT)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([S.QUEUED, S.DELIVERED], S.QUEUED),
        ([S.SENT, S.DELIVERED], S.SENT),
        ([S.DELIVERED, S.FAILED], S.DELIVERED),
        ([S.FAILED, S.FAILED], S.FAILED),
        ([S.DELIVERED], S.DELIVERED),
    ],
)
def test_roll_up(statuses: list[S], expected: S) -> None:
    assert roll_up(statuses) is expected


# Twilio's published request-validation example (auth token 12345). Two
# versions circulate: twilio-node's test fixture and the current docs page.
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


@pytest.mark.parametrize(
    ("caller", "signature"),
    [
        ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
    ],
)
def test_twilio_signature_matches_published_vectors(caller: str, signature: str) -> None:
    params = [
        ("To", "+18005551212"),
        ("From", caller),
        ("Digits", "1234"),
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", caller),
    ]
    assert twilio_signature("12345", TWILIO_URL, params) == signature
    assert twilio_signature_valid("12345", TWILIO_URL, params, signature)
    assert not twilio_signature_valid("12345", TWILIO_URL + "&x=1", params, signature)
    assert not twilio_signature_valid("54321", TWILIO_URL, params, signature)


def test_mailgun_signature_is_hmac_sha256_of_timestamp_and_token() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"key", b"1700000000abc", hashlib.sha256).hexdigest()
    assert mailgun_signature_valid("key", "1700000000", "abc", expected)
    assert not mailgun_signature_valid("key", "1700000001", "abc", expected)


def test_twilio_receipts_map_to_tenant_words() -> None:
    delivered = twilio_message_receipt("dlv_1", {"MessageStatus": "delivered"})
    assert delivered is not None and delivered.status == S.DELIVERED
    failed = twilio_message_receipt("dlv_1", {"MessageStatus": "undelivered", "ErrorCode": "30003"})
    assert failed is not None and failed.status == S.FAILED
    assert failed.reason == "recipient phone is unreachable"
    assert twilio_message_receipt("dlv_1", {"MessageStatus": "queued"}) is None


def test_mailgun_events_correlate_by_message_id() -> None:
    message_id = email_message_id("dlv_abc", "clarion.local")
    assert delivery_id_from_message_id(message_id) == "dlv_abc"
    event = {"event": "delivered", "message": {"headers": {"message-id": message_id.strip("<>")}}}
    receipt = mailgun_receipt(event)
    assert receipt is not None and receipt.delivery_id == "dlv_abc"
    assert receipt.status == S.DELIVERED
    bounce = {**event, "event": "failed", "severity": "permanent"}
    assert mailgun_receipt(bounce).status == S.FAILED  # type: ignore[union-attr]
    assert mailgun_receipt({**event, "event": "failed", "severity": "temporary"}) is None


def test_backoff_grows_exponentially_within_jitter_and_cap() -> None:
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0)]:
        delays = [backoff_with_jitter(attempt, 1.0, 30.0) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 10
