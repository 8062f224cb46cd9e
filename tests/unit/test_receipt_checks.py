"""Receipts are checked against the delivery they name, signatures never raise
on odd input, and GroupCommit answers a refused item's caller alone."""

import asyncio
from datetime import UTC, datetime

import pytest

from providers.base import ProviderReceipt as Receipt
from providers.mailgun.webhooks import mailgun_freshness_error, mailgun_signature_valid
from providers.signing import secrets_equal
from providers.twilio.webhooks import (
    twilio_call_receipt,
    twilio_message_receipt,
    twilio_signature_valid,
)
from providers.whatsapp.webhooks import meta_signature_valid
from server.domain.channels import Channel
from server.domain.receipts import receipt_mismatch
from server.domain.status import DeliveryStatus as S
from server.services.receipts import GroupCommit

ODD = ["sha256=é", "\ud800", "ÿÿÿ", "", "x" * 10_000]


@pytest.mark.parametrize("given", ODD)
def test_signature_checks_refuse_odd_input_without_raising(given: str) -> None:
    assert not twilio_signature_valid("token", "https://x/cb", [("A", "é")], given)
    assert not mailgun_signature_valid("key", "1700000000", "tok", given)
    assert not meta_signature_valid("secret", b"{}", given)
    assert not secrets_equal("sandbox-verify-token", given)


def test_mailgun_timestamps_are_fresh_for_five_minutes_either_way() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    at = int(now.timestamp())
    assert mailgun_freshness_error(str(at - 299), now) is None
    assert mailgun_freshness_error(str(at + 299), now) is None
    for stale in (str(at - 301), str(at + 301), "soon", "1e99", "99999999999999999999"):
        error = mailgun_freshness_error(stale, now)
        assert error is not None and error.reason == "RECEIPT_STALE"


def test_twilio_receipts_say_which_api_and_message_they_are_about() -> None:
    sms = twilio_message_receipt("dlv_1", {"MessageStatus": "sent", "MessageSid": "SM1"})
    call = twilio_call_receipt("dlv_1", {"CallStatus": "completed", "CallSid": "CA1"})
    assert sms == Receipt("dlv_1", S.SENT, "", Channel.SMS, "SM1")
    assert call == Receipt("dlv_1", S.DELIVERED, "", Channel.VOICE, "CA1")


def _email(recipient: str) -> Receipt:
    return Receipt("dlv_1", S.FAILED, "bounced", Channel.EMAIL, recipient=recipient)


def _sent(channel: Channel, message_id: str) -> Receipt:
    return Receipt("dlv_1", S.SENT, "", channel, message_id)


@pytest.mark.parametrize(
    ("receipt", "channel", "address", "message_id", "reason"),
    [
        (_email("User@Example.com"), "email", "user@example.com", None, None),
        (_email("other@example.com"), "email", "user@example.com", None, "RECEIPT_MISMATCH"),
        (_email(""), "email", "user@example.com", None, "RECEIPT_MISMATCH"),
        (_email("+14155550123"), "sms", "+14155550123", None, "RECEIPT_WRONG_CHANNEL"),
        (_sent(Channel.SMS, "SM1"), "sms", "+1", "SM1", None),
        (_sent(Channel.SMS, "SM1"), "sms", "+1", None, None),
        (_sent(Channel.SMS, "SM2"), "sms", "+1", "SM1", "RECEIPT_MISMATCH"),
        (_sent(Channel.VOICE, "CA1"), "sms", "+1", "SM1", "RECEIPT_WRONG_CHANNEL"),
        (_sent(Channel.WHATSAPP, "wamid.2"), "whatsapp", "+1", "wamid.1", "RECEIPT_MISMATCH"),
    ],
)  # fmt: skip
def test_a_receipt_must_belong_to_the_delivery_it_names(
    receipt: Receipt, channel: str, address: str, message_id: str | None, reason: str | None
) -> None:
    error = receipt_mismatch(
        receipt, channel=channel, address=address, provider_message_id=message_id
    )
    assert (error.reason if error else None) == reason


async def test_a_refused_item_fails_only_its_caller_and_the_rest_are_applied() -> None:
    applied: list[int] = []

    async def apply(items: list[int]) -> dict[int, Exception]:
        refused = {
            i: ValueError(f"refused {item}") for i, item in enumerate(items) if item % 7 == 3
        }
        applied.extend(item for i, item in enumerate(items) if i not in refused)
        return refused

    batches = GroupCommit(apply)
    results = await asyncio.gather(
        *(batches.submit([i]) for i in range(20)), return_exceptions=True
    )
    failed = [i for i, r in enumerate(results) if isinstance(r, ValueError)]
    assert failed == [3, 10, 17]
    assert str(results[10]) == "refused 10"
    assert sorted(applied) == [i for i in range(20) if i not in failed]
