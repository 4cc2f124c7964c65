"""A change sequence on entries, so an embedded interception check can refresh only what changed.

Revision ID: agency_0002
Revises: agency_0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "agency_0002"
down_revision = "agency_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("create sequence entry_changes")
    op.add_column(
        "entries",
        sa.Column("change_seq", sa.BigInteger, server_default=sa.text("nextval('entry_changes')"), nullable=False),
    )
    op.create_index("entries_by_change", "entries", ["change_seq"])


def downgrade() -> None:
    op.drop_index("entries_by_change", "entries")
    op.drop_column("entries", "change_seq")
    op.execute("drop sequence entry_changes")
