"""SQL adapter basics: one engine per service database, created on first use."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url

from hub.config import Settings


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_database(settings: Settings, service: str) -> str:
    """Create the service's database if it does not exist; returns its SQLAlchemy URL."""
    url = settings.service_database_url(service)
    name = make_url(url).database
    with psycopg.connect(_libpq_url(settings.admin_database_url()), autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            # Two instances starting together race here; the loser sees one of these and carries on.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return url


def drop_database(settings: Settings, service: str) -> None:
    name = make_url(settings.service_database_url(service)).database
    with psycopg.connect(_libpq_url(settings.admin_database_url()), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def engine_for(settings: Settings, service: str, **kwargs) -> Engine:
    url = ensure_database(settings, service)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY rows into a table inside the connection's transaction: the fast way to write a batch."""
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def scratch_table(conn: Connection, name: str, columns: str) -> None:
    """A per-session temporary table emptied at every commit, for COPY-then-merge statements."""
    made = conn.connection.info.setdefault("scratch_tables", set())
    if name not in made:
        conn.exec_driver_sql(f"create temp table if not exists {name} ({columns}) on commit delete rows")
        made.add(name)
