"""The portal's server side through Envoy, as a browser uses it: the session
cookie, CSRF, logins and their throttling, logout, roles, the team and its
invitations, the audit log and tenant isolation."""

import re
import secrets
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from runner.stack import Stack
from tests.e2e.test_errors import reason
from tests.e2e.test_log_hygiene import _platform_logs
from tests.e2e.test_signup_hardening import from_address
from tests.e2e.waiting import wait_for

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

    def accept(self, token: str, password: str = PASSWORD) -> httpx.Response:
        response = self.client.post(
            "/portal/invitations:accept", json={"token": token, "password": password}
        )
        if response.status_code == 200:
            self.csrf = response.json()["csrf_token"]
        return response

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


def test_another_sites_page_cannot_log_a_browser_in(browsers: list[Browser]) -> None:
    owner, victim = browsers[0], browsers[1]
    email = owner.signup()["email"]
    # A form on another site posting the attacker's credentials (login CSRF).
    forged = victim.client.post(
        "/portal/login",
        json={"email": email, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403 and reason(forged) == "CROSS_ORIGIN", forged.text
    assert "clarion_session" not in victim.client.cookies
    # The portal's own page sends its own origin; scripts send none.
    own = f"http://{victim.client.base_url.netloc.decode()}"
    same = victim.client.post(
        "/portal/login", json={"email": email, "password": PASSWORD}, headers={"Origin": own}
    )
    assert same.status_code == 200, same.text


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
    first_attempt = time.monotonic()
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
    # address waits; its bucket refills one every 6 s meanwhile.
    failures = 10
    while (
        refused := attacker.login(f"nobody-{secrets.token_hex(6)}@acme.example")
    ).status_code == 401:
        failures += 1
        refilled = (time.monotonic() - first_attempt) / 6 + 1
        assert failures <= 30 + refilled, "30 failures from one address were not throttled"
    assert reason(refused) == "LOGIN_THROTTLED", refused.text
    assert failures >= 29
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


def invite(owner: Browser, sandbox: httpx.Client, role: str) -> tuple[str, str, dict[str, str]]:
    """Invites a new address with `role`; returns its email, the token from
    the email the sandbox received, and the invitation."""
    email = f"{role}-{secrets.token_hex(6)}@acme.example"
    sent = owner.post("/api/v1/invitations", {"email": email, "role": role})
    assert sent.status_code == 200, sent.text
    invitation = sent.json()
    assert invitation["email"] == email and invitation["role"] == role

    def received() -> list[dict[str, str]]:
        requests = sandbox.get("/sandbox/api/requests", params={"to": email}).json()["requests"]
        if not requests:
            return []
        return list(sandbox.get("/sandbox/api/messages", params={"to": email}).json()["messages"])

    [message] = wait_for(received)
    assert "Acme" in message["subject"]
    found = re.search(r"/portal/accept\?token=([\w-]+)", message["body"])
    assert found, message["body"]
    return email, found.group(1), invitation


def test_invitation_from_the_sandbox_inbox_makes_a_viewer_who_only_reads(
    browsers: list[Browser], sandbox: httpx.Client
) -> None:
    owner, invitee, stranger = browsers
    account = owner.signup()
    email, token, invitation = invite(owner, sandbox, "viewer")
    assert invitation["invitation_id"] in str(owner.get("/api/v1/members").json())

    # The owner sees the invitation email in the portal's sandbox inbox, as sent.
    inbox = owner.get(f"/api/v1/sandbox/messages?notification_id={invitation['notification_id']}")
    assert inbox.status_code == 200, inbox.text
    [message] = inbox.json()["messages"]
    assert message["channel"] == "email" and message["to"] == email and token in message["body"]

    assert reason(invitee.accept(token, "password1234")) == "WEAK_PASSWORD"
    accepted = invitee.accept(token)
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["user"] == {"user_id": body["user"]["user_id"], "email": email, "role": "viewer"}
    assert body["tenant"]["tenant_id"] == account["tenant_id"]
    # Used once.
    again = stranger.accept(token)
    assert again.status_code == 404 and reason(again) == "INVITATION_INVALID"

    # The invited person logs in with their own password and the invited role.
    fresh = Browser(owner.stack, new_address())
    assert fresh.login(email).json()["user"]["role"] == "viewer"
    fresh.client.close()

    # A viewer reads...
    keys = invitee.get("/api/v1/api-keys")
    assert keys.status_code == 200
    assert invitee.get("/api/v1/members").status_code == 200
    # ...and changes nothing, even with the CSRF token.
    key_id = keys.json()["api_keys"][0]["key_id"]
    refused = invitee.delete(f"/api/v1/api-keys/{key_id}")
    assert refused.status_code == 403, refused.text
    assert reason(refused) == "ROLE_FORBIDDEN" and "owner" in refused.json()["message"]
    send = invitee.post("/api/v1/notifications/send", EMAIL_SEND)
    assert reason(send) == "ROLE_FORBIDDEN"
    # Nor can a viewer read another invitation's link from the inbox.
    peek = invitee.get(f"/api/v1/sandbox/messages?notification_id={invitation['notification_id']}")
    assert reason(peek) == "ROLE_FORBIDDEN"
    # ...or from the notification itself, which shows owners what was sent.
    path = f"/api/v1/notifications/{invitation['notification_id']}"
    assert {d["body"] for d in invitee.get(path).json()["deliveries"]} == {""}
    assert token in owner.get(path).json()["deliveries"][0]["body"]
    assert "revoked_at" not in owner.get("/api/v1/api-keys").json()["api_keys"][0]

    entries = owner.get("/api/v1/audit-log").json()["entries"]
    actions = [(e["action"], e["actor_email"]) for e in entries]
    assert ("invitation.accepted", email) in actions
    assert ("invitation.created", account["email"]) in actions


EMAIL_SEND = {
    "recipient": {"email": "pat@acme.example"},
    "notification": {"channels": ["email"], "subject": "Hi", "body": "Hello"},
}


def test_a_developer_sends_and_edits_templates_but_manages_no_keys_or_members(
    browsers: list[Browser], sandbox: httpx.Client
) -> None:
    owner, developer, _ = browsers
    owner.signup()
    _, token, _ = invite(owner, sandbox, "developer")
    assert developer.accept(token).status_code == 200

    sent = developer.post("/api/v1/notifications/send", EMAIL_SEND)
    assert sent.status_code == 200, sent.text
    # Their own notification's copy in the sandbox inbox.
    notification_id = sent.json()["notification_id"]
    messages = wait_for(
        lambda: (
            developer.get(f"/api/v1/sandbox/messages?notification_id={notification_id}")
            .json()
            .get("messages")
        )
    )
    assert messages[0]["subject"] == "Hi" and messages[0]["body"].strip() == "Hello"
    # The inbox of the tenant's newest messages: theirs, but not the invitation's link.
    newest = developer.get("/api/v1/sandbox/messages").json()["messages"]
    assert [m["notification_id"] for m in newest] == [notification_id]
    assert len(owner.get("/api/v1/sandbox/messages").json()["messages"]) == 2
    template = developer.post(
        "/api/v1/templates",
        {"template_id": "welcome", "channels": {"email": {"subject": "Hi", "body": "Hi {{name}}"}}},
    )
    assert template.status_code == 200, template.text
    templated = developer.post(
        "/api/v1/notifications/send",
        {
            "recipient": {"email": "pat@acme.example"},
            "notification": {
                "channels": ["email"],
                "template_id": "welcome",
                "data": {"name": "Pat"},
            },
        },
    )
    assert templated.status_code == 200, templated.text
    shown = developer.get(f"/api/v1/notifications/{templated.json()['notification_id']}").json()
    [rendered] = shown["deliveries"]
    assert (rendered["subject"], rendered["body"]) == ("Hi", "Hi Pat")
    assert shown["template_id"] == "welcome" and shown["template_version"] == 1
    for refused in (
        developer.post("/api/v1/api-keys", {"name": "mine"}),
        developer.post("/api/v1/invitations", {"email": "x@acme.example", "role": "owner"}),
    ):
        assert refused.status_code == 403 and reason(refused) == "ROLE_FORBIDDEN", refused.text
    assert any(
        e["action"] == "template.created" and e["target"] == "welcome"
        for e in owner.get("/api/v1/audit-log").json()["entries"]
    )


def test_owners_remove_members_and_cancel_invitations_but_keep_one_owner(
    browsers: list[Browser], sandbox: httpx.Client
) -> None:
    owner, member, _ = browsers
    owner.signup()
    _, token, _ = invite(owner, sandbox, "developer")
    assert member.accept(token).status_code == 200
    members = owner.get("/api/v1/members").json()["members"]
    assert [m["role"] for m in members] == ["owner", "developer"]
    owner_id, member_id = members[0]["user_id"], members[1]["user_id"]

    last = owner.delete(f"/api/v1/members/{owner_id}")
    assert last.status_code == 400 and reason(last) == "LAST_OWNER", last.text
    assert owner.delete(f"/api/v1/members/{member_id}").status_code == 200
    # The removed member's session ends at once.
    assert reason(member.get("/api/v1/notifications")) == "SESSION_INVALID"

    _, token, invitation = invite(owner, sandbox, "viewer")
    cancelled = owner.delete(f"/api/v1/invitations/{invitation['invitation_id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert reason(member.accept(token)) == "INVITATION_INVALID"
    assert owner.get("/api/v1/members").json()["invitations"] == []
    actions = [e["action"] for e in owner.get("/api/v1/audit-log?page_size=2").json()["entries"]]
    assert actions == ["invitation.cancelled", "invitation.created"]


def test_the_audit_log_names_the_user_or_the_api_key_and_pages(
    browsers: list[Browser], stack: Stack
) -> None:
    owner = browsers[0]
    account = owner.signup()
    created = owner.post("/api/v1/api-keys", {"name": "ci"}).json()
    with httpx.Client(base_url=stack.api_url) as backend:
        key = {"X-API-Key": account["api_key"]}
        revoked = backend.delete(f"/api/v1/api-keys/{created['key_id']}", headers=key)
        assert revoked.status_code == 200
        routed = backend.put(
            "/api/v1/routing/default",
            headers=key,
            json={"channels": ["sms", "email"]},
        )
        assert routed.status_code == 200, routed.text
    first = owner.get("/api/v1/audit-log?page_size=2").json()
    assert [e["action"] for e in first["entries"]] == ["routing_default.updated", "api_key.revoked"]
    for entry in first["entries"]:
        assert entry["actor_email"] == "" and entry["actor_api_key"] == account["api_key"][:12]
    rest = owner.get(f"/api/v1/audit-log?page_size=2&page_token={first['next_page_token']}").json()
    [made] = rest["entries"]
    assert made["action"] == "api_key.created" and made["actor_email"] == account["email"]
    assert made["target"] == created["key_id"] and rest["next_page_token"] == ""

    rule = owner.post(
        "/api/v1/alert-rules",
        {
            "name": "sms failures",
            "kind": "failure_count",
            "channel": "sms",
            "max_failures": 3,
            "window": "5m",
            "notify": {"channel": "email", "to": "oncall@acme.example"},
        },
    )
    assert rule.status_code == 200, rule.text
    rule_id = rule.json()["rule_id"]
    assert owner.post(f"/api/v1/alert-rules/{rule_id}:disable", {}).status_code == 200
    assert owner.delete(f"/api/v1/alert-rules/{rule_id}").status_code == 200
    latest = owner.get("/api/v1/audit-log?page_size=3").json()["entries"]
    assert [(e["action"], e["target"], e["actor_email"]) for e in latest] == [
        ("alert_rule.deleted", rule_id, account["email"]),
        ("alert_rule.disabled", rule_id, account["email"]),
        ("alert_rule.created", rule_id, account["email"]),
    ]


def test_logs_hold_no_session_csrf_or_invitation_token_nor_password(
    browsers: list[Browser], sandbox: httpx.Client, stack: Stack
) -> None:
    owner, invitee, _ = browsers
    owner.signup()
    cookie = owner.client.cookies["clarion_session"]
    owner.login("nobody@acme.example", "a wrong password here")
    _, token, _ = invite(owner, sandbox, "viewer")
    assert invitee.accept(token).status_code == 200
    owner.post("/api/v1/api-keys", {"name": "x"}, csrf="forged")
    logs = _platform_logs(stack)
    for secret in (cookie, owner.csrf, invitee.csrf, token, PASSWORD, "a wrong password here"):
        assert secret not in logs
