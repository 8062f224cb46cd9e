"""Provider circuit breakers shared by every worker (provider_breakers), and
the provider that carried a delivery's attempt (deliveries.attempt_provider),
so reconciliation asks that provider and no other.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_breakers",
        sa.Column("provider", sa.Text, primary_key=True),
        # closed | open | half_open
        sa.Column("state", sa.Text, nullable=False, server_default="closed"),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("opened_at", sa.DateTime(timezone=True)),
        # When the half-open probe began; a probe older than the call timeout is lost.
        sa.Column("probe_started_at", sa.DateTime(timezone=True)),
        sa.Column("transitions", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("deliveries", sa.Column("attempt_provider", sa.Text))


def downgrade() -> None:
    op.drop_column("deliveries", "attempt_provider")
    op.drop_table("provider_breakers")
