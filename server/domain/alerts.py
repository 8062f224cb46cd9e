"""Alert rules: what a tenant may ask for, and whether a window of counted
outcomes breaks a rule. Pure: the counts come from alert_counters."""

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from server.domain.channels import POLICIES, Channel
from server.domain.errors import ClarionError, invalid
from server.domain.routing import parse_duration
from server.domain.sending import plan_recipient
from server.domain.templates import TEMPLATE_ID

INVALID = "INVALID_ALERT_RULE"
# Rules per tenant: far more than on-call needs, and a bound on the checks
# one tenant puts on Temporal.
MAX_RULES = 100
MAX_NAME_LENGTH = 200
MIN_WINDOW_SECONDS = 60.0
MAX_WINDOW_SECONDS = 86_400.0
MAX_COUNT = 1_000_000
# Alerts go where a person reads them; WhatsApp needs an approved template.
NOTIFY_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.SLACK, Channel.VOICE)


class RuleKind(StrEnum):
    FAILURE_RATE = "failure_rate"
    FAILURE_COUNT = "failure_count"
    NO_RECEIPTS = "no_receipts"


class RuleState(StrEnum):
    OK = "ok"
    FIRING = "firing"


class EventKind(StrEnum):
    FIRED = "fired"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class RuleRequest:
    """A rule as the tenant asked for it."""

    kind: str
    window: str
    notify_channel: str
    notify_to: str
    name: str = ""
    channel: str = ""
    template_id: str = ""
    threshold_percent: float = 0.0
    max_failures: int = 0
    min_sends: int = 0


@dataclass(frozen=True)
class RuleSpec:
    """A checked rule: what to watch, when it breaks, whom to tell."""

    name: str
    kind: RuleKind
    channel: str
    template_id: str
    threshold_percent: float
    max_failures: int
    window_minutes: int
    min_sends: int
    notify_channel: Channel
    # Normalised for the channel (E.164, canonical email).
    notify_to: str

    @property
    def window(self) -> str:
        return window_text(self.window_minutes)

    def subject(self) -> str:
        return self.channel or f"template {self.template_id}"


@dataclass(frozen=True)
class Rule:
    """A stored rule and where it stands."""

    rule_id: str
    tenant_id: str
    spec: RuleSpec
    state: RuleState
    state_changed_at: datetime
    last_evaluated_at: datetime | None
    created_at: datetime
    enabled: bool = True


@dataclass(frozen=True)
class AlertEvent:
    """One firing or resolution, with what was measured (Measurement.as_json)."""

    event_id: int
    kind: EventKind
    occurred_at: datetime
    measured: dict[str, Any]
    summary: str
    notification_id: str


def window_text(minutes: int) -> str:
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def check_rule(request: RuleRequest) -> RuleSpec:
    """The rule, or a ClarionError naming the first field to fix."""
    try:
        kind = RuleKind(request.kind)
    except ValueError:
        raise invalid(
            INVALID, "kind", "kind must be one of: " + ", ".join(k.value for k in RuleKind)
        ) from None
    if len(request.name) > MAX_NAME_LENGTH:
        raise invalid(INVALID, "name", f"name must be at most {MAX_NAME_LENGTH} characters")
    if "\r" in request.name or "\n" in request.name:
        raise invalid(INVALID, "name", "name must be one line: it is the alert's subject")
    channel = _check_channel(request.channel, kind)
    if request.template_id and not TEMPLATE_ID.fullmatch(request.template_id):
        raise invalid(
            INVALID, "template_id", "template_id must be 1 to 64 characters of a-z, 0-9, _ and -"
        )
    if kind is RuleKind.NO_RECEIPTS and request.template_id:
        raise invalid(
            INVALID, "template_id", "no_receipts watches a channel; leave template_id out"
        )
    if not channel and not request.template_id:
        raise invalid(
            INVALID, "channel", f"{kind.value} needs a channel, a template_id or both to watch"
        )
    _only_for(kind, RuleKind.FAILURE_RATE, "threshold_percent", request.threshold_percent)
    _only_for(kind, RuleKind.FAILURE_COUNT, "max_failures", request.max_failures)
    if kind is RuleKind.FAILURE_COUNT and request.min_sends:
        raise invalid(INVALID, "min_sends", "min_sends does not apply to failure_count")
    if kind is RuleKind.FAILURE_RATE and not 0 < request.threshold_percent <= 100:
        raise invalid(
            INVALID, "threshold_percent", "threshold_percent must be above 0 and at most 100"
        )
    if not 0 <= request.max_failures <= MAX_COUNT:
        raise invalid(INVALID, "max_failures", f"max_failures must be 0 to {MAX_COUNT:,}")
    if not 0 <= request.min_sends <= MAX_COUNT:
        raise invalid(INVALID, "min_sends", f"min_sends must be 1 to {MAX_COUNT:,}")
    window_minutes = _check_window(request.window)
    notify_channel, notify_to = _check_target(request.notify_channel, request.notify_to)
    spec = RuleSpec(
        name=request.name.strip(),
        kind=kind,
        channel=channel,
        template_id=request.template_id,
        threshold_percent=request.threshold_percent,
        max_failures=request.max_failures,
        window_minutes=window_minutes,
        min_sends=request.min_sends or 1,
        notify_channel=notify_channel,
        notify_to=notify_to,
    )
    return spec if spec.name else _named(spec)


