"""Send policy, without I/O: what is accepted and what each refusal says."""

import pytest

from server.domain.channels import DELIVERABLE_CHANNELS, POLICIES, Channel
from server.domain.errors import ClarionError, ErrorKind
from server.domain.sending import SendRequest, plan_send


def refusal(**fields: object) -> ClarionError:
    with pytest.raises(ClarionError) as caught:
        plan_send(SendRequest(**fields))  # type: ignore[arg-type]
    return caught.value


def test_guide_sms_raw_payload_is_planned_with_normalized_phone() -> None:
    plan = plan_send(SendRequest(channels=["sms"], phone="+14155550123", body="Your OTP is 549921"))
    assert [(d.channel, d.address) for d in plan.recipient.deliveries] == [
        (Channel.SMS, "+14155550123")
    ]


def test_email_and_sms_make_one_delivery_each_in_request_order() -> None:
    plan = plan_send(
        SendRequest(
            channels=["sms", "email"],
            phone="+14155550123",
            email="User@Example.com",
            body="hi",
        )
    )
    assert [d.channel for d in plan.recipient.deliveries] == [Channel.SMS, Channel.EMAIL]
    assert plan.recipient.deliveries[1].address == "User@example.com"


def test_whatsapp_without_template_is_rejected_naming_template_id() -> None:
    error = refusal(channels=["whatsapp"], phone="+14155550123", body="raw")
    assert error.reason == "TEMPLATE_REQUIRED"
    assert "template_id" in error.message
    assert error.violations[0].field == "notification.template_id"


def test_whatsapp_rule_applies_when_mixed_with_other_channels() -> None:
    error = refusal(channels=["email", "whatsapp"], email="a@example.com", phone="+14155550123")
    assert error.reason == "TEMPLATE_REQUIRED"


@pytest.mark.parametrize(
    ("channels", "fields", "field"),
    [
        (["email"], {}, "recipient.email"),
        (["email"], {"email": "not-an-address"}, "recipient.email"),
        (["sms"], {}, "recipient.phone"),
        (["sms"], {"phone": "4155550123"}, "recipient.phone"),
        (["sms"], {"phone": "+1415"}, "recipient.phone"),
        (["slack"], {"slack_user_id": "U 1"}, "recipient.slack_user_id"),
    ],
)
def test_missing_or_invalid_recipient_names_the_field(
    channels: list[str], fields: dict[str, str], field: str
) -> None:
    error = refusal(channels=channels, body="hi", **fields)
    assert error.reason == "RECIPIENT_FIELD_MISSING"
    assert field in error.message
    assert error.violations[0].field == field


@pytest.mark.parametrize("channels", [[], ["fax"], ["EMAIL"], ["sms", "sms"]])
def test_bad_channel_lists_are_invalid(channels: list[str]) -> None:
    error = refusal(channels=channels, phone="+14155550123", body="hi")
    assert error.kind is ErrorKind.INVALID_ARGUMENT
    assert error.reason == "INVALID_CHANNEL"


def test_body_over_channel_limit_names_limit() -> None:
    error = refusal(channels=["sms"], phone="+14155550123", body="x" * 1601)
    assert error.reason == "BODY_TOO_LONG"
    assert "1600" in error.message


def test_raw_mode_needs_a_body() -> None:
    assert refusal(channels=["sms"], phone="+14155550123", body="  ").reason == "BODY_REQUIRED"


def test_channels_not_yet_deliverable_are_refused_not_accepted() -> None:
    with pytest.raises(ClarionError) as caught:
        plan_send(
            SendRequest(channels=["slack"], slack_user_id="U123456", body="hi"),
            deliverable=frozenset({Channel.EMAIL}),
        )
    error = caught.value
    assert error.kind is ErrorKind.FAILED_PRECONDITION
    assert error.reason == "CHANNEL_UNAVAILABLE"


def test_policy_table_matches_guide() -> None:
    assert POLICIES[Channel.WHATSAPP].template_required
    assert not POLICIES[Channel.WHATSAPP].raw_allowed
    for channel in (Channel.EMAIL, Channel.SMS, Channel.SLACK, Channel.VOICE):
        assert POLICIES[channel].raw_allowed and not POLICIES[channel].template_required
    assert {Channel.EMAIL, Channel.SMS, Channel.SLACK, Channel.VOICE} <= DELIVERABLE_CHANNELS
