"""Kafka client factories, so every service talks to the broker with the same guarantees."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

from hub.config import Settings

_librdkafka_log = logging.getLogger("hub.librdkafka")


def is_fatal(error: KafkaError | None) -> bool:
    """The client is unusable for good (a fenced static member, a broken idempotent producer): only a new one helps."""
    return error is not None and (error.fatal() or error.code() == KafkaError._FATAL)


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap(), "logger": _librdkafka_log})


def idempotent_producer(settings: Settings, **overrides: Any) -> Producer:
    """acks=all + idempotence: a retried send never duplicates or reorders a partition's records."""
    config = {
        "bootstrap.servers": settings.bootstrap(),
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 5,
        # Java clients' default partitioner: a debtor's key lands on the same partition whichever
        # language the producer is written in, so court and feedback topics stay co-partitioned.
        "partitioner": "murmur2_random",
        "message.timeout.ms": settings.delivery_timeout_ms,
        "logger": _librdkafka_log,
    }
    config.update(overrides)
    return Producer(config)


def consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """Offsets are the service's business (kept in its database), so nothing is auto-committed."""
    config = {
        "bootstrap.servers": settings.bootstrap(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": settings.session_timeout_ms,
        # A regex subscription (the ledger's agency.*.feedback) notices a new agency's topic this soon.
        "topic.metadata.refresh.interval.ms": 10_000,
        "logger": _librdkafka_log,
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
