"""Envoy routes that serve the tenant portal (gateway/portal/) as static files:
one direct_response per file, read by Envoy when it loads its config. Every
page path serves the same app shell; the browser's router (app.js) picks the
page. No second backend: the pages call /api/v1 and /portal/* JSON endpoints."""

from pathlib import Path
from typing import Any

PORTAL_DIR = Path(__file__).resolve().parent / "portal"
GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide.md"
ASSETS_PREFIX = "/portal/assets/"
# Envoy refuses a config whose direct_response file is larger than the route
# config's max_direct_response_body_size_bytes (envoy_config sets 1 MiB).
MAX_FILE_BYTES = 1024 * 1024
# Page paths of the single-page app (app.js's router has the same list).
# GET only: POST /portal/signup, /portal/login and friends go to the API.
PAGES = [
    "signup",
    "login",
    "accept",
    "dashboard",
    "notifications",
    "inbox",
    "overview",
    "bulk",
    "keys",
    "templates",
    "team",
    "audit",
    "routing",
    "webhooks",
    "alerts",
]
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/plain; charset=utf-8",
}
# No inline script or style, nothing from another origin, never framed. Data
# URLs for images only (none are scripts). The accept page carries an
# invitation token in its URL, hence no Referer at all.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    # Files change with each release and are small: always revalidate.
    "cache-control": "no-cache",
}


def routes(disabled_filters: list[str]) -> list[dict[str, Any]]:
    """The shell on /portal and every page path, then each file under /portal/assets/.
    `disabled_filters` are HTTP filters that must not see these requests (the
    transcoder would refuse a path that is no gRPC method)."""
    shell = PORTAL_DIR / "index.html"
    found = [
        _file_route({"path": path}, shell, disabled_filters) for path in ("/portal", "/portal/")
    ]
    # path_separated_prefix: /portal/notifications and /portal/notifications/ntf_…
    found += [
        _file_route({"path_separated_prefix": f"/portal/{name}"}, shell, disabled_filters)
        for name in PAGES
    ]
    found.append(_file_route({"path": "/portal/guide"}, GUIDE, disabled_filters))
    for path in sorted(PORTAL_DIR.rglob("*")):
        if path.is_file() and path != shell:
            match = {"path": ASSETS_PREFIX + path.relative_to(PORTAL_DIR).as_posix()}
            found.append(_file_route(match, path, disabled_filters))
    return found


def _file_route(match: dict[str, Any], path: Path, disabled_filters: list[str]) -> dict[str, Any]:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path} is over {MAX_FILE_BYTES} bytes, Envoy's direct response limit")
    headers = {**SECURITY_HEADERS, "content-type": CONTENT_TYPES[path.suffix]}
    return {
        "match": {**match, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
        "direct_response": {"status": 200, "body": {"filename": str(path)}},
        "response_headers_to_add": [
            {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for k, v in headers.items()
        ],
        "typed_per_filter_config": {
            name: {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                   "disabled": True}
            for name in disabled_filters
        },
    }  # fmt: skip
