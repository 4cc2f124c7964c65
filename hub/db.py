"""SQL adapter basics: one database per service, owned by the service's own role; who else may do what in it.

Roles (global to the server; one database per service and namespace):
- `<service>` (bank, tax, land, transport, ledger, register, web): owns its database and runs its migrations;
- `<agency>_checker`: an agency's interception checkers (hub.agency.check), read and insert only;
- `web`: the web server, which also reads the register's public listings and nothing else of it;
- `auditor`: reads every service's database (and writes its verification results to the web's);
- the server's administrator makes the roles and databases and nothing runs as it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from hub.config import Settings
from hub.errors import Patience, Unavailable, what_to_do
from hub.log import get_logger

AUDITOR = "auditor"  # reads every service's database, writes none (hub audit verify, hub ledger report)
_PROVISION_LOCK = 0x6875_6232


def checker_role(agency: str) -> str:
    """The role of an agency's interception checkers: reads restrictions, records interceptions, nothing else."""
    return f"{agency}_checker"


REGISTER, WEB = "register", "web"
NOT_AGENCIES = ("ledger", REGISTER, WEB)
MIGRATION_CHAINS = {"ledger": ("engine", "ledger"), REGISTER: ("engine", "register"), WEB: ("web",)}


def services_of(settings: Settings) -> list[str]:
    """Every service that owns a database: the agencies, the ledger, the public register and the web server."""
    return [*settings.agencies, *NOT_AGENCIES]


def roles_of(service: str) -> tuple[str, ...]:
    """The login roles a service's database serves: its owner first."""
    if service == REGISTER:
        return (REGISTER, WEB)
    return (service,) if service in NOT_AGENCIES else (service, checker_role(service))


def grants(service: str) -> list[str]:
    """What roles other than the owner may do in a service's database, given after every migration: the
    checker reads what a check needs and inserts interceptions (no outbox, no offsets, no DDL), the auditor
    reads everything. Identity columns need no grant on their sequences."""
    statements = [f"grant select on all tables in schema public to {AUDITOR}"]
    if service == REGISTER:
        statements.append(f"grant select on public_entries to {WEB}")
    elif service == WEB:
        statements.append(f"grant insert on verifications to {AUDITOR}")
    elif service != "ledger":
        checker = checker_role(service)
        statements += [
            f"grant select on entries, restrictions, api_keys to {checker}",
            f"grant insert on interceptions to {checker}",
        ]
    return statements


class NotMigrated(RuntimeError):
    """A service's tables do not exist yet, and whoever asks may not make them."""


@contextlib.contextmanager
def migrated(service: str, why: str) -> Iterator[None]:
    """Turn "database/relation does not exist" on a reader's connection into what to do about it."""
    start = {"ledger": "hub ledger run", REGISTER: "hub register run", WEB: "hub web serve"}.get(
        service, f"hub agency run {service}"
    )
    todo = f"start its service ({start}) or run `hub db migrate {service}` as its owner; {why}"
    try:
        yield
    except psycopg.errors.UndefinedTable:
        raise NotMigrated(f"the {service} database has no tables yet: {todo}") from None
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):
            raise NotMigrated(f"the {service} database does not exist yet: {todo}") from None
        raise
    except ProgrammingError as exc:
        if isinstance(exc.orig, psycopg.errors.UndefinedTable):
            raise NotMigrated(f"the {service} database has no tables yet: {todo}") from None
        raise
    except OperationalError as exc:
        if "does not exist" in str(exc.orig):
            raise NotMigrated(f"the {service} database does not exist yet: {todo}") from None
        raise


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def provision(settings: Settings, services: Iterable[str]) -> list[str]:
    """On the local stack, as its superuser: each service's login roles (SCRAM passwords from the stack's
    secrets) and its database, owned by its own role and closed to every other role but its checker and the
    auditor. Idempotent; returns the databases it made. Another server is provisioned by its administrator
    (infra/postgres/init-roles.sh does it for docker-compose.yml)."""
    from hub.devstack.secrets import ensure_postgres_users

    services = list(dict.fromkeys(services))
    roles = list(dict.fromkeys([AUDITOR, *(role for service in services for role in roles_of(service))]))
    passwords = ensure_postgres_users(settings.state_dir, roles)
    made = []
    with psycopg.connect(libpq_url(settings.admin_database_url()), autocommit=True, connect_timeout=10) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_PROVISION_LOCK,))  # services starting together
        conn.execute("revoke all on database postgres from public")
        for role in roles:
            verifier = conn.pgconn.encrypt_password(passwords[role].encode(), role.encode(), b"scram-sha-256")
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
            verb = "alter" if exists else "create"
            conn.execute(
                sql.SQL(verb + " role {} login inherit nosuperuser nocreatedb nocreaterole password {}").format(
                    sql.Identifier(role), sql.Literal(verifier.decode())
                )
            )
        for service in services:
            name = make_url(settings.service_database_url(service)).database
            owner, *others = roles_of(service)
            if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(owner)))
                made.append(name)
            conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("grant connect on database {} to {}").format(
                    sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(r) for r in (*others, AUDITOR))
                )
            )
    return made


