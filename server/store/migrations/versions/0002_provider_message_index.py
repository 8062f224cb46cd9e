"""Index deliveries by provider message id, for receipts that carry only it.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_provider_message_id", "deliveries", ["channel", "provider_message_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_provider_message_id", "deliveries")
