"""All configuration, read from environment variables in one place."""

from datetime import timedelta
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.policies import IdempotencyPolicy, RolloutPolicy
from contracts.workflows import DeliveryPolicy
from providers.settings import ProviderSettings
from server.domain.limits import LimitName, RateLimit, TenantLimits
from server.store.db import DatabaseLimits


class Settings(ProviderSettings, BaseSettings):
    """Settings for every Clarion process. Variables are prefixed `CLARION_`,
    except `DATABASE_URL`, which follows the common convention. Each
    provider's own settings live in its folder (providers/*/settings.py)."""

    model_config = SettingsConfigDict(env_prefix="CLARION_", extra="ignore")

    # Where embedded PostgreSQL, Temporal's SQLite file and Envoy's config live.
    data_dir: Path = Path(".data")
    # A PostgreSQL URL (postgresql://...). Unset: `make run` starts an embedded server.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CLARION_DATABASE_URL")
    )

    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    # The callbacks process (`python -m server callbacks`) takes provider
    # webhooks over HTTP on this port, on grpc_host; Envoy proxies /callbacks/ to it.
    callbacks_port: int = 50052
    # `make run` starts a second gRPC API server on this port; Envoy sends
    # bulk sends and uploads to it.
    bulk_port: int = 50053
    # How often each API server starts workflows stored but not started
    # (Temporal was unreachable, or a server stopped mid-send).
    dispatch_sweep_seconds: float = 5.0
    # A single send still queued, or a bulk unfinished, this long after its
    # workflow was started (or last checked) is started again by its workflow
    # id: a hard-killed Temporal dev server can lose its last writes.
    workflow_recheck_seconds: float = 60.0
    # API servers give up on a Temporal call after this; the outbox retries.
    temporal_rpc_timeout_seconds: float = 3.0
    # API servers wait on PostgreSQL at most this long, then answer 503
    # DATABASE_UNAVAILABLE with Retry-After: to connect, for a pooled
    # connection, and for a whole transaction (also its statement_timeout).
    database_connect_timeout_seconds: int = 2
    database_pool_timeout_seconds: float = 2.0
    database_transaction_timeout_seconds: float = 3.0
    envoy_port: int = 8080
    envoy_admin_port: int = 9901
    # The second Envoy, for provider webhooks only.
    webhook_port: int = 8081
    webhook_admin_port: int = 9902
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_namespace: str = "default"
    task_queue: str = "clarion-notifications"
    # The provider sandbox that `make run` starts.
    sandbox_http_port: int = 4010
    sandbox_smtp_port: int = 2525
    run_sandbox: bool = True
    # Where tenants open the portal, for links in invitation emails; empty
    # means this Envoy on 127.0.0.1.
    portal_base_url: str = ""

    # Each process serves Prometheus metrics at http://127.0.0.1:PORT/metrics
    # (0 = off). The bulk API server is `python -m server` with
    # CLARION_API_METRICS_PORT set to bulk_metrics_port (`make run` does so).
    api_metrics_port: int = 9464
    bulk_metrics_port: int = 9465
    callbacks_metrics_port: int = 9466
    worker_metrics_port: int = 9467
    # The Temporal SDK's own metrics of the worker (temporal_*).
    worker_sdk_metrics_port: int = 9468
    webhooks_metrics_port: int = 9469
    # Label metrics by tenant: "" (none), "all", or comma-separated tenant
    # ids. Every labelled tenant multiplies the time series, so keep it bounded.
    metrics_tenant_labels: str = ""
    # OTLP/gRPC collector for traces (e.g. http://127.0.0.1:4317); unset = no
    # tracing at all. OTEL_EXPORTER_OTLP_ENDPOINT is read too.
    otlp_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices("CLARION_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )

    # Delivery retries: exponential backoff with jitter, within both limits.
    delivery_max_attempts: int = 6
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    delivery_deadline_seconds: float = 3600.0
    provider_timeout_seconds: float = 15.0
    # How long a sent delivery waits for the provider's receipt before the
    # wait is noted in its history (the delivery then stays `sent`). The API
    # servers sweep for such deliveries every quarter of it, at most a minute.
    receipt_timeout_seconds: float = 3600.0

    # A template rollout stops by itself when the new version's failure rate
    # exceeds the active one's by this margin, once it has this many outcomes.
    rollout_failure_margin: float = 0.2
    rollout_min_sends: int = 20
    # How often each alert rule is checked (its workflow's timer); applies
    # to rules created afterwards.
    alert_check_seconds: float = Field(default=30.0, ge=1.0)

    # Idempotency keys are remembered this long (at least 24 hours is the promise).
    idempotency_retention_hours: float = 24.0

    # Revoked API keys stop working within this many seconds (and a
    # tenant's suspension or new limits take effect within as long).
    api_key_cache_seconds: float = 2.0

    # Per-tenant token buckets (requests, or rows for bulks, per second and
    # the burst on top); the admin CLI sets per-tenant overrides.
    rate_send_per_second: float = 200.0
    rate_send_burst: int = 400
    rate_bulk_rows_per_second: float = 10_000.0
    rate_bulk_rows_burst: int = 20_000
    rate_writes_per_second: float = 20.0
    rate_writes_burst: int = 100
    rate_reads_per_second: float = 200.0
    rate_reads_burst: int = 400
    # Notifications per UTC day for tenants without their own quota; 0 = none.
    # Unset: none while the sandbox is the provider, else 1,000 (trial mode).
    default_daily_quota: int | None = Field(default=None, ge=0)

    # Tenant status webhooks (python -m server webhooks). Development only:
    # allow http and endpoints on loopback or private addresses.
    allow_private_webhooks: bool = False
    # Seconds before each attempt at an event (the first is its delay after
    # the event); its length is the number of attempts. Standard Webhooks' schedule.
    webhook_retry_schedule: list[float] = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    # One attempt's whole HTTP exchange, connecting included.
    webhook_timeout_seconds: float = 10.0
    # Requests in flight per endpoint, and in all, per webhooks process. In
    # all is above what one tenant's 20 endpoints can hold (80), so a tenant
    # whose endpoints all hang still leaves slots for the others.
    webhook_endpoint_concurrency: int = 4
    webhook_concurrency: int = 128
    # How often the webhooks process looks for due events when idle.
    webhook_poll_seconds: float = 0.25
    # An endpoint is disabled (with its reason) once this many events in a
    # row used up every attempt, or after failing for this many days.
    webhook_disable_after_failed_events: int = 5
    webhook_disable_after_days: float = 5.0

    def database_limits(self) -> DatabaseLimits:
        return DatabaseLimits(
            connect_seconds=self.database_connect_timeout_seconds,
            pool_seconds=self.database_pool_timeout_seconds,
            transaction_seconds=self.database_transaction_timeout_seconds,
        )

    def require_real_provider_secrets(self) -> None:
        """Every process calls this at start: with the sandbox off, a provider
        secret left at its sandbox default would let anyone sign callbacks or
        use our provider accounts, so the process refuses to start."""
        if self.run_sandbox:
            return
        defaults = [f"CLARION_{name.upper()}" for name in self.sandbox_secrets_left()]
        if defaults:
            raise SystemExit(
                "clarion: CLARION_RUN_SANDBOX is false, but these provider secrets still "
                f"have their public sandbox defaults: {', '.join(defaults)}. Set each to the "
                "value from the provider's console, or set CLARION_RUN_SANDBOX=true "
                "to develop against the sandbox."
            )

    def portal_url(self) -> str:
        return self.portal_base_url.rstrip("/") or f"http://127.0.0.1:{self.envoy_port}"

    def sandbox_api_url(self) -> str | None:
        """The sandbox's inspection API, or None when real providers are configured."""
        return f"http://127.0.0.1:{self.sandbox_http_port}" if self.run_sandbox else None

    def default_limits(self) -> TenantLimits:
        quota = self.default_daily_quota
        if quota is None:
            quota = 0 if self.run_sandbox else 1_000
        return TenantLimits(
            rates={
                name: RateLimit(
                    getattr(self, f"rate_{name.value}_per_second"),
                    getattr(self, f"rate_{name.value}_burst"),
                )
                for name in LimitName
            },
            daily_quota=quota,
        )

    def idempotency_policy(self) -> IdempotencyPolicy:
        return IdempotencyPolicy(retention=timedelta(hours=self.idempotency_retention_hours))

    def rollout_policy(self) -> RolloutPolicy:
        return RolloutPolicy(
            failure_margin=self.rollout_failure_margin, min_sends=self.rollout_min_sends
        )

    def delivery_policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            max_attempts=self.delivery_max_attempts,
            retry_initial_seconds=self.retry_initial_seconds,
            retry_max_seconds=self.retry_max_seconds,
            deadline_seconds=self.delivery_deadline_seconds,
            provider_timeout_seconds=self.provider_timeout_seconds,
            receipt_timeout_seconds=self.receipt_timeout_seconds,
        )

    @property
    def receipt_sweep_seconds(self) -> float:
        return min(60.0, max(0.5, self.receipt_timeout_seconds / 4))

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"
