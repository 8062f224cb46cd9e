"""Opaque, unguessable ids with a prefix that says what they name."""

import re
import secrets

_ID = re.compile(r"[a-z]{2,4}_[0-9a-f]{24}")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def looks_like_id(prefix: str, value: str) -> bool:
    """True when `value` has the shape of an id made by new_id(prefix)."""
    return value.startswith(prefix + "_") and bool(_ID.fullmatch(value))


def is_id(value: object) -> bool:
    """True when `value` has the shape of an id made by new_id, any prefix."""
    return isinstance(value, str) and bool(_ID.fullmatch(value))
