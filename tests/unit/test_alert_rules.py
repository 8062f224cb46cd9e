"""Alert rules' checks and conditions (server/domain/alerts.py), without I/O."""

import pytest

from server.domain.alerts import (
    RuleKind,
    RuleRequest,
    WindowCounts,
    check_rule,
    measure,
    summary,
)
from server.domain.errors import ClarionError


def rule(**fields: object) -> RuleRequest:
    given: dict[str, object] = {
        "kind": "failure_rate", "channel": "sms", "threshold_percent": 5.0, "window": "10m",
        "min_sends": 50, "notify_channel": "email", "notify_to": "OnCall@Example.com",
    } | fields  # fmt: skip
    return RuleRequest(**given)  # type: ignore[arg-type]


def test_a_rule_is_normalised_and_named_after_its_condition() -> None:
    spec = check_rule(rule())
    assert spec.kind is RuleKind.FAILURE_RATE and spec.window_minutes == 10
    assert spec.notify_to == "OnCall@example.com"
    assert spec.name == "failure rate of sms above 5% over 10m"
    count = check_rule(
        rule(
            kind="failure_count",
            threshold_percent=0,
            min_sends=0,
            max_failures=20,
            channel="",
            template_id="wa_order_update",
        )
    )
    assert count.name == "more than 20 failures in 10m on template wa_order_update"
    assert count.min_sends == 1
    assert check_rule(rule(window="24h")).window == "24h"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"window": "61s"}, "window"),
        ({"window": "0m"}, "window"),
        ({"kind": "no_receipts", "threshold_percent": 0, "channel": "email",
          "template_id": "t1"}, "template_id"),
        ({"kind": "no_receipts", "threshold_percent": 0, "channel": ""}, "channel"),
        ({"kind": "failure_count", "min_sends": 0, "threshold_percent": 0,
          "max_failures": 2_000_000}, "max_failures"),
        ({"kind": "failure_count", "threshold_percent": 0}, "min_sends"),
        ({"notify_channel": "voice", "notify_to": "+1"}, "notify.to"),
    ],
)  # fmt: skip
def test_bad_fields_are_named(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ClarionError) as raised:
        check_rule(rule(**fields))
    assert raised.value.reason == "INVALID_ALERT_RULE"
    assert [v.field for v in raised.value.violations] == [field]


def test_failure_rate_needs_min_sends_and_a_rate_above_the_threshold() -> None:
    spec = check_rule(rule(threshold_percent=50.0, min_sends=4))
    assert not measure(spec, WindowCounts(0, 3, 0, 0)).breached  # 3 < min_sends
    assert measure(spec, WindowCounts(0, 4, 0, 0)).breached
    assert not measure(spec, WindowCounts(5, 5, 0, 0)).breached  # 50% is not above 50%
    m = measure(spec, WindowCounts(4, 6, 0, 0))
    assert m.breached and m.value == 60.0 and (m.failed, m.finished) == (6, 10)
    assert summary(spec, m) == (
        "FIRING: failure rate of sms above 50% over 10m. failure rate 60.0% (6 of 10 failed) "
        "over 10m; threshold 50%, at least 4 sends."
    )


def test_failure_count_is_more_than_max_failures() -> None:
    spec = check_rule(rule(kind="failure_count", threshold_percent=0, min_sends=0, max_failures=2))
    assert not measure(spec, WindowCounts(100, 2, 0, 0)).breached
    assert measure(spec, WindowCounts(0, 3, 0, 0)).breached


def test_no_receipts_needs_sends_and_no_receipt() -> None:
    spec = check_rule(rule(kind="no_receipts", threshold_percent=0, min_sends=0, channel="email"))
    assert not measure(spec, WindowCounts(0, 0, 0, 0)).breached  # quiet is not broken
    assert measure(spec, WindowCounts(0, 0, 1, 0)).breached
    assert not measure(spec, WindowCounts(0, 0, 9, 1)).breached
