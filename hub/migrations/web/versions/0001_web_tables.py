"""The oversight desk: its accounts, their sessions, and the results of `hub audit verify`.

A password is stored only as its Argon2id hash; a session only as the SHA-256 of its cookie, so a copy
of this database logs nobody in. `verifications` is the one table the auditor may write (its own
results); it reads every other.

Revision ID: web_0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "web_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("username", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),  # auditor | court
        sa.Column("court_code", sa.Text, nullable=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("(kind = 'court') = (court_code is not null)", name="accounts_court_has_code"),
        sa.CheckConstraint("kind in ('auditor', 'court')", name="accounts_kind"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_sha256", sa.Text, primary_key=True),
        sa.Column("username", sa.Text, sa.ForeignKey("accounts.username", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "verifications",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("differences", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("verifications")
    op.drop_table("sessions")
    op.drop_table("accounts")
