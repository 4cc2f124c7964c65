"""The check service: API keys of the systems that call it, and notifications of every change it serves.

A statement-level trigger on entries and on api_keys sends a NOTIFY at commit, so a check service's index
follows the agency's commits within milliseconds instead of polling; the payload is empty (a listener asks
the database what changed), and identical notifications of one transaction are folded into one by the
server.

Revision ID: agency_0005
Revises: agency_0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "agency_0005"
down_revision = "agency_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("system", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.Text, nullable=False),
        sa.Column("rate_per_second", sa.Float, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    for table, channel in (("entries", "hub_entries"), ("api_keys", "hub_api_keys")):
        op.execute(
            f"create function notify_{table}() returns trigger language plpgsql as "
            f"$$ begin perform pg_notify('{channel}', ''); return null; end $$"
        )
        op.execute(
            f"create trigger {table}_changed after insert or update or delete on {table} "
            f"for each statement execute function notify_{table}()"
        )


def downgrade() -> None:
    for table in ("entries", "api_keys"):
        op.execute(f"drop trigger {table}_changed on {table}")
        op.execute(f"drop function notify_{table}()")
    op.drop_table("api_keys")
