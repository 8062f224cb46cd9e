"""Check HTTP requests that our provider adapters send against the providers'
official OpenAPI descriptions (trimmed copies in ``tests/contract/specs/``).

Usage::

    from tests.contract.openapi_check import TWILIO_SPEC, assert_request_matches

    assert_request_matches(TWILIO_SPEC, request)  # request: httpx.Request

or, to check every request a client sends (e.g. against the local sandbox)::

    client = httpx.Client(event_hooks={"request": [request_checker(TWILIO_SPEC)]})

The sandbox listens on ``http://127.0.0.1:PORT`` while the specs name the real
hosts (``https://api.twilio.com``, ``https://graph.facebook.com``), so only the
request's path is matched: the request is re-rooted on the spec's first server
before openapi-core looks it up. Method, path (and path parameters), query,
headers (including ``Authorization`` against the spec's security scheme),
content type and body (form-encoded or JSON) are validated by openapi-core.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from jsonschema.exceptions import ValidationError, best_match
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from providers.http import SentRequest

SPECS_DIR = Path(__file__).resolve().parent / "specs"
TWILIO_SPEC = SPECS_DIR / "twilio_api_v2010.yaml"
WHATSAPP_SPEC = SPECS_DIR / "whatsapp_business_messaging.yaml"


class HttpxOpenAPIRequest:
    """An ``httpx.Request`` seen through openapi-core's ``Request`` protocol,
    with its URL re-rooted on ``server_url`` (path and query kept)."""

    def __init__(self, request: httpx.Request, server_url: str, path: str) -> None:
        self.request = request
        server = urlsplit(server_url)
        self._host_url = f"{server.scheme}://{server.netloc}"
        self._path = server.path.rstrip("/") + path
        cookie = SimpleCookie()
        for value in request.headers.get_list("cookie"):
            cookie.load(value)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.multi_items())),
            cookie=ImmutableMultiDict([(k, m.value) for k, m in cookie.items()]),
        )

    @property
    def host_url(self) -> str:
        return self._host_url

    @property
    def path(self) -> str:
        return self._path

    @property
    def method(self) -> str:
        return self.request.method.lower()

    @property
    def body(self) -> bytes | None:
        content = self.request.read()
        return content or None

    @property
    def content_type(self) -> str:
        return str(self.request.headers.get("content-type", "")).lower()


@functools.cache
def _load(spec_path: Path) -> tuple[OpenAPI, str]:
    """Parse and validate a spec once; return it with its first server URL."""
    openapi = OpenAPI.from_path(spec_path)
    first_server = openapi.spec / "servers" / 0
    server_url = (first_server / "url").read_str() if first_server.exists() else "/"
    return openapi, server_url


def load_spec(spec_path: Path) -> OpenAPI:
    """The (cached) openapi-core application for a spec file."""
    return _load(Path(spec_path).resolve())[0]


def _relative_path(request: httpx.Request, path_prefix: str) -> str:
    path = request.url.path
    prefix = path_prefix.rstrip("/")
    if prefix:
        if path != prefix and not path.startswith(prefix + "/"):
            raise AssertionError(
                f"{request.method} {request.url}: path does not start with {path_prefix!r}"
            )
        path = path[len(prefix) :] or "/"
    return path


def _schema_error_lines(error: ValidationError, indent: str) -> list[str]:
    location = error.json_path if error.path else "$"
    lines = [f"{indent}- at {location}: {error.message}"]
    if error.context:
        cause = best_match(error.context)
        lines.append(f"{indent}  closest match fails because:")
        lines.extend(_schema_error_lines(cause, indent + "    "))
    return lines


def _describe(exc: BaseException) -> list[str]:
    """Lines describing one openapi-core error: the exception, the causes that
    add information, and the individual JSON-schema errors."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    indent = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        if not lines or text not in lines[-1]:
            lines.append(f"{indent}{type(current).__name__}: {text}")
            indent += "  "
        schema_errors: Iterable[ValidationError] = getattr(current, "schema_errors", ()) or ()
        for schema_error in schema_errors:
            lines.extend(_schema_error_lines(schema_error, indent))
        current = current.__cause__ or current.__context__
    return lines


def request_errors(spec_path: Path, request: httpx.Request, *, path_prefix: str = "") -> list[str]:
    """Problems openapi-core finds in ``request`` against the spec (empty list
    if it conforms), each formatted as one or more lines."""
    openapi, server_url = _load(Path(spec_path).resolve())
    oa_request = HttpxOpenAPIRequest(request, server_url, _relative_path(request, path_prefix))
    problems: list[str] = []
    for error in openapi.iter_request_errors(oa_request):
        problems.append("\n".join(_describe(error)))
    return problems


def assert_request_matches(
    spec_path: Path, request: httpx.Request, *, path_prefix: str = ""
) -> None:
    """Raise ``AssertionError`` listing every spec violation in ``request``.

    ``path_prefix``: a leading path segment of the sandbox URL that is not part
    of the provider's API (e.g. ``"/twilio"`` for ``http://127.0.0.1:PORT/twilio/2010-04-01/...``).
    """
    problems = request_errors(spec_path, request, path_prefix=path_prefix)
    if problems:
        spec_name = Path(spec_path).name
        details = "\n".join(problems)
        raise AssertionError(
            f"{request.method} {request.url} does not match {spec_name}:\n{details}"
        )


def request_checker(spec_path: Path, *, path_prefix: str = "") -> Callable[[httpx.Request], None]:
    """An ``httpx.Client`` request event hook asserting each request matches the spec."""

    def hook(request: httpx.Request) -> None:
        assert_request_matches(spec_path, request, path_prefix=path_prefix)

    return hook


def async_request_checker(
    spec_path: Path, *, path_prefix: str = ""
) -> Callable[[httpx.Request], Awaitable[None]]:
    """The same hook for ``httpx.AsyncClient`` (its event hooks must be coroutines)."""

    async def hook(request: httpx.Request) -> None:
        assert_request_matches(spec_path, request, path_prefix=path_prefix)

    return hook


def sent_request_checker(
    spec_path: Path, *, path_prefix: str = ""
) -> Callable[[SentRequest], Awaitable[None]]:
    """The same check as a request hook of the provider adapters' HttpClient."""

    async def hook(sent: SentRequest) -> None:
        request = httpx.Request(
            sent.method, sent.url, headers=dict(sent.headers), content=sent.body
        )
        assert_request_matches(spec_path, request, path_prefix=path_prefix)

    return hook
