"""Outbox rows are deleted once delivered rather than marked sent: nothing reads a delivered row, and an agency
that answers millions of entries kept millions of them (and an update writes a whole new row version).

Revision ID: engine_0002
Revises: engine_0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "engine_0002"
down_revision = "engine_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("delete from outbox where sent_at is not null")
    op.drop_index("outbox_unsent", table_name="outbox")
    op.drop_column("outbox", "sent_at")


def downgrade() -> None:
    op.add_column("outbox", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("outbox_unsent", "outbox", ["id"], postgresql_where=sa.text("sent_at is null"))
