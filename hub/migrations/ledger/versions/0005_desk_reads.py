"""What the oversight desk looks up without reading the whole chain: each agency's feedback by record time (its
first feedback, the answers of the last days) and the interceptions that name an entry besides their first.

Revision ID: ledger_0005
Revises: ledger_0004
Create Date: 2026-12-03
"""

from alembic import op

revision = "ledger_0005"
down_revision = "ledger_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ledger_events_agency_recorded", "ledger_events", ["agency", "recorded_at"])
    op.execute(
        "create index ledger_events_blocked_entries on ledger_events using gin ((body::jsonb -> 'entry_ids')) "
        "where event_type = 'InterceptionRecorded'"
    )


def downgrade() -> None:
    op.drop_index("ledger_events_blocked_entries", "ledger_events")
    op.drop_index("ledger_events_agency_recorded", "ledger_events")
