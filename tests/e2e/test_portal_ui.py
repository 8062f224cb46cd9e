"""The tenant portal in a real headless Chromium, served by the stack's Envoy
and talking to the real API: the signup-to-delivery journey, login failures,
CSRF, roles, invitations from the sandbox inbox, and axe on every page.

Screenshots of every page go to <basetemp>/portal-screenshots; with
CLARION_SCREENSHOTS=1 they are also written to docs/screenshots/ (make screenshots)."""

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from runner.stack import Stack
from tests.conftest import Tenant, signup
from tests.e2e.waiting import wait_for, wait_for_status

CHROMIUM = "/usr/bin/chromium"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery 42"
# axe impacts that fail a page; "moderate" and "minor" are reported only.
BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for this module; each test gets its own context. Not for
    the session: Playwright's sync API keeps its event loop running in this
    thread while it is open, and every asyncio test after it would fail
    ("Runner.run() cannot be called from a running event loop")."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("portal-screenshots", numbered=False)


@pytest.fixture(scope="session")
def axe_summary() -> Iterator[dict[str, Any]]:
    """Every page's violations by impact, printed once at the end."""
    summary: dict[str, Any] = {}
    yield summary
    print("\naxe results (violations by impact) per portal page:")
    for name, counts in sorted(summary.items()):
        print(f"  {name}: {json.dumps(counts) if counts else 'none'}")


def new_context(browser: Browser, stack: Stack) -> BrowserContext:
    context = browser.new_context(
        base_url=stack.api_url, viewport={"width": 1366, "height": 900}, locale="en-GB"
    )
    context.set_default_timeout(15_000)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    return context


@pytest.fixture
def context(browser: Browser, stack: Stack) -> Iterator[BrowserContext]:
    ctx = new_context(browser, stack)
    yield ctx
    ctx.close()


