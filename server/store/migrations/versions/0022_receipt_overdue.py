"""Missing receipts are noted by a sweep of the database, not by a timer in
each notification's workflow: a flag for the deliveries already noted, and a
partial index that holds only the deliveries still waiting for a receipt.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "deliveries",
        sa.Column("receipt_overdue", sa.Boolean(), nullable=False, server_default="false"),
    )
    op.create_index(
        "ix_deliveries_awaiting_receipt",
        "deliveries",
        ["updated_at"],
        postgresql_where=sa.text("status = 'sent' AND NOT receipt_overdue"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_awaiting_receipt", table_name="deliveries")
    op.drop_column("deliveries", "receipt_overdue")
