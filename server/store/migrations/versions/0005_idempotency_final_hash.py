"""Idempotency keys remember the hash of a streamed request's whole body,
known only once it has been read (CSV uploads).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("final_hash", sa.Text))


def downgrade() -> None:
    op.drop_column("idempotency_keys", "final_hash")