def snap(page: Page, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("CLARION_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(exist_ok=True)
        shutil.copy(path, DOCS_SCREENSHOTS / path.name)


def check_axe(page: Page, name: str, summary: dict[str, Any]) -> None:
    results = Axe().run(page)
    violations = results.response["violations"]
    counts: dict[str, int] = {}
    for violation in violations:
        counts[violation["impact"]] = counts.get(violation["impact"], 0) + len(violation["nodes"])
    summary[name] = counts
    for violation in violations:
        print(f"axe {name}: {violation['id']} ({violation['impact']}): {violation['help']}")
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in blocking
    )


def signup_in_browser(page: Page) -> tuple[str, str]:
    """Signs up through the form; returns (email, the API key shown once)."""
    email = f"owner-{secrets.token_hex(5)}@acme.example"
    page.goto("/portal/signup")
    page.get_by_label("Organisation name").fill("Acme Rockets")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    key = page.locator("#api-key")
    expect(key).to_have_text(re.compile(r"^clk_"))
    expect(page.get_by_text("This key will not be shown again.")).to_be_visible()
    return email, key.inner_text()


def login_in_browser(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def send_email(api: httpx.Client, key: str, to: str) -> str:
    response = api.post(
        "/api/v1/notifications/send",
        headers={"X-API-Key": key},
        json={
            "recipient": {"email": to},
            "notification": {"channels": ["email"], "subject": "Hello", "body": "From the API"},
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["notification_id"])


def invitation_link(sandbox: httpx.Client, email: str) -> str:
    """The accept link in the invitation email the sandbox SMTP server received."""

    def find() -> str | None:
        messages = sandbox.get("/sandbox/api/messages", params={"channel": "email", "to": email})
        for message in messages.json()["messages"]:
            found = re.search(r"https?://\S+/portal/accept\?token=[\w-]+", message["body"])
            if found:
                return found.group(0)
        return None

    link: str = wait_for(find, timeout=30)
    return link


def test_signup_send_watch_delivery_and_revoke_the_key(
    context: BrowserContext, api: httpx.Client, shots: Path
) -> None:
    page = context.new_page()
    _, key = signup_in_browser(page)
    snap(page, shots, "signup-key")
    page.get_by_role("button", name="Copy key").click()
    assert page.evaluate("navigator.clipboard.readText()") == key
    session_cookie = next(c for c in context.cookies() if c["name"] == "clarion_session")
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Strict"
    page.get_by_role("button", name=re.compile("go to the dashboard")).click()
    expect(page.get_by_role("heading", name="Recent notifications")).to_be_visible()
    # The key lives only in the page it was shown on: no storage holds it.
    stored = page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert key not in stored and key not in page.content()
    page.evaluate("window.stillTheSamePage = true")

    notification_id = send_email(api, key, "jo@example.com")
    row = page.locator(f'tr[data-id="{notification_id}"]')
    expect(row).to_be_visible()
    expect(row.locator("td.status")).to_have_text("delivered", timeout=30_000)
    expect(row.locator("td.attempts")).to_have_text("1")
    assert page.evaluate("window.stillTheSamePage") is True, "the dashboard reloaded"
    snap(page, shots, "dashboard")

    row.get_by_role("link").click()
    expect(page.locator("#status")).to_have_text("delivered")
    timeline = page.get_by_role("list", name="email timeline")
    expect(timeline).to_contain_text("Status queued")
    expect(timeline).to_contain_text("Attempt 1")
    expect(timeline).to_contain_text("Status delivered")
    sent_content = page.get_by_role("region", name="email content")
    expect(sent_content).to_contain_text("Subject: Hello")
    expect(sent_content).to_contain_text("From the API")
    expect(page.get_by_text("As the sandbox received it")).to_be_visible()
    expect(page.locator("article").get_by_text("From the API")).to_be_visible()
    snap(page, shots, "notification")

    page.get_by_role("link", name="API keys").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=re.compile("^Revoke key")).click()
    expect(page.get_by_text("revoked", exact=True)).to_be_visible()
    # API servers cache keys for CLARION_API_KEY_CACHE_SECONDS (2 s in tests).
    wait_for(
        lambda: api.get("/api/v1/usage", headers={"X-API-Key": key}).status_code == 401,
        timeout=10,
    )
    refused = api.get("/api/v1/usage", headers={"X-API-Key": key})
    assert refused.json()["details"][0]["reason"] == "INVALID_API_KEY"

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to Clarion")).to_be_visible()
    page.goto("/portal/dashboard")
    expect(page).to_have_url(re.compile(r"/portal/login\?next="))


def test_csrf_refused_without_token_and_from_another_origin(
    context: BrowserContext, api: httpx.Client, stack: Stack
) -> None:
    page = context.new_page()
    _, key = signup_in_browser(page)
    keys_before = api.get("/api/v1/api-keys", headers={"X-API-Key": key}).json()["api_keys"]

    # The portal's own origin, but without the session's token.
    status, body = page.evaluate(
        """async () => {
          const r = await fetch('/api/v1/api-keys', {method: 'POST', body: '{"name": "no token"}',
            headers: {'Content-Type': 'application/json'}});
          return [r.status, await r.json()];
        }"""
    )
    assert status == 403 and body["details"][0]["reason"] == "CSRF_TOKEN_INVALID", body

    # Another origin on the same site (another port of 127.0.0.1): the browser
    # sends the SameSite=Strict cookie, so only the missing token stops it.
    evil = "http://127.0.0.1:1/evil.html"
    # A text/plain form field "name=value" that reads as JSON: {"name":"evil","x":"="}.
    form = f"""<form id=f method=post enctype=text/plain action="{stack.api_url}/api/v1/api-keys">
      <input name='{{"name":"evil","x":"' value='"}}'></form>
      <script>document.getElementById('f').submit()</script>"""
    context.route(evil, lambda route: route.fulfill(content_type="text/html", body=form))
    with page.expect_response(f"{stack.api_url}/api/v1/api-keys") as answer:
        page.goto(evil)
    assert answer.value.status in (401, 403), answer.value.status
    keys_after = api.get("/api/v1/api-keys", headers={"X-API-Key": key}).json()["api_keys"]
    assert len(keys_after) == len(keys_before)


def test_invited_viewer_joins_from_the_sandbox_inbox_and_cannot_revoke_keys(
    browser: Browser, stack: Stack, api: httpx.Client, sandbox: httpx.Client, shots: Path
) -> None:
    owner = new_context(browser, stack)
    page = owner.new_page()
    _, key = signup_in_browser(page)
    page.goto("/portal/team")
    invitee = f"viewer-{secrets.token_hex(5)}@acme.example"
    page.get_by_label("Email").fill(invitee)
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("cell", name=invitee, exact=True)).to_be_visible()
    snap(page, shots, "team")
    owner.close()

    viewer = new_context(browser, stack)
    page = viewer.new_page()
    link = invitation_link(sandbox, invitee)
    page.goto(link)
    page.get_by_label("Choose a password").fill("a viewer's own long phrase 7")
    page.get_by_role("button", name="Join the team").click()
    expect(page.get_by_role("heading", name="Recent notifications")).to_be_visible()
    expect(page.get_by_text(f"{invitee} (viewer)")).to_be_visible()

    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("cell", name="active")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Revoke"))).to_have_count(0)
    expect(page.get_by_role("button", name="Create key")).to_have_count(0)
    page.get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="Templates")).to_be_visible()
    expect(page.get_by_role("button", name="Create template")).to_have_count(0)
    key_id = api.get("/api/v1/api-keys", headers={"X-API-Key": key}).json()["api_keys"][0]["key_id"]
    status, body = page.evaluate(
        """async (keyId) => {
          const session = await (await fetch('/portal/session')).json();
          const r = await fetch(`/api/v1/api-keys/${keyId}`, {method: 'DELETE',
            headers: {'X-CSRF-Token': session.csrf_token}});
          return [r.status, await r.json()];
        }""",
        key_id,
    )
    assert status == 403 and body["details"][0]["reason"] == "ROLE_FORBIDDEN", body
    assert api.get("/api/v1/usage", headers={"X-API-Key": key}).status_code == 200
    viewer.close()


