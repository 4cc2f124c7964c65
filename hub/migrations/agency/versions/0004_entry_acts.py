"""An entry's binding court acts (kind, event id, legal time, record position), so that the agency folds them
in legal order with the lifecycle the ledger and the audit use, whatever order they were published in.

Revision ID: agency_0004
Revises: agency_0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "agency_0004"
down_revision = "agency_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("entries", sa.Column("acts", postgresql.JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False))


def downgrade() -> None:
    op.drop_column("entries", "acts")
