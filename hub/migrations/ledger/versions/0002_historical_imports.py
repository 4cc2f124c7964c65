"""Mark court records loaded as a historical import (exempt from publication-time rules).

Revision ID: ledger_0002
Revises: ledger_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0002"
down_revision = "ledger_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ledger_events", sa.Column("historical", sa.Boolean, server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column("ledger_events", "historical")