def test_public_pages_have_no_serious_axe_violations(
    context: BrowserContext, shots: Path, axe_summary: dict[str, Any]
) -> None:
    page = context.new_page()
    for name, path in [
        ("signup", "/portal/signup"),
        ("login", "/portal/login"),
        ("accept", "/portal/accept?token=example"),
    ]:
        page.goto(path)
        expect(page.locator("main form")).to_be_visible()
        check_axe(page, name, axe_summary)
        snap(page, shots, name)
    # Pages that need a session send a logged-out visitor to the login page.
    page.goto("/portal/keys")
    expect(page).to_have_url(re.compile(r"/portal/login\?next=%2Fportal%2Fkeys$"))


def test_every_page_renders_without_serious_axe_violations(
    browser: Browser,
    stack: Stack,
    api: httpx.Client,
    shots: Path,
    axe_summary: dict[str, Any],
) -> None:
    context = new_context(browser, stack)
    page = context.new_page()
    _, key = signup_in_browser(page)
    check_axe(page, "signup-key", axe_summary)
    headers = {"X-API-Key": key}
    template = {
        "template_id": "welcome",
        "description": "Greets a new customer",
        "channels": {"email": {"subject": "Welcome {{name}}", "body": "Hi {{name}},\nthanks."}},
    }
    assert api.post("/api/v1/templates", headers=headers, json=template).status_code == 200
    second = {
        "channels": {"email": {"subject": "Welcome, {{name}}!", "body": "Hi {{name}},\nthank you."}}
    }
    assert (
        api.post("/api/v1/templates/welcome/versions", headers=headers, json=second).status_code
        == 200
    )
    sent = api.post(
        "/api/v1/notifications/send",
        headers=headers,
        json={
            "recipient": {"email": "sam@example.com"},
            "notification": {
                "channels": ["email"],
                "template_id": "welcome",
                "data": {"name": "Sam"},
            },
        },
    )
    assert sent.status_code == 200, sent.text
    bulk = api.post(
        "/api/v1/notifications/bulk",
        headers=headers,
        json={
            "channels": ["email"],
            "subject": "News",
            "body": "Our news",
            "recipients": [
                {"email": "a@example.com"},
                {"email": "b@example.com"},
                {"email": "not-an-email"},
            ],
        },
    )
    assert bulk.status_code == 200, bulk.text
    rule = api.post(
        "/api/v1/alert-rules",
        headers=headers,
        json={
            "kind": "failure_count",
            "channel": "email",
            "max_failures": 3,
            "window": "10m",
            "notify": {"channel": "email", "to": "oncall@acme.example"},
        },
    )
    assert rule.status_code == 200, rule.text
    notification_id = sent.json()["notification_id"]
    bulk_id = bulk.json()["bulk_id"]
    wait_for_status(Tenant(api, "", key), notification_id, {"delivered"})

    pages = [
        ("dashboard", "/portal/dashboard", "Recent notifications"),
        ("notification", f"/portal/notifications/{notification_id}", "Notification"),
        ("inbox", f"/portal/inbox?notification_id={notification_id}", "Sandbox inbox"),
        ("inbox-all", "/portal/inbox", "Sandbox inbox"),
        ("overview", "/portal/overview", "Overview"),
        ("bulk", "/portal/bulk", "Bulk sends"),
        ("bulk-detail", f"/portal/bulk/{bulk_id}", "Bulk send"),
        ("keys", "/portal/keys", "API keys"),
        ("templates", "/portal/templates", "Templates"),
        ("template", "/portal/templates/welcome", "Template welcome"),
        ("team", "/portal/team", "Team"),
        ("audit", "/portal/audit", "Audit log"),
        ("routing", "/portal/routing", "Default routing"),
        ("webhooks", "/portal/webhooks", "Webhooks"),
        ("alerts", "/portal/alerts", "Alert rules"),
        ("alert", f"/portal/alerts/{rule.json()['rule_id']}", "Alert rule"),
    ]
    for name, path, heading in pages:
        page.goto(path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        page.wait_for_load_state("networkidle")
        expect(page.get_by_role("alert")).to_have_count(0)
        check_axe(page, name, axe_summary)
        snap(page, shots, name)

    # The overview's chart and table come from GET /api/v1/stats.
    page.goto("/portal/overview")
    last_hour = page.get_by_role("table", name="Outcomes by channel, last hour")
    expect(last_hour.get_by_role("row", name=re.compile(r"^email [1-9]"))).to_be_visible()
    expect(
        page.get_by_role("img", name=re.compile(r"^Last hour: [1-9]\d* delivered"))
    ).to_be_visible()
    context.close()


def test_template_page_diffs_previews_and_sends_a_test(
    context: BrowserContext, api: httpx.Client
) -> None:
    page = context.new_page()
    email, key = signup_in_browser(page)
    headers = {"X-API-Key": key}
    first = {
        "template_id": "receipt",
        "channels": {"email": {"subject": "Receipt {{n}}", "body": "one\ntwo"}},
    }
    assert api.post("/api/v1/templates", headers=headers, json=first).status_code == 200
    second = {"channels": {"email": {"subject": "Receipt {{n}}", "body": "one\nthree"}}}
    assert (
        api.post("/api/v1/templates/receipt/versions", headers=headers, json=second).status_code
        == 200
    )
    page.goto("/portal/templates/receipt")
    diff = page.get_by_role("region", name="Changes from version 1 to 2")
    expect(diff.locator(".del")).to_have_text(["- two"])
    expect(diff.locator(".add")).to_have_text(["+ three"])

    page.get_by_label("Sample data (JSON)").fill('{"n": "R-7"}')
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("Receipt R-7")).to_be_visible()
    page.get_by_role("button", name=f"Send a test email to {email}").click()
    page.get_by_role("link", name=re.compile("^ntf_")).click()
    expect(page.locator("#status")).to_have_text("delivered", timeout=30_000)

    # The sandbox plays Meta and approves WhatsApp content within seconds.
    whatsapp = {"body": "Order {{n}} shipped", "language": "en_US"}
    wa = {"template_id": "wa_shipped", "channels": {"whatsapp": whatsapp}}
    assert api.post("/api/v1/templates", headers=headers, json=wa).status_code == 200
    approved = page.get_by_role("row", name=re.compile("^wa_shipped")).get_by_text("approved")

    def shows_approved() -> bool:
        page.goto("/portal/templates")
        expect(page.get_by_role("row", name=re.compile("^wa_shipped"))).to_be_visible()
        return approved.count() == 1

    wait_for(shows_approved, timeout=30, interval=1)

    page.goto("/portal/templates/receipt")
    page.get_by_label("Percent of recipients").fill("25")
    page.get_by_role("button", name="Start rollout").click()
    expect(page.locator("#rollout-state")).to_have_text("version 2 at 25% (running)")
    page.get_by_role("button", name="Stop rollout").click()
    expect(page.locator("#rollout-state")).not_to_contain_text("running")


