"""A notification without routing holds SQL NULL, not JSON null, so the
status roll-up reads routing steps only for routed notifications.

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE notifications SET routing = NULL WHERE routing = 'null'::jsonb")


def downgrade() -> None:
    # JSON null and SQL NULL read the same to the code; nothing to undo.
    pass
