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


VONAGE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")


def vonage_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    """The SMS API's `sig` parameter, as Vonage's "Signing Messages" guide describes
    (https://developer.vonage.com/en/getting-started/concepts/signing-messages):
    every parameter but `sig`, sorted by name, each as `&name=value` with `&` and
    `=` in values replaced by `_`; "MD5 hash" (the default) is md5 of that string
    followed by the secret; the HMAC methods key the string with the secret.
    Hex digest: lower case for md5hash (the client libraries' test vector),
    upper case for the HMACs, as the libraries emit them; compare case-insensitively.
    """
    data = "".join(
        f"&{name}={value.replace('&', '_').replace('=', '_')}"
        for name, value in sorted(params.items())
        if name != "sig"
    )
    if method == "md5hash":
        return hashlib.md5((data + secret).encode()).hexdigest()
    if method not in VONAGE_METHODS:
        raise ValueError(f"unknown Vonage signature method {method!r}")
    return hmac.new(secret.encode(), data.encode(), method).hexdigest().upper()


def sendgrid_signature(private_key_b64: str, timestamp: str, payload: bytes) -> str:
    """X-Twilio-Email-Event-Webhook-Signature: base64 DER ECDSA (P-256, SHA-256)
    over the timestamp header's value followed by the raw body
    (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features).
    """
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_der_private_key(base64.b64decode(private_key_b64), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the SendGrid webhook key must be an EC (P-256) key")
    signature = key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def sendgrid_public_key(private_key_b64: str) -> str:
    """The verification key SendGrid shows under Mail Settings: base64 DER SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_der_private_key(base64.b64decode(private_key_b64), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(public).decode()