def test_alert_rule_routing_and_webhook_forms(context: BrowserContext) -> None:
    page = context.new_page()
    signup_in_browser(page)
    page.goto("/portal/alerts")
    page.get_by_label("Kind").select_option("failure_count")
    page.get_by_label("Channel", exact=True).select_option("sms")
    page.get_by_label("Maximum failures").fill("4")
    page.get_by_label("Notify address").fill("oncall@acme.example")
    page.get_by_role("button", name="Create alert rule").click()
    expect(page.get_by_text("sms: more than 4 failures in 10m")).to_be_visible()
    expect(page.locator("#rule-state")).to_have_text("ok")
    page.get_by_role("button", name="Disable rule").click()
    expect(page.locator("#rule-state")).to_have_text("disabled")

    page.goto("/portal/routing")
    page.get_by_label("Channels, in order").fill("sms, email")
    page.get_by_label("Step timeout").fill("45s")
    page.get_by_role("button", name="Save default routing").click()
    expect(
        page.get_by_text("Channels sms → email, success on delivered, step timeout 45s")
    ).to_be_visible()

    # The API's refusal, with its reason, in place of the form's result.
    page.goto("/portal/webhooks")
    page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/hook")
    page.get_by_role("button", name="Register webhook").click()
    expect(page.get_by_role("alert")).to_contain_text("INVALID_WEBHOOK_URL")


