"""The compliance report's projection: each component of linked entries judged, until its horizon.

Revision ID: ledger_0004
Revises: ledger_0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0004"
down_revision = "ledger_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_head",
        sa.Column("ledger", sa.Text, primary_key=True),
        sa.Column("upto_seq", sa.BigInteger, nullable=False),  # every ledger row up to it is judged
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),  # of the deadlines and agencies it was judged with
        sa.Column("first_feedback", sa.Text, nullable=False),  # JSON: each agency's first feedback record
        sa.Column("courts", sa.Text, nullable=False),  # JSON: the court codes seen, for `--party`
    )
    op.create_table(
        "report_entries",
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("component", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=True),
    )
    op.create_index("report_entries_component", "report_entries", ["component"])
    op.create_table(
        "report_components",
        sa.Column("component", sa.Text, primary_key=True),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("horizon", sa.DateTime(timezone=True), nullable=True),
        sa.Column("imported", sa.Integer, nullable=False),
        sa.Column("violations", sa.Text, nullable=False),  # JSON list, '[]' for none
    )
    op.create_index("report_components_horizon", "report_components", ["horizon"])


def downgrade() -> None:
    op.drop_table("report_components")
    op.drop_table("report_entries")
    op.drop_table("report_head")
