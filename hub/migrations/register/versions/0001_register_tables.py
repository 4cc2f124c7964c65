"""The public register: each entry's binding acts (to fold them in legal order), and the public listings.

`entry_acts` holds, for every entry the courts acted on, only what the fold needs (kind, event id, times,
position) and, for a PUBLIC inclusion, the listing the public may see: nothing of a RESTRICTED entry but
its id. `public_entries` holds exactly the PUBLIC entries that are ACTIVE. Names are compared byte-wise
(collation "C") so that a prefix search uses the index.

Revision ID: register_0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "register_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entry_acts",
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("acts", postgresql.JSONB, nullable=False),
    )
    op.create_table(
        "public_entries",
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("debtor_kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text(collation="C"), nullable=False),
        sa.Column("id_shown", sa.Text, nullable=False),
        sa.Column("id_digest", sa.Text, nullable=False),
        sa.Column("legal_representative", sa.Text, nullable=True),
        sa.Column("court_code", sa.Text, nullable=False),
        sa.Column("court_name", sa.Text, nullable=False),
        sa.Column("case_number", sa.Text, nullable=False),
        sa.Column("grounds", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("obligation", sa.Text, nullable=False),
        sa.Column("included_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("listed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("public_entries_name", "public_entries", ["name", "entry_id"])
    op.create_index("public_entries_id", "public_entries", ["id_digest"])
    op.create_index("public_entries_case", "public_entries", ["case_number"])


def downgrade() -> None:
    op.drop_table("public_entries")
    op.drop_table("entry_acts")
