"""Twilio's list ("read multiple") endpoints for Messages and Calls: filters and paging.

https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
filters by To, From and DateSent ("YYYY-MM-DD ... DateSent< ... on and before
... DateSent> ... on and after"); the helper libraries send full datetimes as
YYYY-MM-DDTHH:MM:SSZ, so both are accepted. Calls
(https://www.twilio.com/docs/voice/api/call-resource#read-multiple-call-resources)
filter by To, From, Status and StartTime the same way.
Both pages give PageSize "The default is 50, and the maximum is 1000", list
newest first, and page with next_page_uri, which carries a PageToken
(https://www.twilio.com/docs/usage/twilios-response#paging), so pages stay
stable while new resources are created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

Resource = dict[str, Any]


class InvalidParameter(ValueError):
    """A filter or paging parameter Twilio would refuse; the message names it."""


@dataclass(frozen=True)
class ListSpec:
    key: str  # envelope key: "messages" | "calls"
    exact: tuple[tuple[str, str], ...]  # (query parameter, resource field)
    time_param: str  # DateSent | StartTime, also with < and >
    time_field: str  # date_sent | start_time (RFC 2822, or null)


MESSAGES = ListSpec("messages", (("To", "to"), ("From", "from")), "DateSent", "date_sent")
CALLS = ListSpec(
    "calls", (("To", "to"), ("From", "from"), ("Status", "status")), "StartTime", "start_time"
)


def _bound(name: str, raw: str) -> date | datetime:
    raw = raw.strip()
    try:
        if len(raw) == 10:
            return date.fromisoformat(raw)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidParameter(
            f"Invalid {name}: {raw!r}; use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)"
        ) from exc
    # A datetime without an offset is read as UTC, as Twilio reads its dates.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _time_matches(moment: datetime, op: str, bound: date | datetime) -> bool:
    # A plain date covers the whole UTC day: "on", "on and before", "on and after".
    value: date | datetime = moment
    if not isinstance(bound, datetime):
        value = moment.astimezone(UTC).date()
    else:
        value = moment.replace(microsecond=0)
        bound = bound.replace(microsecond=0)
    if op == "<":
        return value <= bound
    if op == ">":
        return value >= bound
    return value == bound


def _page_size(query: Mapping[str, str]) -> int:
    raw = query.get("PageSize", str(DEFAULT_PAGE_SIZE))
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidParameter(f"Invalid PageSize: {raw!r}; must be 1 to {MAX_PAGE_SIZE}")
    return size


def _page_number(query: Mapping[str, str]) -> int:
    raw = query.get("Page", "0")
    if not raw.isdigit():
        raise InvalidParameter(f"Invalid Page: {raw!r}; must be a number from 0")
    return int(raw)


def select(
    spec: ListSpec, newest_first: Sequence[Resource], query: Mapping[str, str]
) -> list[Resource]:
    """The resources matching every filter in the query, newest first."""
    wanted = [(field, query[param]) for param, field in spec.exact if query.get(param)]
    times = [
        (op, _bound(spec.time_param + op, query[spec.time_param + op]))
        for op in ("", "<", ">")
        if query.get(spec.time_param + op)
    ]
    found = []
    for resource in newest_first:
        if any(resource.get(field) != value for field, value in wanted):
            continue
        if times:
            stamp = resource.get(spec.time_field)
            # Not sent (or not dialed) yet: Twilio has no date to match.
            if not stamp:
                continue
            moment = parsedate_to_datetime(stamp)
            if not all(_time_matches(moment, op, bound) for op, bound in times):
                continue
        found.append(resource)
    return found


def page(
    spec: ListSpec, newest_first: Sequence[Resource], query: Mapping[str, str], path: str
) -> dict[str, Any]:
    """One page in Twilio's envelope; PageToken PA<sid> = after sid, PB<sid> = before sid."""
    found = select(spec, newest_first, query)
    size = _page_size(query)
    number = _page_number(query)
    token = query.get("PageToken", "")
    if token:
        sids = [r["sid"] for r in found]
        anchor = token[2:]
        if token[:2] not in ("PA", "PB") or anchor not in sids:
            raise InvalidParameter(f"Invalid PageToken: {token!r}")
        at = sids.index(anchor)
        begin = at + 1 if token.startswith("PA") else max(0, at - size)
        end = begin + size if token.startswith("PA") else at
    else:
        begin, end = number * size, number * size + size
    items = found[begin:end]
    filters = [
        (name, query[name])
        for name in [p for p, _ in spec.exact] + [spec.time_param + op for op in ("", "<", ">")]
        if query.get(name)
    ]

    def uri(page_number: int, page_token: str | None = None) -> str:
        params = [*filters, ("PageSize", str(size)), ("Page", str(page_number))]
        if page_token:
            params.append(("PageToken", page_token))
        return f"{path}?{urlencode(params)}"

    more = end < len(found)
    return {
        spec.key: items,
        "end": begin + len(items) - 1 if items else begin,
        "first_page_uri": uri(0),
        "next_page_uri": uri(number + 1, "PA" + items[-1]["sid"]) if more and items else None,
        "page": number,
        "page_size": size,
        "previous_page_uri": (
            uri(number - 1, "PB" + items[0]["sid"]) if number > 0 and items else None
        ),
        "start": begin,
        "uri": uri(number, token or None),
    }
