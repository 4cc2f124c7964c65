"""Every event type through the real broker, and every service database reachable."""

import psycopg
from sqlalchemy import text

from hub.acl import agency_principal, court_principal
from hub.clients import idempotent_producer
from hub.codec import default_codec, event_headers
from hub.config import SERVICES
from hub.db import engine_for, provision
from hub.domain.events import parse_event
from hub.readback import end_offsets, read_range
from hub.topics import COURT_EVENTS, describe_topics, feedback_topic
from tests.support import every_sample


def test_every_event_type_is_produced_and_consumed_through_the_broker(hub_settings):
    codec = default_codec()
    events = [parse_event(r) for r in every_sample()]
    topics = {"court": hub_settings.topic(COURT_EVENTS), "feedback": hub_settings.topic(feedback_topic("transport"))}
    producers = {
        "court": idempotent_producer(hub_settings, court_principal("J0105")),
        "feedback": idempotent_producer(hub_settings, agency_principal("transport")),
    }
    for event in events:
        key = event.debtor.id_number if event.family == "court" else event.debtor_id
        producers[event.family].produce(
            topics[event.family], key=key.encode(), value=codec.encode_event(event), headers=event_headers(event)
        )
    assert all(p.flush(30) == 0 for p in producers.values())

    received = {}
    for family, topic in topics.items():
        for record in read_range(hub_settings, topic):
            headers = dict(record.headers)
            event = codec.decode_event(record.value, family=family)
            assert headers["event-type"].decode() == event.event_type
            assert headers["event-id"].decode() == event.event_id
            assert headers["content-type"] == b"application/avro"
            assert record.timestamp_ms > 0
            received[event.event_id] = event
    assert received == {e.event_id: e for e in events}


def test_topics_are_created_with_forever_retention_and_copartitioned(hub_settings):
    described = {t.name: t for t in describe_topics(hub_settings)}
    court = described[hub_settings.topic(COURT_EVENTS)]
    assert court.exists and court.partitions == hub_settings.partitions
    assert court.config["retention.ms"] == "-1"
    assert court.config["cleanup.policy"] == "delete"
    for agency in hub_settings.agencies:
        assert described[hub_settings.topic(feedback_topic(agency))].partitions == court.partitions
    assert set(end_offsets(hub_settings, hub_settings.topic(COURT_EVENTS))) == set(range(hub_settings.partitions))


def test_each_service_database_accepts_its_own_role(hub_settings):
    provision(hub_settings, SERVICES)
    names = set()
    for service in SERVICES:
        engine = engine_for(hub_settings, service)
        with engine.connect() as conn:
            names.add(tuple(conn.execute(text("select current_database(), current_user")).one()))
        engine.dispose()
    assert names == {(f"{hub_settings.namespace}{s}", s) for s in SERVICES}


def test_local_cluster_listens_on_loopback_only(stack):
    if stack.database_url:
        return
    url = stack.admin_database_url().replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as conn:
        assert conn.execute("show listen_addresses").fetchone()[0] == "127.0.0.1"
