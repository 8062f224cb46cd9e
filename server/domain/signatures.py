"""Provider webhook signatures, as each provider documents them."""

import base64
import hashlib
import hmac


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 over the full URL followed by
    every POST parameter's name and value, sorted by name; base64."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(
    auth_token: str, url: str, params: list[tuple[str, str]], signature: str
) -> bool:
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected, signature)


def mailgun_signature_valid(signing_key: str, timestamp: str, token: str, signature: str) -> bool:
    """Mailgun's webhook signature: hex HMAC-SHA256 of timestamp + token."""
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, signature)


def meta_signature_valid(app_secret: str, body: bytes, header: str) -> bool:
    """Meta's X-Hub-Signature-256: `sha256=` + hex HMAC-SHA256 of the raw body."""
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)
