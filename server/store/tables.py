"""Table definitions. Migrations live in server/store/migrations; every
tenant-owned table carries tenant_id and every query filters by it."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

tenants = Table(
    "tenants",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    # Stored lower-cased, so that one email has one account.
    Column("email", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# People who log in to the portal; the signup email is the tenant's first owner.
users = Table(
    "users",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, ForeignKey("tenants.id"), nullable=False, index=True),
    # Stored lower-cased; one email has one login across all tenants.
    Column("email", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    # owner | developer | viewer (server/domain/roles.py)
    Column("role", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Portal sessions: the cookie holds a 256-bit token, stored here only hashed.
sessions = Table(
    "sessions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("user_id", Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("tenant_id", Text, nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Updated at most once a minute; idle sessions expire.
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    # The absolute end, however active the session is.
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# Pending invitations to a tenant's team (one per email and tenant).
invitations = Table(
    "invitations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, ForeignKey("tenants.id"), nullable=False),
    Column("email", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "email"),
)

# Who changed what in a tenant: a user (actor_email) or an API key (its prefix).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor_email", Text, nullable=False),
    Column("actor_api_key", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Index("audit_log_by_tenant", "tenant_id", "id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    # SHA-256 of the whole key: keys are 256-bit random, so a slow hash adds nothing.
    Column("key_hash", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

# An operator's settings for one tenant (the admin CLI); no row, or a NULL,
# means the deployment's defaults.
tenant_limits = Table(
    "tenant_limits",
    metadata,
    Column("tenant_id", Text, ForeignKey("tenants.id"), primary_key=True),
    # {"send": {"per_second": 50, "burst": 100}, ...}: only the overridden limits.
    Column("rates", JSONB, nullable=False, server_default="{}"),
    # Notifications per UTC day; 0 = none; NULL = the default.
    Column("daily_quota", Integer),
    Column("suspended_at", DateTime(timezone=True)),
    Column("suspended_reason", Text, nullable=False, server_default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One token bucket per tenant and limit, refilled lazily by the UPDATE that
# takes from it, so every API server shares it.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("tokens", Double, nullable=False),
    Column("refilled_at", DateTime(timezone=True), nullable=False),
)

# Notifications accepted per tenant and UTC day: channel "" counts
# notifications (the quota), each channel its deliveries.
daily_usage = Table(
    "daily_usage",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("sent", BigInteger, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, ForeignKey("tenants.id"), nullable=False),
    Column("status", Text, nullable=False),
    Column("channels", ARRAY(Text), nullable=False),
    Column("recipient", JSONB, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("template_id", Text, nullable=False),
    Column("template_version", Integer),
    Column("data", JSONB, nullable=False),
    # As the tenant gave it; idempotency itself lives in idempotency_keys.
    Column("idempotency_key", Text),
    Column("bulk_id", Text),
    # 0-based position in the bulk request or upload.
    Column("row_index", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # When recovery last made sure this queued single send's workflow exists.
    Column("workflow_checked_at", DateTime(timezone=True)),
    # A routed notification's policy (domain.routing.RoutingPolicy.as_json,
    # plus "source"); SQL NULL when its channels are sent all at once (JSONB
    # alone stores None as JSON null, which "routing IS NOT NULL" counts as
    # routed).
    Column("routing", JSONB(none_as_null=True)),
    Index("ix_notifications_tenant_created", "tenant_id", "created_at", "id"),
)

# The steps of a routed notification, one per channel in order. A step's
# delivery is created only when the step is tried.
routing_steps = Table(
    "routing_steps",
    metadata,
    Column("notification_id", Text, ForeignKey("notifications.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("address", Text, nullable=False),
    # What the step's delivery will send, rendered at accept time.
    Column("content", JSONB, nullable=False),
    Column("delivery_id", Text),
    # domain.routing.StepOutcome
    Column("outcome", Text, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)

# A tenant's default routing, for high-priority sends without their own.
routing_defaults = Table(
    "routing_defaults",
    metadata,
    Column("tenant_id", Text, ForeignKey("tenants.id"), primary_key=True),
    Column("policy", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Text, primary_key=True),
    Column("notification_id", Text, ForeignKey("notifications.id"), nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("channel", Text, nullable=False),
    # Position in the request's channel list, to answer in request order.
    Column("position", Integer, nullable=False),
    Column("address", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("reason", Text, nullable=False, server_default=""),
    Column("provider_message_id", Text),
    # When the provider call in progress started; cleared with its outcome.
    # Still set on a retry, it marks an attempt whose outcome is unknown.
    Column("attempt_started_at", DateTime(timezone=True)),
    # The provider that carried the latest attempt (sms: twilio or vonage):
    # an unknown outcome is reconciled there and nowhere else.
    Column("attempt_provider", Text),
    # What to send: rendered subject/body/html_body, or WhatsApp template parameters.
    Column("content", JSONB, nullable=False, server_default="{}"),
    # Sent, and noted for having had no receipt within the receipt timeout
    # (see notifications.note_missing_receipts).
    Column("receipt_overdue", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("notification_id", "channel", name="uq_deliveries_channel"),
    Index("ix_deliveries_tenant_address", "tenant_id", "address"),
    Index("ix_deliveries_tenant_channel", "tenant_id", "channel"),
    Index("ix_deliveries_provider_message_id", "channel", "provider_message_id"),
    # Only the sent deliveries still waiting for a receipt: what the sweep scans.
    Index(
        "ix_deliveries_awaiting_receipt",
        "updated_at",
        postgresql_where=text("status = 'sent' AND NOT receipt_overdue"),
    ),
)

# Every status change and provider attempt, oldest first: the delivery's history.
delivery_events = Table(
    "delivery_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("delivery_id", Text, ForeignKey("deliveries.id"), nullable=False, index=True),
    Column("kind", Text, nullable=False),  # "status" or "attempt"
    Column("status", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
)

# The transactional outbox of workflow starts, stored in the transaction of
# what they start: a notification, a bulk or a template approval whose
# workflow may not have started yet (see services/dispatch.py).
pending_dispatches = Table(
    "pending_dispatches",
    metadata,
    # An OutboxKind; `ref` is the notification id, bulk id or WhatsApp name.
    Column("kind", Text, primary_key=True),
    Column("ref", Text, primary_key=True),
    # The workflow input, where the rows it refers to do not hold it.
    Column("payload", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    # A sweeper is starting it until then; others leave it alone.
    Column("leased_until", DateTime(timezone=True)),
)

# One-use provider webhook tokens (Mailgun's signature token), kept while a
# signature with them would still be fresh: a second use is a replay.
webhook_tokens = Table(
    "webhook_tokens",
    metadata,
    Column("provider", Text, primary_key=True),
    Column("token", Text, primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("webhook_tokens_expires_at", "expires_at"),
)

templates = Table(
    "templates",
    metadata,
    Column("tenant_id", Text, ForeignKey("tenants.id"), primary_key=True),
    Column("template_id", Text, primary_key=True),
    Column("description", Text, nullable=False),
    Column("active_version", Integer, nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("rollout_version", Integer),
    Column("rollout_percent", Integer, nullable=False, server_default="0"),
    # "none", "running" or "stopped" (by the failure guard).
    Column("rollout_state", Text, nullable=False, server_default="none"),
    Column("rollout_stopped_reason", Text, nullable=False, server_default=""),
    Column("rollout_started_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("archived_at", DateTime(timezone=True)),
)

template_versions = Table(
    "template_versions",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("template_id", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    # {"sms": {"body": ...}, "email": {"subject": ..., ...}, ...}
    Column("channels", JSONB, nullable=False),
    Column("variables", ARRAY(Text), nullable=False),
    # The name the WhatsApp content was submitted to Meta under, and Meta's verdict.
    Column("whatsapp_name", Text, unique=True),
    Column("whatsapp_status", Text),
    Column("whatsapp_reason", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per (tenant, operation, key): the first request's fingerprint, and
# what it created once answered.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("operation", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    # What is known when the key is claimed; for a streamed upload, its parameters.
    Column("request_hash", Text, nullable=False),
    # A streamed request's parameters and whole body, recorded when it completes.
    Column("final_hash", Text),
    Column("state", Text, nullable=False),
    Column("resource_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

bulks = Table(
    "bulks",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, ForeignKey("tenants.id"), nullable=False),
    Column("channels", ARRAY(Text), nullable=False),
    Column("template_id", Text, nullable=False),
    # "json" or "csv".
    Column("source", Text, nullable=False),
    Column("total", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    # When recovery last made sure this unfinished bulk's workflow exists.
    Column("workflow_checked_at", DateTime(timezone=True)),
    Index("ix_bulks_tenant_created", "tenant_id", "created_at", "id"),
)

bulk_errors = Table(
    "bulk_errors",
    metadata,
    Column("bulk_id", Text, ForeignKey("bulks.id"), primary_key=True),
    Column("row_index", Integer, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("message", Text, nullable=False),
)

# Tenants' status webhook endpoints (not provider callbacks: see webhook_tokens).
tenant_webhook_endpoints = Table(
    "tenant_webhook_endpoints",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, ForeignKey("tenants.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("event_types", ARRAY(Text), nullable=False),
    # whsec_… secrets sign every request, so they are kept, not hashed.
    Column("secret", Text, nullable=False),
    # The secret before the last rotation, which also signs until it expires.
    Column("previous_secret", Text),
    Column("previous_secret_expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
    Column("disabled_reason", Text, nullable=False, server_default=""),
    # Events in a row that used up every attempt, and since when attempts fail.
    Column("failed_events", Integer, nullable=False, server_default="0"),
    Column("failing_since", DateTime(timezone=True)),
)

# One event for one endpoint: the transactional outbox of webhooks, written
# in the transaction of the change it reports. `id` orders them.
tenant_webhook_messages = Table(
    "tenant_webhook_messages",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "endpoint_id",
        Text,
        ForeignKey("tenant_webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("tenant_id", Text, nullable=False),
    # webhook-id: the same for every endpoint, attempt and replay of the event.
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    # Events with the same key (a notification id) go out one after another.
    Column("ordering_key", Text),
    # The exact JSON body, signed anew at each attempt.
    Column("body", Text, nullable=False),
    # "pending", "delivered" or "failed" (every attempt used up).
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    # A webhooks process is sending it until then; others leave it alone.
    Column("leased_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_twm_endpoint_event", "endpoint_id", "event_id"),
)

# Every attempt at sending a message, kept for the tenant to see.
tenant_webhook_attempts = Table(
    "tenant_webhook_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "message_id",
        BigInteger,
        ForeignKey("tenant_webhook_messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("endpoint_id", Text, nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
    # The endpoint's HTTP status, or NULL with `error` when none came back.
    Column("http_status", Integer),
    Column("error", Text, nullable=False, server_default=""),
    Column("duration_ms", Integer, nullable=False),
    Column("next_retry_at", DateTime(timezone=True)),
    Index("ix_twa_endpoint", "endpoint_id", "id"),
)

# A tenant's alert rules (domain.alerts.AlertRule), with where each stands.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, ForeignKey("tenants.id"), nullable=False),
    Column("name", Text, nullable=False),
    # domain.alerts.RuleKind
    Column("kind", Text, nullable=False),
    # "" = any channel / any template.
    Column("channel", Text, nullable=False),
    Column("template_id", Text, nullable=False),
    Column("threshold_percent", Double, nullable=False),
    Column("max_failures", Integer, nullable=False),
    Column("window_minutes", Integer, nullable=False),
    Column("min_sends", Integer, nullable=False),
    # {"channel": "email", "to": "oncall@example.com"}
    Column("notify", JSONB, nullable=False),
    # domain.alerts.RuleState
    Column("state", Text, nullable=False),
    Column("state_changed_at", DateTime(timezone=True), nullable=False),
    Column("last_evaluated_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # A disabled rule is not checked, and keeps its state.
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Index("ix_alert_rules_tenant_created", "tenant_id", "created_at", "id"),
)

# Each firing and resolution of a rule, and the notification that told the
# tenant. Kept when the rule is deleted: deliveries of those notifications
# are left out of alert_counters, so an alert never counts toward an alert.
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("rule_id", Text, nullable=False),
    Column("tenant_id", Text, nullable=False),
    # "fired" or "resolved"
    Column("kind", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    # domain.alerts.Measurement as JSON.
    Column("measured", JSONB, nullable=False),
    Column("summary", Text, nullable=False),
    Column("notification_id", Text, nullable=False),
    Index("ix_alert_events_rule", "rule_id", "id"),
    Index("ix_alert_events_notification", "notification_id"),
)

# Final outcomes, hand-overs and receipts per tenant, channel, template and
# minute, added to in the transaction of each status change (one upsert per
# key and batch), so a rule reads its window's buckets and never scans
# deliveries.
alert_counters = Table(
    "alert_counters",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("template_id", Text, primary_key=True),
    Column("minute", DateTime(timezone=True), primary_key=True),
    Column("delivered", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Column("handed_over", BigInteger, nullable=False),
    Column("receipts", BigInteger, nullable=False),
    Index("ix_alert_counters_template", "tenant_id", "template_id", "minute"),
    # A rule on a channel (any template) reads only its window's buckets.
    Index("ix_alert_counters_channel", "tenant_id", "channel", "minute"),
    # For the hourly purge of buckets past every window.
    Index("ix_alert_counters_minute", "minute"),
)
