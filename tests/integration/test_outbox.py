"""The outbox relay on the real database and broker: relays sharing one outbox (a service's workers, a one-off
`hub agency check`) keep its order on the topic."""

from __future__ import annotations

import threading

from hub.acl import agency_principal
from hub.agency.service import open_database
from hub.clients import idempotent_producer
from hub.engine.outbox import OutboxMessage, OutboxRelay, add
from hub.readback import read_range
from hub.topics import feedback_topic


class HeldFlush:
    """A producer whose flush waits until released, holding its relay mid-delivery for as long as the test
    needs (no timing to race on a loaded machine)."""

    def __init__(self, producer, started: threading.Event, release: threading.Event):
        self.producer, self.started, self.release = producer, started, release

    def produce(self, *args, **kwargs):
        self.producer.produce(*args, **kwargs)

    def poll(self, timeout: float):
        return self.producer.poll(timeout)

    def flush(self, timeout: float):
        self.started.set()
        self.release.wait(60)
        return self.producer.flush(timeout)


def test_a_second_relay_never_overtakes_one_mid_delivery(hub_settings):
    """An entry's application must reach the topic before its lift: readers fold feedback in topic order."""
    agency = "bank"
    topic = hub_settings.topic(feedback_topic(agency))
    db = open_database(hub_settings, agency)
    producer = idempotent_producer(hub_settings, agency_principal(agency))

    def messages(values: range) -> list[OutboxMessage]:
        return [OutboxMessage(topic, b"entry-1", str(v).encode(), [], None) for v in values]

    with db.begin() as conn:
        add(conn, messages(range(0, 5)))
    started, release = threading.Event(), threading.Event()
    first = OutboxRelay(db, HeldFlush(producer, started, release), agency)  # type: ignore[arg-type]
    second = OutboxRelay(db, producer, agency)
    delivered: list[int] = []
    mid_delivery = threading.Thread(target=lambda: delivered.append(first.publish_pending()))
    mid_delivery.start()
    assert started.wait(30)
    with db.begin() as conn:
        add(conn, messages(range(5, 10)))  # the lift, committed while the first relay is still flushing
    assert second.publish_pending() == 0, "a relay delivered while another was mid-delivery"
    release.set()
    mid_delivery.join(30)
    assert delivered == [5]
    assert second.drain(timeout=30)
    values = [int(r.value) for r in read_range(hub_settings, topic)]
    assert values == list(range(10)), values
    assert first.pending() == 0
    db.dispose()
