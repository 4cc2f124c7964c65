"""Alembic migrations, one chain per concern, each with its own version table in the service database:
`engine` (offsets, processed events, outbox: every service), `agency` (an agency's records), `ledger`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text

HERE = Path(__file__).resolve().parent
LOCK = 0x6875_6231  # serialises migrations and grants when several instances of a service start at once


def upgrade(url: str, *chains: str) -> None:
    for chain in chains:
        config = Config()
        config.set_main_option("script_location", str(HERE / chain))
        config.attributes["url"] = url
        config.attributes["version_table"] = f"alembic_version_{chain}"
        command.upgrade(config, "head")


def run_env(context) -> None:
    """The body of every chain's env.py: online migrations only, under an advisory lock."""
    config = context.config
    engine = create_engine(config.attributes["url"], poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, version_table=config.attributes["version_table"])
        with context.begin_transaction():
            connection.execute(text("select pg_advisory_xact_lock(:key)"), {"key": LOCK})
            context.run_migrations()
    engine.dispose()
