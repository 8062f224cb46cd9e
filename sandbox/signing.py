"""Webhook signatures, written from each provider's published algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping


def twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]
) -> str:
    """X-Twilio-Signature: base64(HMAC-SHA1(token, url + name1value1 + ...)).

    The URL is used exactly as configured (scheme, port and query string
    included); POST parameters are appended sorted by name.  Sorting whole
    (name, value) pairs keeps repeated names deterministic too.
    """
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    data = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun: hex HMAC-SHA256(signing key, timestamp + token)."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def meta_signature(app_secret: str, raw_body: bytes) -> str:
    """X-Hub-Signature-256 value: 'sha256=' + hex HMAC-SHA256(app secret, raw body)."""
    digest = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return "sha256=" + digest
