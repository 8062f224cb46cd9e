"""Signup cannot be abused: weak passwords are refused with the reason, and
each client address gets a bounded number of signups from Envoy, whatever
headers it sends."""

import math
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.envoy_config import SIGNUP_BURST
from runner.stack import Stack
from tests.e2e.test_errors import reason

SIGNUP = "/portal/signup"


def from_address(stack: Stack, address: str) -> httpx.Client:
    """A client whose connections come from `address` (any 127/8 address reaches Envoy)."""
    return httpx.Client(
        base_url=stack.api_url,
        transport=httpx.HTTPTransport(local_address=address),
        timeout=30,
    )


@pytest.fixture
def client_addresses(stack: Stack) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two clients on loopback addresses no other test uses."""
    octets = secrets.randbelow(200) + 20, secrets.randbelow(250) + 2
    one = from_address(stack, f"127.{octets[0]}.{octets[1]}.1")
    two = from_address(stack, f"127.{octets[0]}.{octets[1]}.2")
    with one, two:
        yield one, two


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password1234", "common"),
        ("aaaaaaaaaaaaaaaa", "Repeats"),
        ("qwertyuiopasdf", "commonly used"),
        # Strong enough alone (score 3), not when it is the account's own name.
        ("acme-widgets", "another word"),
    ],
)
def test_weak_passwords_are_refused_naming_the_field(
    api: httpx.Client, password: str, why: str
) -> None:
    email = f"weak-{secrets.token_hex(4)}@acme-widgets.example"
    response = api.post(SIGNUP, json={"name": "Acme Widgets", "email": email, "password": password})
    assert response.status_code == 400, response.text
    assert reason(response) == "WEAK_PASSWORD"
    body = response.json()
    assert body["message"].startswith("password is too easy to guess")
    assert why.lower() in body["message"].lower()
    violations = [d for d in body["details"] if d["@type"].endswith("BadRequest")]
    assert violations[0]["field_violations"][0]["field"] == "password"
    # Nothing was created: the same email signs up with a strong password.
    strong = api.post(
        SIGNUP, json={"name": "Acme Widgets", "email": email, "password": "correct horse 42"}
    )
    assert strong.status_code == 200, strong.text


def test_signups_are_limited_per_client_address_and_headers_cannot_dodge_it(
    api: httpx.Client, client_addresses: tuple[httpx.Client, httpx.Client]
) -> None:
    one, two = client_addresses
    email = f"taken-{secrets.token_hex(4)}@acme.example"
    taken = {"name": "Acme", "email": email, "password": "correct horse 42"}
    assert api.post(SIGNUP, json=taken).status_code == 200
    # A taken email answers 409 without hashing, so the burst is quick. Each
    # request claims another origin in the headers a proxy would set; if
    # Envoy believed them, every one would get its own allowance.
    tries = SIGNUP_BURST + 40
    started = time.monotonic()
    answers = []
    for i in range(tries):
        origin = f"203.0.113.{i % 250}"
        headers = {"X-Forwarded-For": origin, "X-Real-IP": origin, "Forwarded": f"for={origin}"}
        answers.append(one.post(SIGNUP, json=taken, headers=headers))
    elapsed = time.monotonic() - started
    passed = [a for a in answers if a.status_code != 429]
    assert {a.status_code for a in passed} == {409}
    # The burst, plus one per second of refill while the loop ran.
    assert SIGNUP_BURST <= len(passed) <= SIGNUP_BURST + math.ceil(elapsed) + 1, elapsed
    limited = next(a for a in answers if a.status_code == 429)
    assert reason(limited) == "SIGNUP_RATE_LIMITED"
    assert "too many signups from your address" in limited.json()["message"]
    assert limited.headers["retry-after"] == "1"

    # Another address has its own allowance.
    other = two.post(
        SIGNUP,
        json={
            "name": "Other",
            "email": f"other-{secrets.token_hex(4)}@acme.example",
            "password": "correct horse 42",
        },
    )
    assert other.status_code == 200, other.text
