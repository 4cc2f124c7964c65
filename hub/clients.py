"""Kafka client factories, so every service talks to the broker with the same guarantees, as its own principal.

Every client authenticates (SASL_SSL with SCRAM-SHA-512 by default, or SSL with a client certificate where a
site prefers mTLS) and trusts only the configured CA. The principal is chosen by what the process is (`hub
agency run tax` is `agency-tax`); HUB_KAFKA_USERNAME overrides it, and the password comes from
HUB_KAFKA_PASSWORD_FILE or, on the local stack, from its secrets folder.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

from hub.config import ConfigError, Settings

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