def test_keyboard_login_then_dashboard_filters_and_pages(
    context: BrowserContext, api: httpx.Client
) -> None:
    email = f"keys-{secrets.token_hex(5)}@acme.example"
    created = api.post(
        "/portal/signup", json={"name": "Acme", "email": email, "password": PASSWORD}
    )
    assert created.status_code == 200, created.text
    headers = {"X-API-Key": created.json()["api_key"]}
    rows = [{"email": f"row{i}@example.com"} for i in range(26)]
    bulk = {"channels": ["email"], "subject": "S", "body": "B", "recipients": rows}
    assert api.post("/api/v1/notifications/bulk", headers=headers, json=bulk).status_code == 200

    page = context.new_page()
    page.goto("/portal/login")
    # As a person does, start once the form is on screen: it renders after
    # its module loads.
    expect(page.get_by_label("Email")).to_be_visible()
    # Keyboard only: the skip link first, with a visible focus ring, then the form.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    # The skip link moves focus to the content and leaves the page as it is
    # (it used to route to the login page again, which a Tab could outrun).
    page.evaluate("document.querySelector('main input[name=email]').dataset.mark = 'kept'")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    expect(page.locator("main input[data-mark=kept]")).to_have_count(1)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Recent notifications")).to_be_visible()

    table = page.get_by_role("table")
    expect(table.locator("tbody tr")).to_have_count(25)
    page.get_by_role("button", name="Older").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Newer").click()
    expect(table.locator("tbody tr")).to_have_count(25)

    page.get_by_label("Recipient").fill("row7@example.com")
    page.get_by_label("Time range").select_option("15m")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"recipient=row7%40example.com&range=15m"))
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_contain_text("row7@example.com")


def test_csv_upload_streams_with_progress(context: BrowserContext, tmp_path: Path) -> None:
    page = context.new_page()
    signup_in_browser(page)
    csv = tmp_path / "people.csv"
    csv.write_text(
        "email,data.name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(200)) + "bad,X\n"
    )
    page.goto("/portal/bulk")
    page.get_by_label("Subject (raw email)").fill("Hi")
    page.get_by_label("Text (raw content)").fill("Hello there")
    page.get_by_label("CSV file").set_input_files(str(csv))
    page.get_by_role("button", name="Upload and send").click()
    expect(page.get_by_role("heading", name="Bulk send", exact=True)).to_be_visible()
    expect(page.get_by_text("1 row refused")).to_be_visible()
    expect(page.get_by_text(re.compile("^200 of 200 handed over"))).to_be_visible(timeout=60_000)


def test_portal_files_carry_security_headers(api: httpx.Client) -> None:
    for path in [
        "/portal",
        "/portal/dashboard",
        "/portal/notifications/ntf_x",
        "/portal/assets/app.js",
    ]:
        response = api.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert api.get("/portal/assets/app.js").headers["content-type"].startswith("text/javascript")
    assert api.get("/portal/guide").text.startswith("# ")
    # Scripts keep signing up with JSON on the same path the form posts to.
    assert signup(api).api_key.startswith("clk_")


def test_login_failures_are_refused_then_throttled(
    context: BrowserContext, api: httpx.Client
) -> None:
    """Last in this module: the throttle also counts failures per client address."""
    tenant_email = f"ops-{secrets.token_hex(5)}@acme.example"
    created = api.post(
        "/portal/signup", json={"name": "Acme", "email": tenant_email, "password": PASSWORD}
    )
    assert created.status_code == 200, created.text
    page = context.new_page()
    login_in_browser(page, tenant_email, "not the right password at all")
    expect(page.get_by_role("alert")).to_contain_text("LOGIN_FAILED")
    for _ in range(12):
        with page.expect_response("**/portal/login") as answer:
            page.get_by_role("button", name="Log in").click()
        if answer.value.status == 429:
            break
        assert answer.value.status == 401
    waits = re.compile(r"(retry|try again).* \d+ s", re.IGNORECASE)
    expect(page.get_by_role("alert")).to_contain_text(waits)
    # The right password is throttled too until the wait is over.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("LOGIN_THROTTLED")
