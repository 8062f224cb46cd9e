"""The portal's server side through Envoy, as a browser uses it: the session
cookie, CSRF, logins and their throttling, logout, roles, the team and its
invitations, the audit log and tenant isolation."""

import secrets
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from runner.stack import Stack
from tests.e2e.test_errors import reason
from tests.e2e.test_signup_hardening import from_address

PASSWORD = "correct horse 42"


class Browser:
    """One person's browser: its own cookie jar and connections from its own
    loopback address, and the CSRF token the page keeps."""

    def __init__(self, stack: Stack, address: str) -> None:
        self.stack = stack
        self.client = from_address(stack, address)
        self.csrf = ""

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def post(self, path: str, json: object, *, csrf: str | None = None) -> httpx.Response:
        token = self.csrf if csrf is None else csrf
        return self.client.post(path, json=json, headers={"X-CSRF-Token": token} if token else {})

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(path, headers={"X-CSRF-Token": self.csrf})

    def signup(self) -> dict[str, str]:
        email = f"owner-{secrets.token_hex(6)}@acme.example"
        response = self.client.post(
            "/portal/signup", json={"name": "Acme", "email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        self.csrf = body["csrf_token"]
        return {**body, "email": email}

    def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = self.client.post("/portal/login", json={"email": email, "password": password})
        if response.status_code == 200:
            self.csrf = response.json()["csrf_token"]
        return response


def new_address() -> str:
    """A loopback address no other test uses (any 127/8 address reaches Envoy)."""
    octets = [secrets.randbelow(200) + 20, secrets.randbelow(250) + 2, secrets.randbelow(250) + 2]
    return "127." + ".".join(map(str, octets))


@pytest.fixture
def browsers(stack: Stack) -> Iterator[list[Browser]]:
    """Browsers on addresses no other test uses; index them as needed."""
    made = [Browser(stack, new_address()) for _ in range(3)]
    yield made
    for browser in made:
        browser.client.close()


def test_signup_sets_an_httponly_strict_cookie_that_reads_and_changes_only_with_csrf(
    browsers: list[Browser],
) -> None:
    owner = browsers[0]
    account = owner.signup()
    assert set(account) >= {"tenant_id", "api_key", "csrf_token"}
    [cookie] = owner.client.cookies.jar
    assert cookie.name == "clarion_session" and cookie.path == "/"
    response = owner.client.post(
        "/portal/login", json={"email": account["email"], "password": PASSWORD}
    )
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header
    # Over plain http the cookie is not Secure (Envoy sets x-forwarded-proto).
    assert "Secure" not in header
    owner.csrf = response.json()["csrf_token"]
    assert response.json()["user"]["role"] == "owner"
    assert response.json()["tenant"] == {"tenant_id": account["tenant_id"], "name": "Acme"}

    session = owner.get("/portal/session")
    assert session.status_code == 200, session.text
    assert session.json()["user"]["email"] == account["email"]
    assert session.json()["csrf_token"] == owner.csrf
    assert owner.get("/api/v1/notifications").status_code == 200
    assert owner.get("/api/v1/api-keys").json()["api_keys"][0]["name"] == "default"

    for token in ("", "forged-" + owner.csrf):
        refused = owner.post("/api/v1/api-keys", {"name": "ci"}, csrf=token or "")
        if not token:
            refused = owner.client.post("/api/v1/api-keys", json={"name": "ci"})
        assert refused.status_code == 403, refused.text
        assert reason(refused) == "CSRF_TOKEN_INVALID"
    created = owner.post("/api/v1/api-keys", {"name": "ci"})
    assert created.status_code == 200, created.text
    # The key made in the portal works for a backend, without any cookie.
    with httpx.Client(base_url=str(owner.client.base_url)) as backend:
        key = {"X-API-Key": created.json()["api_key"]}
        assert backend.get("/api/v1/notifications", headers=key).status_code == 200
        # API keys need no CSRF token.
        assert backend.post("/api/v1/api-keys", json={"name": "x"}, headers=key).status_code == 200
        # And no key, no cookie: the API key answer as before.
        assert reason(backend.get("/api/v1/notifications")) == "INVALID_API_KEY"
        assert reason(backend.get("/portal/session")) == "SESSION_INVALID"


def test_wrong_password_and_unknown_email_get_the_same_answer_in_the_same_time(
    browsers: list[Browser],
) -> None:
    owner, stranger = browsers[0], browsers[1]
    email = owner.signup()["email"]
    wrong, unknown = [], []
    for _ in range(5):
        started = time.perf_counter()
        failed = stranger.login(email, "not the password at all")
        wrong.append(time.perf_counter() - started)
        started = time.perf_counter()
        missing = stranger.login(f"nobody-{secrets.token_hex(6)}@acme.example")
        unknown.append(time.perf_counter() - started)
        assert failed.status_code == missing.status_code == 401
        assert failed.json() == missing.json()
        assert reason(failed) == "LOGIN_FAILED"
    # Both verify an argon2 hash; an unknown email is not answered sooner.
    assert statistics.median(unknown) > 0.5 * statistics.median(wrong), (wrong, unknown)
    assert stranger.login(email).status_code == 200


def test_failed_logins_are_throttled_per_email_and_per_address(
    browsers: list[Browser],
) -> None:
    owner, attacker, other = browsers
    email = owner.signup()["email"]
    for attempt in range(10):
        assert attacker.login(email, f"guess number {attempt}").status_code == 401
    throttled = attacker.login(email, "guess number 11")
    assert throttled.status_code == 429, throttled.text
    assert reason(throttled) == "LOGIN_THROTTLED"
    assert int(throttled.headers["retry-after"]) >= 1
    # The email is throttled from anywhere, even with the right password...
    assert reason(other.login(email)) == "LOGIN_THROTTLED"
    # ...but another email from the attacker's address is not.
    second = Browser(owner.stack, new_address())
    second_email = second.signup()["email"]
    assert attacker.login(second_email).status_code == 200

    # Per address: 30 failures over many emails (10 so far), then the
    # address waits; the bucket refills one every 6 s meanwhile.
    failures, started = 0, time.monotonic()
    while (
        refused := attacker.login(f"nobody-{secrets.token_hex(6)}@acme.example")
    ).status_code == 401:
        failures += 1
        refilled = (time.monotonic() - started) / 6 + 1
        assert failures <= 20 + refilled, "30 failures from one address were not throttled"
    assert reason(refused) == "LOGIN_THROTTLED", refused.text
    assert failures >= 19
    assert reason(attacker.login(second_email)) == "LOGIN_THROTTLED"
    # Another address logs in to the same account.
    assert second.login(second_email).status_code == 200
    second.client.close()


def test_logout_ends_the_session_at_once(browsers: list[Browser]) -> None:
    owner = browsers[0]
    owner.signup()
    cookie = owner.client.cookies["clarion_session"]
    assert reason(owner.post("/portal/logout", {}, csrf="wrong")) == "CSRF_TOKEN_INVALID"
    out = owner.post("/portal/logout", {})
    assert out.status_code == 200, out.text
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert "clarion_session" not in owner.client.cookies
    # The old cookie, replayed, is refused: the session is revoked server-side.
    owner.client.cookies.set("clarion_session", cookie)
    again = owner.get("/api/v1/notifications")
    assert again.status_code == 401
    assert reason(again) == "SESSION_INVALID"
    assert owner.get("/portal/session").status_code == 401


def test_another_tenants_session_sees_none_of_this_tenants_data(
    browsers: list[Browser], stack: Stack
) -> None:
    mine, theirs = browsers[0], browsers[1]
    key = mine.signup()["api_key"]
    theirs.signup()
    with httpx.Client(base_url=stack.api_url) as backend:
        sent = backend.post(
            "/api/v1/notifications/send",
            headers={"X-API-Key": key},
            json={
                "recipient": {"email": "pat@acme.example"},
                "notification": {"channels": ["email"], "subject": "Hi", "body": "Hello"},
            },
        )
    assert sent.status_code == 200, sent.text
    notification_id = sent.json()["notification_id"]
    assert mine.get(f"/api/v1/notifications/{notification_id}").status_code == 200
    assert theirs.get(f"/api/v1/notifications/{notification_id}").status_code == 404
    assert theirs.get("/api/v1/notifications").json()["notifications"] == []
    my_keys = mine.get("/api/v1/api-keys").json()["api_keys"]
    assert theirs.delete(f"/api/v1/api-keys/{my_keys[0]['key_id']}").status_code == 404
