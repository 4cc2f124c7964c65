"""What an expected failure means to the person at the terminal: one or two lines and an exit code (hub.errors).

The servers' client libraries say "Broker transport failure" or "connection refused" with a stack of frames;
the user needs to know which server, and what to do about it. Anything not recognised here is a bug: it is
reported in one line too, with how to see the traceback (`hub --debug ...`)."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from sqlalchemy.exc import DBAPIError

from hub.agency.check import CheckError
from hub.codec import CodecError, SchemaCatalogueError
from hub.config import ConfigError, get_settings
from hub.db import NotMigrated
from hub.devstack.state import StackError
from hub.errors import EXIT_UNAVAILABLE, EXIT_USAGE, Unavailable
from hub.ledger.report import UnknownParty
from hub.topics import TopicError

EXIT_BUG = 70  # EX_SOFTWARE: not an expected failure; `--debug` shows where

_USAGE = (ConfigError, CodecError, SchemaCatalogueError, CheckError, UnknownParty)
_UNAVAILABLE = (Unavailable, StackError, TopicError, NotMigrated)

_KAFKA_DOWN = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError._RESOLVE,
}
_KAFKA_AUTH = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._SSL}
_KAFKA_DENIED = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}
_KAFKA_MISSING = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION}


def explain(exc: BaseException) -> tuple[str, int]:
    """The message and exit code for `exc`."""
    if isinstance(exc, _USAGE):
        return str(exc), EXIT_USAGE
    if isinstance(exc, _UNAVAILABLE):
        return str(exc), EXIT_UNAVAILABLE
    if isinstance(exc, KafkaException):
        return _kafka(exc), EXIT_UNAVAILABLE
    if isinstance(exc, DBAPIError) and _is_connection_failure(exc):
        return _database(str(exc.orig)), EXIT_UNAVAILABLE
    return f"unexpected {type(exc).__name__}: {exc} (run `hub --debug ...` to see where)", EXIT_BUG


def _kafka(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    code = error.code() if error is not None else None
    said = error.str() if error is not None else str(exc)
    where = _kafka_address()
    if code in _KAFKA_DOWN:
        return f"Kafka at {where} is not answering ({said}); start it with `hub dev up`, or set HUB_KAFKA_BOOTSTRAP"
    if code in _KAFKA_AUTH:
        return (
            f"Kafka at {where} refused our credentials or certificate ({said}); check HUB_KAFKA_USERNAME, "
            "HUB_KAFKA_PASSWORD_FILE and HUB_KAFKA_CA_FILE (README, Security)"
        )
    if code in _KAFKA_DENIED:
        return f"Kafka denied this principal the operation ({said}); its ACLs are in infra/kafka/acls.toml"
    if code in _KAFKA_MISSING:
        return f"a topic is missing on Kafka at {where} ({said}); create the topics with `hub topics create`"
    return f"Kafka at {where}: {said}"


def _kafka_address() -> str:
    try:
        return get_settings().bootstrap()
    except Exception:
        return "(unknown address)"


def _is_connection_failure(exc: DBAPIError) -> bool:
    import psycopg

    return isinstance(exc.orig, psycopg.OperationalError)


def _database(said: str) -> str:
    said = " ".join(said.split())
    where = _database_address()
    if "password authentication failed" in said:
        return (
            f"PostgreSQL at {where} refused the role's password ({said}); check HUB_DATABASE_USERNAME and "
            "HUB_DATABASE_PASSWORD_FILE (README, Security)"
        )
    if "permission denied for database" in said:
        return f"PostgreSQL at {where}: {said}; each role may enter its own service's database only (README, Security)"
    if "certificate" in said or "SSL" in said:
        return f"PostgreSQL at {where}: TLS failed ({said}); check HUB_DATABASE_CA_FILE and the URL's host"
    if "does not exist" in said:
        return f"PostgreSQL at {where}: {said}; start the service once, or run `hub db migrate`"
    reason = next((r for r in ("connection refused", "timeout expired", "no route to host") if r in said.lower()), said)
    return f"PostgreSQL at {where} is not answering ({reason}); start it with `hub dev up`, or set HUB_DATABASE_URL"


def _database_address() -> str:
    try:
        settings = get_settings()
        if settings.database_url:
            from sqlalchemy.engine import make_url

            url = make_url(settings.database_url)
            return f"{url.host}:{url.port or 5432}"
        return f"127.0.0.1:{settings.local_stack()['pg_port']}"
    except Exception:
        return "(unknown address)"
