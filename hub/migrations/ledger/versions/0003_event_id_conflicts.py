"""An event id may appear twice in the chain: a copy with different content is kept as evidence.

Revision ID: ledger_0003
Revises: ledger_0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "ledger_0003"
down_revision = "ledger_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("ledger_events_event_id_key", "ledger_events", type_="unique")
    op.create_index("ledger_events_event_id", "ledger_events", ["event_id"])


def downgrade() -> None:
    op.drop_index("ledger_events_event_id", "ledger_events")
    op.create_unique_constraint("ledger_events_event_id_key", "ledger_events", ["event_id"])
