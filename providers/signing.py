"""What every webhook signature check shares. Checks compare bytes, so that
odd input (non-ASCII, lone surrogates) is simply wrong rather than an
exception: `hmac.compare_digest` raises TypeError on a non-ASCII str."""

import hmac


def secrets_equal(expected: str, given: str) -> bool:
    """Constant-time comparison of a secret we know with one we were given."""
    return hmac.compare_digest(as_bytes(expected), as_bytes(given))


def as_bytes(text: str) -> bytes:
    # "surrogatepass" encodes every str, lone surrogates included, one to one.
    return text.encode("utf-8", "surrogatepass")
