"""The outbox carries bulk sends and template approvals as well as
notifications: each row names the kind of workflow start and its reference,
and a sweeper leases rows (`leased_until`) before calling Temporal.
`workflow_checked_at` records when recovery last made sure that a queued
single send's or an unfinished bulk's workflow exists (Temporal can lose its
last writes on a hard kill); a bulk's is first set when it is released for
sending. The partial indexes find those candidates.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_constraint(
        "pending_dispatches_notification_id_fkey", "pending_dispatches", type_="foreignkey"
    )
    op.drop_constraint("pending_dispatches_pkey", "pending_dispatches", type_="primary")
    op.alter_column("pending_dispatches", "notification_id", new_column_name="ref")
    op.add_column(
        "pending_dispatches",
        sa.Column("kind", sa.Text, nullable=False, server_default="notification"),
    )
    op.alter_column("pending_dispatches", "kind", server_default=None)
    op.add_column("pending_dispatches", sa.Column("payload", JSONB))
    op.add_column("pending_dispatches", sa.Column("leased_until", TZ))
    op.create_primary_key("pending_dispatches_pkey", "pending_dispatches", ["kind", "ref"])

    op.add_column("notifications", sa.Column("workflow_checked_at", TZ))
    op.create_index(
        "ix_notifications_queued_single",
        "notifications",
        [sa.text("coalesce(workflow_checked_at, created_at)")],
        postgresql_where=sa.text("status = 'queued' AND bulk_id IS NULL"),
    )
    op.add_column("bulks", sa.Column("workflow_checked_at", TZ))
    op.create_index(
        "ix_bulks_unfinished",
        "bulks",
        ["workflow_checked_at"],
        postgresql_where=sa.text("finished_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_bulks_unfinished", "bulks")
    op.drop_column("bulks", "workflow_checked_at")
    op.drop_index("ix_notifications_queued_single", "notifications")
    op.drop_column("notifications", "workflow_checked_at")
    op.execute("DELETE FROM pending_dispatches WHERE kind <> 'notification'")
    op.drop_constraint("pending_dispatches_pkey", "pending_dispatches", type_="primary")
    op.drop_column("pending_dispatches", "leased_until")
    op.drop_column("pending_dispatches", "payload")
    op.drop_column("pending_dispatches", "kind")
    op.alter_column("pending_dispatches", "ref", new_column_name="notification_id")
    op.create_primary_key("pending_dispatches_pkey", "pending_dispatches", ["notification_id"])
    op.create_foreign_key(
        "pending_dispatches_notification_id_fkey",
        "pending_dispatches",
        "notifications",
        ["notification_id"],
        ["id"],
    )
