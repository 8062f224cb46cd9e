"""Tenant alert rules (alert_rules), their firings and resolutions
(alert_events), and per-minute outcome counters that rules read instead of
scanning deliveries (alert_counters).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("template_id", sa.Text, nullable=False),
        sa.Column("threshold_percent", sa.Double, nullable=False),
        sa.Column("max_failures", sa.Integer, nullable=False),
        sa.Column("window_minutes", sa.Integer, nullable=False),
        sa.Column("min_sends", sa.Integer, nullable=False),
        sa.Column("notify", JSONB, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_evaluated_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_alert_rules_tenant_created", "tenant_id", "created_at", "id"),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("measured", JSONB, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("notification_id", sa.Text, nullable=False),
        sa.Index("ix_alert_events_rule", "rule_id", "id"),
        sa.Index("ix_alert_events_notification", "notification_id"),
    )
    op.create_table(
        "alert_counters",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("template_id", sa.Text, primary_key=True),
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("delivered", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
        sa.Column("handed_over", sa.BigInteger, nullable=False),
        sa.Column("receipts", sa.BigInteger, nullable=False),
        sa.Index("ix_alert_counters_template", "tenant_id", "template_id", "minute"),
    )


def downgrade() -> None:
    op.drop_table("alert_counters")
    op.drop_table("alert_events")
    op.drop_table("alert_rules")
