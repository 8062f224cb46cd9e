"""Templates with immutable versions, rendered content per delivery.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("tenant_id", sa.Text, sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("template_id", sa.Text, primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("active_version", sa.Integer, nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("rollout_version", sa.Integer),
        sa.Column("rollout_percent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rollout_state", sa.Text, nullable=False, server_default="none"),
        sa.Column("rollout_stopped_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("rollout_started_at", TZ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("archived_at", TZ),
    )
    op.create_table(
        "template_versions",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("template_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("channels", JSONB, nullable=False),
        sa.Column("variables", ARRAY(sa.Text), nullable=False),
        sa.Column("whatsapp_name", sa.Text),
        sa.Column("whatsapp_status", sa.Text),
        sa.Column("whatsapp_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "template_id"], ["templates.tenant_id", "templates.template_id"]
        ),
    )
    op.create_index(
        "ix_template_versions_whatsapp_name", "template_versions", ["whatsapp_name"], unique=True
    )
    op.add_column("notifications", sa.Column("template_version", sa.Integer))
    # What this delivery sends: rendered subject/body, or WhatsApp template parameters.
    op.add_column("deliveries", sa.Column("content", JSONB, nullable=False, server_default="{}"))


def downgrade() -> None:
    op.drop_column("deliveries", "content")
    op.drop_column("notifications", "template_version")
    op.drop_index("ix_template_versions_whatsapp_name", "template_versions")
    op.drop_table("template_versions")
    op.drop_table("templates")
