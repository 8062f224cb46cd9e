"""Idempotency keys in their own table (per tenant and operation, with
expiry), bulk sends, and bulk row errors.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("operation", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        # "in_progress" until the first request is answered, then "completed".
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("resource_id", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])
    # Keys now live in idempotency_keys, where they can expire and be reused.
    op.drop_constraint("uq_notifications_idempotency", "notifications", type_="unique")
    op.drop_column("notifications", "request_hash")
    op.create_table(
        "bulks",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("channels", ARRAY(sa.Text), nullable=False),
        sa.Column("template_id", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
    )
    op.create_index("ix_bulks_tenant", "bulks", ["tenant_id", "created_at"])
    op.create_table(
        "bulk_errors",
        sa.Column("bulk_id", sa.Text, sa.ForeignKey("bulks.id"), primary_key=True),
        sa.Column("row_index", sa.Integer, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.add_column("notifications", sa.Column("bulk_id", sa.Text))
    op.add_column("notifications", sa.Column("row_index", sa.Integer))
    op.create_index(
        "ix_notifications_bulk_row",
        "notifications",
        ["bulk_id", "row_index"],
        postgresql_where=sa.text("bulk_id IS NOT NULL"),
    )
    op.create_index("ix_deliveries_notification", "deliveries", ["notification_id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_notification", "deliveries")
    op.drop_index("ix_notifications_bulk_row", "notifications")
    op.drop_column("notifications", "row_index")
    op.drop_column("notifications", "bulk_id")
    op.drop_table("bulk_errors")
    op.drop_index("ix_bulks_tenant", "bulks")
    op.drop_table("bulks")
    op.add_column(
        "notifications",
        sa.Column("request_hash", sa.Text, nullable=False, server_default=""),
    )
    op.create_unique_constraint(
        "uq_notifications_idempotency", "notifications", ["tenant_id", "idempotency_key"]
    )
    op.drop_index("ix_idempotency_keys_created", "idempotency_keys")
    op.drop_table("idempotency_keys")
