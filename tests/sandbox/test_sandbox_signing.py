"""Signature algorithms against the providers' published example values."""

from __future__ import annotations

import secrets

import pytest

from sandbox.signing import mailgun_signature, meta_signature, twilio_signature

from .helpers import (
    expected_mailgun_signature,
    expected_meta_signature,
    expected_twilio_signature,
)

# Twilio's worked example (twilio.com/docs/usage/security) and the vector in
# Twilio's own SDK test suites: same token, URL with a query string, 5 params.
TWILIO_VECTORS = [
    (
        "https://example.com/myapp.php?foo=1&bar=2",
        "+14158675310",
        "L/OH5YylLD5NRKLltdqwSvS0BnU=",
    ),
    (
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        "+14158675309",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    ),
]


@pytest.mark.parametrize(("url", "caller", "published"), TWILIO_VECTORS)
def test_twilio_signature_reproduces_published_example(
    url: str, caller: str, published: str
) -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": caller,
        "Digits": "1234",
        "From": caller,
        "To": "+18005551212",
    }
    assert twilio_signature("12345", url, params) == published
    # Parameter order as sent must not matter, only the sort by name.
    assert twilio_signature("12345", url, list(reversed(params.items()))) == published
    # ...and the test's own independent implementation agrees with the docs too.
    assert expected_twilio_signature("12345", url, params) == published


def test_twilio_signature_covers_url_and_token() -> None:
    params = {"To": "+15551230000", "Body": "x"}
    base = twilio_signature("12345", "https://a.test/cb?x=1", params)
    assert twilio_signature("12345", "https://a.test/cb?x=2", params) != base
    assert twilio_signature("54321", "https://a.test/cb?x=1", params) != base


def test_mailgun_and_meta_signatures_match_independent_implementation() -> None:
    timestamp, token = "1529006854", secrets.token_hex(25)
    assert mailgun_signature("key-1", timestamp, token) == expected_mailgun_signature(
        "key-1", timestamp, token
    )
    raw = b'{"object":"whatsapp_business_account","entry":[]}'
    assert meta_signature("app-secret", raw) == expected_meta_signature("app-secret", raw)
    assert meta_signature("app-secret", raw).startswith("sha256=")
