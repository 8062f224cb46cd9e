"""The tenant portal in a real headless Chromium, served by the stack's Envoy
and talking to the real API: the signup-to-delivery journey, login failures,
CSRF, roles, invitations from the sandbox inbox, and axe on every page.

Screenshots of every page go to <basetemp>/portal-screenshots; with
CLARION_SCREENSHOTS=1 they are also written to docs/screenshots/ (make screenshots)."""

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from runner.stack import Stack
from tests.conftest import signup

CHROMIUM = "/usr/bin/chromium"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# axe impacts that fail a page; "moderate" and "minor" are reported only.
BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One Chromium for the whole session; each test gets its own context."""
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
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in blocking
    )


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
