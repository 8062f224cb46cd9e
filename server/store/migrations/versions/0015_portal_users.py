"""The tenant portal: users with roles (each tenant's login becomes its owner
user), server-side sessions, invitations and the audit log.

Revision ID: 0015
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Each account's login moves to its owner user; ids as new_id("usr") makes them.
    op.execute(
        "INSERT INTO users (id, tenant_id, email, password_hash, role, created_at)"
        " SELECT 'usr_' || substr(md5(random()::text || id), 1, 24), id, email,"
        " password_hash, 'owner', created_at FROM tenants"
    )
    op.drop_column("tenants", "password_hash")
    op.create_table(
        "sessions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column(
            "user_id",
            sa.Text,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "email"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_email", sa.Text, nullable=False),
        sa.Column("actor_api_key", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("audit_log_by_tenant", "audit_log", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("invitations")
    op.drop_table("sessions")
    op.add_column("tenants", sa.Column("password_hash", sa.Text))
    op.execute(
        "UPDATE tenants SET password_hash = u.password_hash FROM users u"
        " WHERE u.tenant_id = tenants.id AND u.email = tenants.email"
    )
    op.execute("UPDATE tenants SET password_hash = '' WHERE password_hash IS NULL")
    op.alter_column("tenants", "password_hash", nullable=False)
    op.drop_table("users")
