"""Opaque page tokens (AIP-158) for lists ordered newest first by
(created_at, id): the token is the last item's position, base64url JSON."""

import base64
import binascii
import json
from datetime import datetime

from server.domain.errors import ClarionError, invalid
from server.domain.ids import is_id


def check_page_size(page_size: int, *, default: int, maximum: int) -> int:
    """The page size to use; 0 means `default`."""
    if not 0 <= page_size <= maximum:
        raise invalid("INVALID_ARGUMENT", "page_size", f"page_size must be 1 to {maximum}")
    return page_size or default


def encode_page_token(created_at: datetime, item_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at, item_id = json.loads(raw)
        after = datetime.fromisoformat(created_at)
        # Only what encode_page_token makes: an aware time and one of our ids
        # (anything else, a NUL say, would reach the query).
        if after.tzinfo is None or not is_id(item_id):
            raise ValueError(token)
        return after, item_id
    except (binascii.Error, ValueError, TypeError) as exc:
        raise bad_page_token() from exc


def bad_page_token() -> ClarionError:
    return invalid(
        "INVALID_ARGUMENT",
        "page_token",
        "page_token is not one this API returned; pass next_page_token unchanged",
    )
