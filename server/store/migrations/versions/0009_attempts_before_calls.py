"""Provider attempts are recorded before the call, so a retry can tell an
ambiguous one: `attempt_started_at` is set, in its own commit, just before a
provider call and cleared with its outcome. Still set on a later attempt, it
means the outcome is unknown (the worker died, or no answer came back).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("attempt_started_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("deliveries", "attempt_started_at")
