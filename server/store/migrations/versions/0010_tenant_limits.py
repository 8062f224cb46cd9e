"""Per-tenant limits: operators' overrides and suspension (tenant_limits),
shared token buckets (rate_buckets) and sends per UTC day (daily_usage).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_limits",
        sa.Column("tenant_id", sa.Text, sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("rates", JSONB, nullable=False, server_default="{}"),
        sa.Column("daily_quota", sa.Integer),
        sa.Column("suspended_at", sa.DateTime(timezone=True)),
        sa.Column("suspended_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("tokens", sa.Double, nullable=False),
        sa.Column("refilled_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "daily_usage",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("sent", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("daily_usage")
    op.drop_table("rate_buckets")
    op.drop_table("tenant_limits")
