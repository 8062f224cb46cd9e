"""The tenant's bulks newest first (GET /api/v1/notifications/bulk) without
a sort.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bulks_tenant_created", "bulks", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_bulks_tenant_created", "bulks")
