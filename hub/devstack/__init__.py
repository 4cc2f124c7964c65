"""`hub dev up|down|status`: the checkout's own Kafka broker and PostgreSQL cluster.

Nothing is started for a component whose address is configured (HUB_KAFKA_BOOTSTRAP,
HUB_DATABASE_URL): then that server is used as it is.

The local broker is secured (SASL_SSL with SCRAM-SHA-512, TLS to its controller, ACLs enforced): `up` gives it a
credential for every principal of the hub (hub.acl.principals), from <state>/secrets (hub.devstack.secrets).
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.acl import principals as hub_principals
from hub.config import Settings
from hub.db import provision, services_of
from hub.devstack.kafka import LocalKafka, ensure_scram_users
from hub.devstack.postgres import LocalPostgres
from hub.devstack.secrets import ca_file
from hub.devstack.state import StackError, load_or_create_stack, locked

__all__ = ["ComponentStatus", "StackError", "down", "status", "up"]


@dataclass
class ComponentStatus:
    name: str
    address: str
    managed: bool
    answers: bool
    detail: str = ""


def _components(settings: Settings) -> tuple[LocalKafka | None, LocalPostgres | None]:
    if settings.kafka_bootstrap and settings.database_url:
        return None, None
    stack = load_or_create_stack(settings.state_dir)
    kafka = (
        None
        if settings.kafka_bootstrap
        else LocalKafka(settings.state_dir, stack["kafka_port"], stack["kafka_controller_port"], settings.kafka_heap)
    )
    postgres = (
        None
        if settings.database_url
        else LocalPostgres(settings.state_dir, stack["pg_port"], stack["pg_user"], stack["pg_password"])
    )
    return kafka, postgres


def up(settings: Settings, say=print) -> dict[str, bool]:
    """Start what is not running (idempotent); returns which components this call started."""
    started = {"kafka": False, "postgres": False}
    with locked(settings.state_dir):
        kafka, postgres = _components(settings)
        if postgres is not None:
            started["postgres"] = postgres.start()
            say(f"postgres: {'started' if started['postgres'] else 'already running'} on 127.0.0.1:{postgres.port}")
        if kafka is not None:
            principals = hub_principals(settings)
            started["kafka"] = kafka.start(principals=principals)
            say(
                f"kafka: {'started' if started['kafka'] else 'already running'} on {kafka.bootstrap} "
                f"(SASL_SSL, SCRAM-SHA-512; CA {ca_file(settings.state_dir)})"
            )
            added = ensure_scram_users(kafka.bootstrap, settings.state_dir, principals)
            if added:
                say(f"kafka: SCRAM-SHA-512 credentials added for {', '.join(added)}")
            line = kafka.version_line()
            if line:
                say(f"kafka broker log: {line}")
    if postgres is not None:
        made = provision(settings, services_of(settings))
        if made:
            say(f"postgres: made {', '.join(made)}, each owned by its service's own role")
    return started


def down(settings: Settings, say=print) -> None:
    from hub.devstack.services import stop_all

    with locked(settings.state_dir):
        stop_all(settings, say)  # the demo's register and web server, before what they use
        kafka, postgres = _components(settings)
        if kafka is not None:
            say(f"kafka: {'stopped' if kafka.stop() else 'was not running'}")
        if postgres is not None:
            say(f"postgres: {'stopped' if postgres.stop() else 'was not running'}")


def status(settings: Settings) -> list[ComponentStatus]:
    from hub.topics import probe_kafka

    kafka, postgres = _components(settings)
    out = []
    if kafka is None:
        out.append(ComponentStatus("kafka", settings.bootstrap(), False, probe_kafka(settings)))
    else:
        line = kafka.version_line() or ""
        version = line[line.find("Kafka version:") :].split(" (")[0] if "Kafka version:" in line else ""
        problem = kafka.problem()
        answers = problem is None and kafka.answers()
        security = kafka.security() if answers else None
        detail = problem or ", ".join(part for part in (version, security) if part)
        out.append(ComponentStatus("kafka", kafka.bootstrap, True, answers, detail))
    databases = []
    for service in services_of(settings):
        url = settings.service_database_url(service)
        answers, detail = _database_answers(url)
        databases.append(ComponentStatus(f"db {service}", _hide(url), postgres is not None, answers, detail))
    if postgres is None:
        reached = any(d.answers for d in databases)
        out.append(ComponentStatus("postgres", _hide(settings.database_url or ""), False, reached))
    else:
        tls = postgres.tls()
        detail = f"TLS on ({tls}), SCRAM-SHA-256, hostssl only" if tls else "TLS OFF"
        out.append(ComponentStatus("postgres", f"127.0.0.1:{postgres.port}", True, tls is not None, detail))
    return out + databases


def _hide(url: str) -> str:
    """The URL without its password and query (the CA's path says nothing useful)."""
    from sqlalchemy.engine import make_url

    if not url:
        return ""
    return make_url(url).set(query={}).render_as_string(hide_password=True)


def _database_answers(url: str) -> tuple[bool, str]:
    """Whether the service's role reaches its database, and over what."""
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(url).set(drivername="postgresql")
    try:
        with psycopg.connect(target.render_as_string(hide_password=False), connect_timeout=2) as conn:
            row = conn.execute("select ssl, version from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
    except psycopg.Error as exc:
        return False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return True, f"as {target.username}, TLS {row[1]}" if row and row[0] else f"as {target.username}, TLS OFF"
