"""Provider webhook signatures, as each provider documents them. Checks
compare bytes, so that odd input (non-ASCII, lone surrogates) is simply
wrong rather than an exception: `hmac.compare_digest` raises TypeError on a
non-ASCII str."""

import base64
import hashlib
import hmac


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 over the full URL followed by
    every POST parameter's name and value, sorted by name; base64."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(_bytes(auth_token), _bytes(payload), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(
    auth_token: str, url: str, params: list[tuple[str, str]], signature: str
) -> bool:
    return secrets_equal(twilio_signature(auth_token, url, params), signature)


def mailgun_signature_valid(signing_key: str, timestamp: str, token: str, signature: str) -> bool:
    """Mailgun's webhook signature: hex HMAC-SHA256 of timestamp + token."""
    expected = hmac.new(_bytes(signing_key), _bytes(timestamp + token), hashlib.sha256).hexdigest()
    return secrets_equal(expected, signature)


def meta_signature_valid(app_secret: str, body: bytes, header: str) -> bool:
    """Meta's X-Hub-Signature-256: `sha256=` + hex HMAC-SHA256 of the raw body."""
    expected = "sha256=" + hmac.new(_bytes(app_secret), body, hashlib.sha256).hexdigest()
    return secrets_equal(expected, header)


def secrets_equal(expected: str, given: str) -> bool:
    """Constant-time comparison of a secret we know with one we were given."""
    return hmac.compare_digest(_bytes(expected), _bytes(given))


def _bytes(text: str) -> bytes:
    # "surrogatepass" encodes every str, lone surrogates included, one to one.
    return text.encode("utf-8", "surrogatepass")
