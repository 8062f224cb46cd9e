"""Opaque page tokens (AIP-158), one codec for every list: the token is the
last item's position (a list of JSON values), base64url. Each list says
what a valid position is, so a token it did not make is a clear 400."""

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime

from server.domain.errors import ClarionError, invalid
from server.domain.ids import is_id

Position = list[str | int]


def check_page_size(page_size: int, *, default: int, maximum: int) -> int:
    """The page size to use; 0 means `default`."""
    if not 0 <= page_size <= maximum:
        raise invalid("INVALID_ARGUMENT", "page_size", f"page_size must be 1 to {maximum}")
    return page_size or default


def encode_position(position: Position) -> str:
    raw = json.dumps(position).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(token: str, valid: Callable[[list[object]], bool]) -> list[object]:
    """The position in a token this API made; 400 naming page_token otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise bad_page_token() from None
    if not isinstance(position, list) or not valid(position):
        raise bad_page_token()
    return position


def encode_page_token(created_at: datetime, item_id: str) -> str:
    """For lists ordered newest first by (created_at, id)."""
    return encode_position([created_at.isoformat(), item_id])


def decode_page_token(token: str) -> tuple[datetime, str]:
    created_at, item_id = decode_position(token, _is_time_and_id)
    return datetime.fromisoformat(str(created_at)), str(item_id)


def _is_time_and_id(position: list[object]) -> bool:
    # Only what encode_page_token makes: an aware time and one of our ids
    # (anything else, a NUL say, would reach the query).
    if len(position) != 2 or not all(isinstance(value, str) for value in position):
        return False
    try:
        after = datetime.fromisoformat(str(position[0]))
    except ValueError:
        return False
    return after.tzinfo is not None and is_id(str(position[1]))


def bad_page_token() -> ClarionError:
    return invalid(
        "INVALID_ARGUMENT",
        "page_token",
        "page_token is not one this API returned; pass next_page_token unchanged",
    )
