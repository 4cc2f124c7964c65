"""`hub dev up|down|status`: the checkout's own Kafka broker and PostgreSQL cluster.

Nothing is started for a component whose address is configured (HUB_KAFKA_BOOTSTRAP,
HUB_DATABASE_URL): then that server is used as it is.

The local broker is secured (SASL_SSL with SCRAM-SHA-512, TLS to its controller, ACLs enforced): `up` gives it a
credential for every principal of the hub (hub.acl.principals), from <state>/secrets (hub.devstack.secrets).
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.acl import principals as hub_principals
from hub.config import SERVICES, Settings
from hub.db import ensure_database
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
    for service in SERVICES:
        ensure_database(settings, service)
    return started


def down(settings: Settings, say=print) -> None:
    with locked(settings.state_dir):
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
    if postgres is None:
        answers = _database_answers(settings)
        out.append(ComponentStatus("postgres", _hide(settings.admin_database_url()), False, answers))
    else:
        out.append(ComponentStatus("postgres", f"127.0.0.1:{postgres.port}", True, postgres.answers()))
    for service in SERVICES:
        url = settings.service_database_url(service)
        out.append(ComponentStatus(f"db {service}", _hide(url), postgres is not None, _database_answers(settings, url)))
    return out


def _hide(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _database_answers(settings: Settings, url: str | None = None) -> bool:
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(url or settings.admin_database_url()).set(drivername="postgresql")
    try:
        with psycopg.connect(target.render_as_string(hide_password=False), connect_timeout=2) as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False
