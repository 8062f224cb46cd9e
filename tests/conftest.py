"""Session fixtures: one real platform (PostgreSQL, Temporal, sandbox, API
server, worker, Envoy) on free ports, started once and stopped by PID."""

import http.cookiejar
import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from runner.stack import Ports, Stack, start_embedded_postgres

# Short retries and receipt windows, so that failure paths finish in seconds.
TEST_SETTINGS = {
    "CLARION_RETRY_INITIAL_SECONDS": "0.2",
    "CLARION_RETRY_MAX_SECONDS": "1",
    "CLARION_DELIVERY_MAX_ATTEMPTS": "4",
    "CLARION_RECEIPT_TIMEOUT_SECONDS": "4",
    "CLARION_PROVIDER_TIMEOUT_SECONDS": "10",
    "CLARION_API_KEY_CACHE_SECONDS": "2",
    "CLARION_ROLLOUT_MIN_SENDS": "6",
    "CLARION_ROLLOUT_FAILURE_MARGIN": "0.2",
    "CLARION_ALERT_CHECK_SECONDS": "1",
    # One provider per channel, so that trigger tests count calls at one
    # provider; tests/e2e/test_failover.py starts stacks with both.
    "CLARION_SMS_PROVIDERS": "twilio",
    "CLARION_EMAIL_PROVIDERS": "smtp",
}


@pytest.fixture(scope="session")
def database_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """DATABASE_URL's server (CI's PostgreSQL 15), or an embedded one."""
    return os.environ.get("DATABASE_URL") or start_embedded_postgres(
        tmp_path_factory.mktemp("postgres")
    )


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on that server, dropped afterwards."""
    name = f"clarion_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(server_url).set(drivername="postgresql")
    admin_dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield admin.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(database_server: str) -> Iterator[str]:
    """The session platform's database."""
    with fresh_database(database_server) as url:
        yield url


@pytest.fixture(scope="session")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("clarion")
    platform = Stack(
        data_dir=data_dir,
        ports=Ports.free(),
        overrides=TEST_SETTINGS,
        database_url=database_url,
        headless=True,
    )
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[httpx.Client]:
    """JSON over HTTP to Envoy, as a tenant's backend speaks it: with its
    API key, keeping no cookies (signup's session cookie would otherwise
    authenticate the next test's keyless requests)."""
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        yield client


@pytest.fixture(scope="session")
def webhooks(stack: Stack) -> Iterator[httpx.Client]:
    """HTTP to the webhook Envoy, where providers post their callbacks."""
    with httpx.Client(base_url=stack.webhook_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def sandbox(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.sandbox_url, timeout=30) as client:
        yield client


class Tenant:
    def __init__(self, api: httpx.Client, tenant_id: str, api_key: str) -> None:
        self.api = api
        self.tenant_id = tenant_id
        self.api_key = api_key

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.api.get(path, headers=self.headers, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, json: object) -> httpx.Response:
        return self.api.post(path, headers=self.headers, json=json)

    def delete(self, path: str) -> httpx.Response:
        return self.api.delete(path, headers=self.headers)


def signup(api: httpx.Client) -> Tenant:
    email = f"ops-{secrets.token_hex(6)}@acme.example"
    response = api.post(
        "/portal/signup", json={"name": "Acme", "email": email, "password": "correct horse 42"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return Tenant(api, body["tenant_id"], body["api_key"])


@pytest.fixture
def tenant(api: httpx.Client) -> Tenant:
    """A new tenant for each test, so tests never see each other's data."""
    return signup(api)
