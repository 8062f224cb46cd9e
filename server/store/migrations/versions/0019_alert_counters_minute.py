"""Indexes on alert_counters: by tenant, channel and minute, so a rule on a
channel (any template) reads only its window's buckets; and by minute, for
the hourly purge of buckets older than any window.

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_alert_counters_channel", "alert_counters", ["tenant_id", "channel", "minute"]
    )
    op.create_index("ix_alert_counters_minute", "alert_counters", ["minute"])


def downgrade() -> None:
    op.drop_index("ix_alert_counters_minute", "alert_counters")
    op.drop_index("ix_alert_counters_channel", "alert_counters")
