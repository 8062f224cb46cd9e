"""Alert rules can be disabled (alert_rules.enabled): not checked, state kept.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "alert_rules", sa.Column("enabled", sa.Boolean, nullable=False, server_default="true")
    )


def downgrade() -> None:
    op.drop_column("alert_rules", "enabled")
