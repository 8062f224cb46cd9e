"""Notifications stored but whose workflow may not have started yet: the
API answers once the notification is committed, starts the workflow right
after, and a sweeper starts whatever is still pending (transactional outbox).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_dispatches",
        sa.Column("notification_id", sa.Text, sa.ForeignKey("notifications.id"), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("pending_dispatches_created_at", "pending_dispatches", ["created_at"])


def downgrade() -> None:
    op.drop_table("pending_dispatches")
