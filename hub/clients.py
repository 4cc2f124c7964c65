"""Kafka client factories, so every service talks to the broker with the same guarantees, as its own principal.

Every client authenticates (SASL_SSL with SCRAM-SHA-512 by default, or SSL with a client certificate where a
site prefers mTLS) and trusts only the configured CA. The principal is chosen by what the process is (`hub
agency run tax` is `agency-tax`); HUB_KAFKA_USERNAME overrides it, and the password comes from
HUB_KAFKA_PASSWORD_FILE or, on the local stack, from its secrets folder.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ClusterMetadata

from hub.config import ConfigError, Settings
from hub.errors import Patience, Unavailable, what_to_do
from hub.log import get_logger

_librdkafka_log = logging.getLogger("hub.librdkafka")


def is_fatal(error: KafkaError | None) -> bool:
    """The client is unusable for good (a fenced static member, a broken idempotent producer): only a new one helps."""
    return error is not None and (error.fatal() or error.code() == KafkaError._FATAL)


def security(settings: Settings, principal: str) -> dict[str, Any]:
    """The connection settings that authenticate `principal` (or HUB_KAFKA_USERNAME) to the cluster."""
    config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap(), "logger": _librdkafka_log}
    config["security.protocol"] = settings.kafka_security_protocol
    ca = settings.kafka_ca_path()
    if ca is not None:
        config["ssl.ca.location"] = str(ca)
    if settings.kafka_security_protocol == "SSL":
        if not (settings.kafka_client_cert and settings.kafka_client_key):
            raise ConfigError("HUB_KAFKA_SECURITY_PROTOCOL=SSL needs HUB_KAFKA_CLIENT_CERT and HUB_KAFKA_CLIENT_KEY")
        config["ssl.certificate.location"] = str(settings.kafka_client_cert)
        config["ssl.key.location"] = str(settings.kafka_client_key)
        return config
    username = settings.kafka_username or principal
    config.update(
        {
            "sasl.mechanisms": settings.kafka_sasl_mechanism,
            "sasl.username": username,
            "sasl.password": settings.kafka_password(username),
        }
    )
    return config


def admin(settings: Settings, principal: str) -> AdminClient:
    return AdminClient(security(settings, principal))


def idempotent_producer(settings: Settings, principal: str, **overrides: Any) -> Producer:
    """acks=all + idempotence: a retried send never duplicates or reorders a partition's records."""
    config = {
        **security(settings, principal),
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 5,
        # Java clients' default partitioner: a debtor's key lands on the same partition whichever
        # language the producer is written in, so court and feedback topics stay co-partitioned.
        "partitioner": "murmur2_random",
        "message.timeout.ms": settings.delivery_timeout_ms,
    }
    config.update(overrides)
    return Producer(config)


def consumer(settings: Settings, group_id: str, principal: str, **overrides: Any) -> Consumer:
    """Offsets are the service's business (kept in its database), so nothing is auto-committed."""
    config = {
        **security(settings, principal),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": settings.session_timeout_ms,
        # A regex subscription (the ledger's agency.*.feedback) notices a new agency's topic this soon.
        "topic.metadata.refresh.interval.ms": 10_000,
    }
    if settings.instance_id:
        config["group.instance.id"] = settings.instance_id
    config.update(overrides)
    return Consumer(config)


def produce(producer: Producer, topic: str, **message: Any) -> None:
    """Produce, waiting for room when the local queue is full rather than failing."""
    while True:
        try:
            producer.produce(topic, **message)
            return
        except BufferError:
            producer.poll(0.05)


_REFUSED = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}


def _reason(errors: list[KafkaError], waited: float) -> str:
    """What librdkafka last said about the connection, shortly: "connection refused", or that nothing answered."""
    for error in reversed(errors):
        said = error.str()
        if error.code() == KafkaError._TRANSPORT and "failed: " in said:
            said = said.split("failed: ", 1)[1].split(" (after ", 1)[0]
            return said[:1].lower() + said[1:]
    return f"no answer to a metadata request within {waited:g}s"


def wait_for_kafka(settings: Settings, principal: str, forever: bool) -> ClusterMetadata:
    """Return once the broker answers a metadata request as `principal` (or HUB_KAFKA_USERNAME), with the metadata:
    the topics the principal may see.

    While it does not answer, a structured warning says so and the next request follows after a back-off (0.5 s
    doubling to 30 s): for ever when `forever` (a started service), else for HUB_CONNECT_TIMEOUT_SECONDS, after
    which `Unavailable` says which broker and what to do (`--once`). A refused password or a failed TLS handshake
    is `Unavailable` at once, as no wait mends it."""
    errors: list[KafkaError] = []
    # librdkafka's own log would say "Connection refused" many times a second; the warning below says it once.
    probe = AdminClient({**security(settings, principal), "error_cb": errors.append, "log_level": 0})
    where = settings.bootstrap()
    name = settings.kafka_username or principal
    log = get_logger("hub.kafka").bind(principal=name)
    patience = Patience(None if forever else settings.connect_timeout_seconds)
    while True:
        left = patience.remaining()
        waited = 2.0 if left is None else max(min(2.0, left), 0.5)
        try:
            metadata = probe.list_topics(timeout=waited)
            if metadata.brokers:
                return metadata
        except KafkaException:
            pass  # why is in the errors the callback got
        probe.poll(0)  # serves error_cb
        refused = next((e for e in errors if e.code() in _REFUSED), None)
        if refused is not None:
            what = "client certificate" if settings.kafka_security_protocol == "SSL" else f"principal {name}'s password"
            raise Unavailable(f"Kafka at {where}: the broker refused {what} (see README Security)")
        tls = next((e for e in errors if e.code() == KafkaError._SSL), None)
        if tls is not None:
            said = tls.str().split(": ", 1)[-1].split(" (after ", 1)[0].split(", verify that", 1)[0]
            raise Unavailable(f"Kafka at {where}: TLS failed ({said}); check HUB_KAFKA_CA_FILE (see README Security)")
        reason = _reason(errors, waited)
        errors.clear()
        if patience.exhausted():
            todo = what_to_do("HUB_KAFKA_BOOTSTRAP", bool(settings.kafka_bootstrap))
            raise Unavailable(f"Kafka at {where} is not answering ({reason}); {todo}")
        patience.wait(log, f"waiting for Kafka at {where}: {reason}", server="kafka", address=where, reason=reason)