def drop_database(settings: Settings, service: str) -> None:
    name = make_url(settings.service_database_url(service)).database
    with psycopg.connect(libpq_url(settings.admin_database_url()), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def drop_namespaces(settings: Settings, namespaces: Iterable[str]) -> list[str]:
    """Drop every database whose name starts with one of these namespaces, on one connection (test namespaces,
    when they are torn down); returns their names. An empty namespace would be every database: refused."""
    prefixes = list(namespaces)
    if not all(prefixes):
        raise ValueError("an empty namespace names every database; refusing to drop them")
    with psycopg.connect(libpq_url(settings.admin_database_url()), autocommit=True, connect_timeout=10) as conn:
        found = conn.execute(
            "select datname from pg_database, unnest(cast(%s as text[])) p where starts_with(datname, p)", (prefixes,)
        ).fetchall()
        for (name,) in found:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    return [name for (name,) in found]


def engine_for(settings: Settings, service: str, role: str | None = None, **kwargs) -> Engine:
    """An engine on a service's database as `role` (its owner by default); nothing is created or migrated."""
    return create_engine(settings.service_database_url(service, role), pool_pre_ping=True, **kwargs)


# -- waiting for the server ---------------------------------------------------------------------------

_NOT_YET = ("starting up", "shutting down", "in recovery mode", "too many clients", "too many connections")


def _probe(url: str, timeout: float) -> tuple[str, str]:
    """One connection attempt as the URL's role: ("ok" | "down" | "refused" | "missing" | "tls", what was said).

    libpq gives no SQLSTATE for a failed connection, so the server's words are read: "down" is whatever may pass
    by itself (nothing listening, a timeout, a server starting or stopping), the rest needs someone to act."""
    target = make_url(url)
    params: dict[str, Any] = {**target.translate_connect_args(username="user", database="dbname"), **target.query}
    try:
        with psycopg.connect(**params, connect_timeout=max(2, round(timeout))):
            return "ok", ""
    except psycopg.OperationalError as exc:
        said = str(exc).strip()
        # 'connection failed: connection to server at "h", port p failed: FATAL:  what\n\tdetail'
        reason = said.splitlines()[0].rsplit("failed: ", 1)[-1].removeprefix("FATAL:").strip() if said else ""
        reason = reason[:1].lower() + reason[1:] if reason else type(exc).__name__
        if any(words in said for words in _NOT_YET):
            return "down", reason
        if "password authentication failed" in said:
            return "refused", reason
        if "no pg_hba.conf entry" in said:
            return "rejected", reason
        if "does not exist" in said:
            return "missing", reason
        if "SSL" in said or "certificate" in said:
            return "tls", reason
        return "down", reason


def _refusal(settings: Settings, state: str, where: str, database: str | None, role: str | None, reason: str) -> str:
    if state == "refused":
        todo = (
            "check HUB_DATABASE_USERNAME and HUB_DATABASE_PASSWORD_FILE"
            if settings.database_url or settings.database_password_file
            else "`hub dev up` sets every role's password from the stack's secrets"
        )
        return f"PostgreSQL at {where}: the server refused role {role}'s password; {todo} (see README Security)"
    if state == "missing":
        return (
            f"PostgreSQL at {where} has no database {database} for role {role}; its administrator makes it, as "
            "infra/postgres/init-roles.sh does (see README Security)"
        )
    if state == "rejected":
        return f"PostgreSQL at {where} turned role {role} away ({reason}); see README Security"
    return f"PostgreSQL at {where}: TLS failed ({reason}); check HUB_DATABASE_CA_FILE and the URL's host"


def wait_for_database(
    settings: Settings, service: str, forever: bool, *, strict: bool = True, role: str | None = None
) -> None:
    """Return once PostgreSQL lets `role` (the service's owner by default) into the service's database.

    While the server does not answer, a structured warning says so and the next attempt follows after a back-off
    (0.5 s doubling to 30 s): for ever when `forever` (a started service), else for HUB_CONNECT_TIMEOUT_SECONDS,
    after which `Unavailable` says which server and what to do (`--once`, one-off commands). Refused credentials,
    a missing database and a failed TLS handshake are `Unavailable` at once, as no wait mends them; with
    `strict` False they count as an answer (the local stack's administrator is about to make the role and the
    database, `provision`)."""
    url = settings.service_database_url(service, role)
    target = make_url(url)
    where = f"{target.host}:{target.port or 5432}"
    database, role = target.database, target.username
    log = get_logger("hub.db").bind(service=service)
    patience = Patience(None if forever else settings.connect_timeout_seconds)
    while True:
        left = patience.remaining()
        state, reason = _probe(url, timeout=5.0 if left is None else min(5.0, max(left, 0.0)))
        if state == "ok" or (not strict and state in ("refused", "missing")):
            return
        if state != "down":
            raise Unavailable(_refusal(settings, state, where, database, role, reason))
        if patience.exhausted():
            todo = what_to_do("HUB_DATABASE_URL", bool(settings.database_url))
            raise Unavailable(f"PostgreSQL at {where} is not answering ({reason}); {todo}")
        patience.wait(
            log,
            f"waiting for PostgreSQL at {where} (database {database}): {reason}",
            server="postgresql",
            address=where,
            database=database,
            reason=reason,
        )


def open_owned(settings: Settings, service: str, *chains: str, forever: bool = False) -> Engine:
    """The service's database as its owner, migrated to the head of `chains` and its grants given: what a
    service does when it starts (and `hub db migrate`). On the local stack the database and roles are made
    first if need be. Waits for the server first (`wait_for_database`): for ever if `forever` (a started
    service), else up to HUB_CONNECT_TIMEOUT_SECONDS, then `Unavailable`."""
    from hub.migrations import LOCK, upgrade

    local = not settings.database_url
    if local:  # a new service's password, so that the wait can try it before its role exists
        from hub.devstack.secrets import ensure_postgres_users

        ensure_postgres_users(settings.state_dir, [AUDITOR, *roles_of(service)])
    wait_for_database(settings, service, forever, strict=not local)
    if local:
        provision(settings, [service])
        wait_for_database(settings, service, forever)  # now the role and the database exist: may it log in?
    db = engine_for(settings, service)
    upgrade(db.url.render_as_string(hide_password=False), *chains)
    with db.begin() as conn:  # two GRANTs at once fail with "tuple concurrently updated"
        conn.exec_driver_sql(f"select pg_advisory_xact_lock({LOCK})")
        for statement in grants(service):
            conn.exec_driver_sql(statement)
    return db


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
