"""Channel fallback routing: the policy a send may carry instead of a flat
channel list, how it is checked, and how a routed notification's status
rolls up from its steps. Pure: no I/O."""

import re
from dataclasses import dataclass
from enum import StrEnum

from server.domain.channels import Channel, parse_channels
from server.domain.errors import invalid
from server.domain.status import DeliveryStatus

# A step waits at most a day: receipts that take longer are not a fallback signal.
MAX_STEP_TIMEOUT_SECONDS = 86_400.0
MIN_STEP_TIMEOUT_SECONDS = 1.0
DEFAULT_STEP_TIMEOUT = "60s"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class Strategy(StrEnum):
    FALLBACK = "fallback"


class SuccessOn(StrEnum):
    """When a step counts as a success and later steps are skipped."""

    SENT = "sent"
    DELIVERED = "delivered"


class StepOutcome(StrEnum):
    PENDING = "pending"  # not reached yet
    TRYING = "trying"
    SENT = "sent"  # succeeded with success_on "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"  # an earlier step succeeded

    @property
    def is_success(self) -> bool:
        return self in (StepOutcome.SENT, StepOutcome.DELIVERED)

    @property
    def is_open(self) -> bool:
        return self in (StepOutcome.PENDING, StepOutcome.TRYING)


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"


@dataclass(frozen=True)
class RoutingRequest:
    """The routing object as the tenant gave it."""

    strategy: str = ""
    channels: tuple[str, ...] = ()
    success_on: str = ""
    step_timeout: str = ""


@dataclass(frozen=True)
class RoutingPolicy:
    """A checked routing policy: try `channels` in order."""

    channels: tuple[Channel, ...]
    success_on: SuccessOn
    step_timeout_seconds: float
    strategy: Strategy = Strategy.FALLBACK

    def as_json(self) -> dict[str, object]:
        return {
            "strategy": self.strategy.value,
            "channels": [c.value for c in self.channels],
            "success_on": self.success_on.value,
            "step_timeout_seconds": self.step_timeout_seconds,
        }

    @classmethod
    def from_json(cls, value: dict[str, object]) -> "RoutingPolicy":
        channels = value["channels"]
        assert isinstance(channels, list)
        return cls(
            channels=tuple(Channel(c) for c in channels),
            success_on=SuccessOn(str(value["success_on"])),
            step_timeout_seconds=float(str(value["step_timeout_seconds"])),
            strategy=Strategy(str(value.get("strategy", "fallback"))),
        )

    @property
    def step_timeout(self) -> str:
        return format_duration(self.step_timeout_seconds)


def parse_priority(value: str, path: str) -> Priority:
    try:
        return Priority(value or "normal")
    except ValueError:
        raise invalid("INVALID_ARGUMENT", path, f"{path} must be one of: normal, high") from None


def parse_duration(
    value: str,
    path: str,
    *,
    reason: str = "INVALID_ROUTING",
    minimum: float = MIN_STEP_TIMEOUT_SECONDS,
    maximum: float = MAX_STEP_TIMEOUT_SECONDS,
) -> float:
    """Seconds from a duration such as "60s", "1.5s", "500ms", "2m" (the
    protobuf JSON form "60s" included), between `minimum` and `maximum`
    (1 s and 24 h for routing steps); errors carry `reason`."""
    match = _DURATION.match(value.strip())
    if not match:
        raise invalid(
            reason,
            path,
            f'{path} must be a duration such as "60s", "500ms" or "2m"; got {value!r}',
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not minimum <= seconds <= maximum:
        raise invalid(
            reason,
            path,
            f"{path} must be between {format_duration(minimum)} and "
            f"{format_duration(maximum)}; got {value!r}",
        )
    return seconds


def format_duration(seconds: float) -> str:
    return f"{seconds:g}s"


def check_routing(routing: RoutingRequest, path: str) -> RoutingPolicy:
    """The routing object's own checks; `path` names it in errors, e.g.
    "notification.routing". Template and recipient checks per step are the
    send policy's, run over the steps' channels."""
    if routing.strategy not in ("", Strategy.FALLBACK):
        raise invalid(
            "INVALID_ROUTING",
            f"{path}.strategy",
            f'{path}.strategy must be "fallback"; got {routing.strategy!r}',
        )
    if not routing.channels:
        raise invalid(
            "INVALID_ROUTING",
            f"{path}.channels",
            f"{path}.channels is empty; list the channels to try, in order",
        )
    try:
        channels = parse_channels(list(routing.channels))
    except ValueError as exc:
        raise invalid("INVALID_CHANNEL", f"{path}.channels", f"{path}.channels: {exc}") from None
    try:
        success_on = SuccessOn(routing.success_on or SuccessOn.DELIVERED)
    except ValueError:
        raise invalid(
            "INVALID_ROUTING",
            f"{path}.success_on",
            f'{path}.success_on must be "sent" or "delivered"; got {routing.success_on!r}',
        ) from None
    seconds = parse_duration(routing.step_timeout or DEFAULT_STEP_TIMEOUT, f"{path}.step_timeout")
    return RoutingPolicy(tuple(channels), success_on, seconds)


@dataclass(frozen=True)
class StepState:
    outcome: StepOutcome
    # The step's delivery status; None before the step is tried.
    delivery: DeliveryStatus | None


def roll_up_routed(steps: list[StepState]) -> DeliveryStatus:
    """A routed notification's status. A delivered step (even a late receipt
    of a superseded one: the message did arrive) makes it delivered. While a
    step is open it is queued or sent, never failed: the next step may still
    succeed. Once routing ends, the succeeding step decides, else failed."""
    if any(s.delivery is DeliveryStatus.DELIVERED for s in steps):
        return DeliveryStatus.DELIVERED
    for step in steps:
        if step.outcome is StepOutcome.TRYING:
            if step.delivery in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED):
                return step.delivery
            return DeliveryStatus.QUEUED
        if step.outcome is StepOutcome.PENDING:
            return DeliveryStatus.QUEUED
        if step.outcome.is_success and step.delivery is not None:
            return step.delivery
    return DeliveryStatus.FAILED
