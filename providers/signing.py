"""What every webhook signature check shares. Checks compare bytes, so that
odd input (non-ASCII, lone surrogates) is simply wrong rather than an
exception: `hmac.compare_digest` raises TypeError on a non-ASCII str."""

import hmac
from datetime import datetime, timedelta

from providers.base import ReceiptRefused


def secrets_equal(expected: str, given: str) -> bool:
    """Constant-time comparison of a secret we know with one we were given."""
    return hmac.compare_digest(as_bytes(expected), as_bytes(given))


def as_bytes(text: str) -> bytes:
    # "surrogatepass" encodes every str, lone surrogates included, one to one.
    return text.encode("utf-8", "surrogatepass")


def timestamp_age_error(
    timestamp: str, now: datetime, *, field: str, window: timedelta
) -> ReceiptRefused | None:
    """Refuses a signed timestamp (`field`: where it was) that is not a Unix
    time in seconds or is more than `window` from now, in either direction."""
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), now.tzinfo)
    except (ValueError, OverflowError, OSError):
        return ReceiptRefused("RECEIPT_STALE", f"{field} is not a Unix time in seconds")
    if abs(now - signed_at) > window:
        return ReceiptRefused(
            "RECEIPT_STALE", f"{field} is more than {window} from now; check the receiver's clock"
        )
    return None