def _check_channel(value: str, kind: RuleKind) -> str:
    if not value:
        if kind is RuleKind.NO_RECEIPTS:
            raise invalid(INVALID, "channel", "no_receipts needs the channel to watch")
        return ""
    try:
        channel = Channel(value)
    except ValueError:
        raise invalid(
            INVALID, "channel", "channel must be one of: " + ", ".join(c.value for c in Channel)
        ) from None
    if kind is RuleKind.NO_RECEIPTS and not POLICIES[channel].gives_receipts:
        with_receipts = ", ".join(c.value for c in Channel if POLICIES[c].gives_receipts)
        raise invalid(
            INVALID,
            "channel",
            f"channel {channel.value} gives no delivery receipts; "
            f"no_receipts watches {with_receipts}",
        )
    return channel.value


def _only_for(kind: RuleKind, owner: RuleKind, field: str, value: float) -> None:
    if value and kind is not owner:
        raise invalid(INVALID, field, f"{field} applies to {owner.value} rules only")


def _check_window(value: str) -> int:
    if not value:
        raise invalid(INVALID, "window", 'window is required, e.g. "10m"')
    seconds = parse_duration(
        value, "window", reason=INVALID, minimum=MIN_WINDOW_SECONDS, maximum=MAX_WINDOW_SECONDS
    )
    if seconds % 60:
        raise invalid(INVALID, "window", f'window must be whole minutes, e.g. "10m"; got {value!r}')
    return int(seconds // 60)


def _check_target(channel_name: str, to: str) -> tuple[Channel, str]:
    names = ", ".join(c.value for c in NOTIFY_CHANNELS)
    try:
        channel = Channel(channel_name)
    except ValueError:
        channel = None
    if channel not in NOTIFY_CHANNELS:
        raise invalid(INVALID, "notify.channel", f"notify.channel must be one of: {names}")
    assert channel is not None
    field = POLICIES[channel].recipient_field
    try:
        plan = plan_recipient([channel], **{field: to}, path="notify.")
    except ClarionError as error:
        message = error.message.replace(f"notify.{field}", "notify.to")
        raise invalid(INVALID, "notify.to", message) from None
    return channel, plan.deliveries[0].address


def _named(spec: RuleSpec) -> RuleSpec:
    watched = spec.subject()
    if spec.channel and spec.template_id:
        watched = f"{spec.channel} template {spec.template_id}"
    name = {
        RuleKind.FAILURE_RATE: f"failure rate of {watched} above "
        f"{spec.threshold_percent:g}% over {spec.window}",
        RuleKind.FAILURE_COUNT: f"more than {spec.max_failures} failures "
        f"in {spec.window} on {watched}",
        RuleKind.NO_RECEIPTS: f"no delivery receipts for {spec.window} on {watched}",
    }[spec.kind]
    return RuleSpec(**(asdict(spec) | {"name": name}))


@dataclass(frozen=True)
class WindowCounts:
    """What alert_counters hold for a rule's window."""

    delivered: int
    failed: int
    # Handed over before the current minute (no_receipts waits a minute).
    handed_over: int
    receipts: int


@dataclass(frozen=True)
class Measurement:
    value: float
    failed: int
    finished: int
    handed_over: int
    receipts: int
    breached: bool

    def as_json(self) -> dict[str, float | int | bool]:
        return asdict(self)


def measure(spec: RuleSpec, counts: WindowCounts) -> Measurement:
    """Whether the window breaks the rule, and the value that says so."""
    finished = counts.delivered + counts.failed
    if spec.kind is RuleKind.FAILURE_RATE:
        value = 100.0 * counts.failed / finished if finished else 0.0
        breached = finished >= spec.min_sends and value > spec.threshold_percent
    elif spec.kind is RuleKind.FAILURE_COUNT:
        value = float(counts.failed)
        breached = counts.failed > spec.max_failures
    else:
        value = float(counts.receipts)
        breached = counts.handed_over >= spec.min_sends and counts.receipts == 0
    return Measurement(
        value, counts.failed, finished, counts.handed_over, counts.receipts, breached
    )


def summary(spec: RuleSpec, m: Measurement) -> str:
    """The alert's text: what was measured against what the rule allows."""
    window = f"over {spec.window}"
    if spec.kind is RuleKind.FAILURE_RATE:
        fact = (
            f"failure rate {m.value:.1f}% ({m.failed} of {m.finished} failed) {window}; "
            f"threshold {spec.threshold_percent:g}%, at least {spec.min_sends} sends"
        )
    elif spec.kind is RuleKind.FAILURE_COUNT:
        fact = f"{m.failed} failures {window}; threshold more than {spec.max_failures}"
    else:
        fact = f"{m.receipts} delivery receipts for {m.handed_over} messages handed over {window}"
    state = "FIRING" if m.breached else "RESOLVED"
    return f"{state}: {spec.name}. {fact}."
