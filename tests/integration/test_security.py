"""Tests that try to break in, on the real secured broker: nobody unauthenticated gets in, and every party may do
only its own acts (infra/kafka/acls.toml)."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from hub.acl import AUDITOR, agency_principal, court_principal
from hub.clients import security
from hub.devstack.tls import LocalCA
from hub.readback import end_offsets
from hub.topics import CHECKPOINTS, COURT_EVENTS, DEAD_LETTER, feedback_topic, topic_specs


def refusal(config: dict, seconds: float = 15.0) -> str:
    """The first error the client reports while trying to reach the broker, or '' if it got metadata.

    librdkafka reports why a connection was refused (authentication, TLS) through error_cb, served by poll;
    a failed metadata request itself only says the transport failed."""
    errors: list[KafkaError] = []
    client = AdminClient({**config, "error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + seconds
    last = "timed out"
    while time.monotonic() < deadline and not errors:
        try:
            if client.list_topics(timeout=0.5).brokers:
                return ""
        except Exception as exc:
            last = str(exc)
        client.poll(0.1)
    return errors[0].str() if errors else last


def test_no_credentials_a_wrong_password_plaintext_and_another_ca_are_refused(hub_settings, tmp_path):
    good = security(hub_settings, AUDITOR)
    good.pop("logger")
    assert refusal(good) == ""
    assert "Authentication failed" in refusal({**good, "sasl.password": "not-the-password"})
    assert "Authentication failed" in refusal({**good, "sasl.username": "nobody"})
    plaintext = {"bootstrap.servers": good["bootstrap.servers"], "security.protocol": "PLAINTEXT"}
    assert refusal(plaintext, seconds=5) != ""
    with pytest.raises(Exception, match=r"sasl\.username"):
        AdminClient({k: v for k, v in good.items() if not k.startswith("sasl.username")})
    other = LocalCA(tmp_path / "other-ca").ensure()
    assert "certificate verify failed" in refusal({**good, "ssl.ca.location": str(other.cert_path)})


def _produce(settings, principal: str, topic: str) -> str | None:
    """Try to write one record as `principal`; the delivery error, or None if it was written."""
    outcome: list[KafkaError | None] = []
    producer = Producer({**security(settings, principal), "message.timeout.ms": 10_000})
    producer.produce(topic, key=b"k", value=b"v", on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(15)
    return outcome[0].str() if outcome and outcome[0] is not None else None


def test_each_party_may_write_only_where_it_speaks_for_itself(hub_settings):
    court_topic = hub_settings.topic(COURT_EVENTS)
    bank_feedback = hub_settings.topic(feedback_topic("bank"))
    before = {t: sum(end_offsets(hub_settings, t).values()) for t in (court_topic, bank_feedback)}
    tax = agency_principal("tax")
    assert "authorization" in (_produce(hub_settings, tax, court_topic) or "").lower()
    assert "authorization" in (_produce(hub_settings, tax, bank_feedback) or "").lower()
    for topic in [s.name for s in topic_specs(hub_settings)]:
        assert "authorization" in (_produce(hub_settings, AUDITOR, topic) or "").lower(), topic
    assert "authorization" in (_produce(hub_settings, court_principal("J0105"), bank_feedback) or "").lower()
    assert {t: sum(end_offsets(hub_settings, t).values()) for t in before} == before, "nothing was written"
    assert _produce(hub_settings, tax, hub_settings.topic(feedback_topic("tax"))) is None, "its own topic"
    assert _produce(hub_settings, tax, hub_settings.topic(DEAD_LETTER)) is None
    assert _produce(hub_settings, court_principal("J0105"), court_topic) is None
    assert _produce(hub_settings, "ledger", hub_settings.topic(CHECKPOINTS)) is None


def _read_one(settings, principal: str, topic: str, group: str) -> str | None:
    """Subscribe as `principal` in `group` and read; the first error, or None once a record arrived."""
    consumer = Consumer({**security(settings, principal), "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for m in consumer.consume(10, timeout=0.5):
                if m.error() is None:
                    return None
                if m.error().code() != KafkaError._PARTITION_EOF:
                    return m.error().str()
        return "nothing read"
    finally:
        consumer.close()


def test_the_auditor_reads_everything_and_a_court_reads_nothing(hub_settings):
    court_topic = hub_settings.topic(COURT_EVENTS)
    assert _produce(hub_settings, court_principal("J0105"), court_topic) is None
    audit_group = f"{hub_settings.namespace}hub-audit-{uuid.uuid4()}"
    assert _read_one(hub_settings, AUDITOR, court_topic, audit_group) is None
    assert _read_one(hub_settings, agency_principal("bank"), court_topic, f"{hub_settings.namespace}hub-bank") is None
    court = court_principal("J0105")
    refused = _read_one(hub_settings, court, court_topic, f"{hub_settings.namespace}hub-bank")
    assert refused is not None and "authorization" in refused.lower()
    into_other_group = _read_one(
        hub_settings, agency_principal("tax"), court_topic, f"{hub_settings.namespace}hub-bank"
    )
    assert into_other_group is not None and "authorization" in into_other_group.lower()
    # Listing shows a principal only what it may describe.
    seen = AdminClient(security(hub_settings, court)).list_topics(timeout=10).topics
    assert hub_settings.topic(feedback_topic("bank")) not in seen
    auditor_sees = AdminClient(security(hub_settings, AUDITOR)).list_topics(timeout=10).topics
    assert {s.name for s in topic_specs(hub_settings)} <= set(auditor_sees)
    position = Consumer({**security(hub_settings, AUDITOR), "group.id": audit_group})
    assert position.get_watermark_offsets(TopicPartition(court_topic, 0), timeout=10) is not None
    position.close()
