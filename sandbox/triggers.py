"""Trigger recipients: addresses whose outcome is fixed, like Twilio's magic numbers.

Everything here is pure bookkeeping; each protocol module turns a verdict into
its own provider's error format.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    NONE = "none"
    INVALID = "invalid"  # permanent rejection (bad/unreachable recipient)
    BLOCKED = "blocked"  # recipient unsubscribed / blocked
    TRANSIENT = "transient"  # N provider errors, then success
    RATE_LIMIT = "rate_limit"  # one 429, then success
    CALLBACK_FAIL = "callback_fail"  # accepted, then a failure callback
    NO_CALLBACK = "no_callback"  # accepted, never any callback
    SLOW = "slow"  # slow provider answer, then success
    BUSY = "busy"  # voice only: busy
    TEMPFAIL = "tempfail"  # email: 451 N times at RCPT
    SERVER_ERROR = "server_error"  # slack: HTTP 500 twice
    HANG = "hang"  # accepted and recorded, then the reply is never sent


@dataclass(frozen=True)
class Trigger:
    kind: Kind = Kind.NONE
    count: int = 0


NO_TRIGGER = Trigger()

_PHONE_FIXED = {
    "+15005550001": Trigger(Kind.INVALID),
    "+15005550004": Trigger(Kind.BLOCKED),
    "+15005550429": Trigger(Kind.RATE_LIMIT, 1),
    "+15005550301": Trigger(Kind.CALLBACK_FAIL),
    "+15005550302": Trigger(Kind.NO_CALLBACK),
    "+15005550303": Trigger(Kind.SLOW),
    "+15005550304": Trigger(Kind.BUSY),
    "+15005550305": Trigger(Kind.HANG),
}
_PHONE_TRANSIENT = re.compile(r"^\+1500555020([1-9])$")


def phone_trigger(number: str) -> Trigger:
    """Trigger for an E.164 number (a 'whatsapp:' style prefix is ignored)."""
    number = number.split(":", 1)[-1].strip()
    if not number.startswith("+"):
        number = "+" + number
    if number in _PHONE_FIXED:
        return _PHONE_FIXED[number]
    match = _PHONE_TRANSIENT.match(number)
    if match:
        return Trigger(Kind.TRANSIENT, int(match.group(1)))
    return NO_TRIGGER


_EMAIL_TEMPFAIL = re.compile(r"^tempfail([1-9])$")
_EMAIL_FIXED = {
    "reject": Trigger(Kind.INVALID),
    "bounce": Trigger(Kind.CALLBACK_FAIL),
    "noreceipt": Trigger(Kind.NO_CALLBACK),
    "slow": Trigger(Kind.SLOW),
    "hang": Trigger(Kind.HANG),
}


def email_trigger(address: str) -> Trigger:
    """Trigger for an email address; '+tags' are ignored (reject+t1@x is reject@)."""
    local = address.rsplit("@", 1)[0].lower().split("+", 1)[0]
    if local in _EMAIL_FIXED:
        return _EMAIL_FIXED[local]
    match = _EMAIL_TEMPFAIL.match(local)
    if match:
        return Trigger(Kind.TEMPFAIL, int(match.group(1)))
    return NO_TRIGGER


_SLACK_FIXED = {
    "UNOTFOUND": Trigger(Kind.INVALID),
    "URATELIMIT": Trigger(Kind.RATE_LIMIT, 1),
    "UERROR500": Trigger(Kind.SERVER_ERROR, 2),
    "UHANG": Trigger(Kind.HANG),
}


def slack_trigger(user_id: str) -> Trigger:
    return _SLACK_FIXED.get(user_id.strip().upper(), NO_TRIGGER)


def template_rejected(name: str) -> bool:
    return name.startswith("reject_") or "_reject_" in name


class FailureCounter:
    """'Fail N times, then succeed' per key, so parallel tests don't interfere.

    The count resets after the success, so the same (recipient, content) pair
    replays the whole scenario next time.
    """

    def __init__(self) -> None:
        self._failed: dict[Hashable, int] = {}

    def should_fail(self, key: Hashable, times: int) -> bool:
        done = self._failed.get(key, 0)
        if done < times:
            self._failed[key] = done + 1
            return True
        self._failed.pop(key, None)
        return False

    def clear(self) -> None:
        self._failed.clear()


class Verdict(Enum):
    ACCEPT = "accept"
    INVALID = "invalid"
    BLOCKED = "blocked"
    TRANSIENT = "transient"
    RATE_LIMIT = "rate_limit"


async def gate(
    trigger: Trigger, counter: FailureCounter, key: Hashable, slow_seconds: float
) -> Verdict:
    """Decide whether an API request for a phone recipient is accepted now.

    Shared by Twilio (SMS, voice) and WhatsApp, which only differ in how they
    render the verdict.  The slow trigger sleeps here so the HTTP answer is late.
    """
    if trigger.kind is Kind.INVALID:
        return Verdict.INVALID
    if trigger.kind is Kind.BLOCKED:
        return Verdict.BLOCKED
    if trigger.kind is Kind.TRANSIENT and counter.should_fail(key, trigger.count):
        return Verdict.TRANSIENT
    if trigger.kind is Kind.RATE_LIMIT and counter.should_fail(key, trigger.count):
        return Verdict.RATE_LIMIT
    if trigger.kind is Kind.SLOW:
        await asyncio.sleep(slow_seconds)
    return Verdict.ACCEPT
