"""Interceptions recorded by embedded checks, forwarded as feedback by the agency's service.

Revision ID: agency_0003
Revises: agency_0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "agency_0003"
down_revision = "agency_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interceptions",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject_id", sa.Text, nullable=False),
        sa.Column("measure", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("entry_ids", sa.Text, nullable=False),  # comma-separated, in order
        sa.Column("forwarded", sa.Boolean, server_default=sa.false(), nullable=False),
    )
    op.create_index("interceptions_unforwarded", "interceptions", ["id"], postgresql_where=sa.text("not forwarded"))


def downgrade() -> None:
    op.drop_table("interceptions")
