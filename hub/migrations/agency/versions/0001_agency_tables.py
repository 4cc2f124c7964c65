"""An agency's records: one row per list entry, and the restrictions those entries support.

Revision ID: agency_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "agency_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entries",
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("debtor_id", sa.Text, nullable=False),
        sa.Column("subject_id", sa.Text, nullable=False),
        sa.Column("measures", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("included_event_id", sa.Text, nullable=True),
        sa.Column("closing_event_id", sa.Text, nullable=True),
        sa.Column("retained", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("entries_retained", "entries", ["retain_until"], postgresql_where=sa.text("status = 'RETAINED'"))
    op.create_table(
        "restrictions",
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("measure", sa.Text, primary_key=True),
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("restrictions_by_entry", "restrictions", ["entry_id"])


def downgrade() -> None:
    op.drop_table("restrictions")
    op.drop_table("entries")
