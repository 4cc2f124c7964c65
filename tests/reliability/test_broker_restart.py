"""Kafka stopped and restarted mid-stream: the running services reconnect by themselves, the courts'
publications made while it was down arrive, and nothing is lost or applied twice."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hub import devstack
from hub.config import Settings
from hub.devstack.kafka import LocalKafka
from hub.devstack.state import locked
from hub.topics import DEAD_LETTER
from producers.publisher import CourtPublisher, PublishReport
from tests.integration.helpers import publish, simulated
from tests.reliability.support import (
    Offsets,
    Progress,
    ServiceProcess,
    assert_agency_matches,
    assert_ledger_holds_each_event_once,
    catch_up_and_stop,
    dead_letters,
    expected_states,
    running,
    wait_until,
)

pytestmark = pytest.mark.reliability

AGENCIES = ("bank", "transport")


def managed_kafka(settings: Settings) -> LocalKafka:
    """The session's own broker, to stop and start; an external one (HUB_KAFKA_BOOTSTRAP) is not ours to stop."""
    kafka, _postgres = devstack._components(settings)
    if kafka is None:
        pytest.skip("the broker is not managed by `hub dev` here (HUB_KAFKA_BOOTSTRAP is set)")
    return kafka


@pytest.mark.timeout(900)
def test_broker_restart_mid_stream_loses_nothing_applies_nothing_twice_and_services_reconnect_alone(
    hub_settings: Settings, tmp_path: Path
):
    """A broker restart is routine maintenance: no operator should have to restart the services after it."""
    kafka = managed_kafka(hub_settings)
    events = simulated(2_000, seed=71)
    quarter = len(events) // 4
    chunks = [events[:quarter], events[quarter : 2 * quarter], events[2 * quarter : 3 * quarter], events[3 * quarter :]]
    services = {
        s: ServiceProcess(hub_settings, s, tmp_path, HUB_BATCH_SIZE="25", HUB_INSTANCE_ID=f"{s}-1")
        for s in (*AGENCIES, "ledger")
    }
    progress = Progress(hub_settings)
    try:
        with running(services.values()):
            for service in services.values():
                service.start()
            publish(hub_settings, chunks[0])
            wait_until(
                lambda: all((progress.applied(s) or 0) > 0 for s in services),
                300,
                lambda: f"services working: {[progress.applied(s) for s in services]}",
            )
            publish(hub_settings, chunks[1])  # and at once the broker goes: the rest of the stream comes after

            # A court publishes while the broker is down: its records wait in the producer, then arrive.
            publisher = CourtPublisher(hub_settings)
            reports: list[PublishReport] = []
            during = threading.Thread(target=lambda: reports.append(publisher.publish(chunks[2])), daemon=True)
            with locked(hub_settings.state_dir):
                try:
                    assert kafka.stop() and not kafka.answers()
                    during.start()
                    wait_until(
                        lambda: len(publisher.producer) == len(chunks[2]),
                        120,
                        lambda: (
                            f"{len(publisher.producer)} of {len(chunks[2])} records queued while the broker is down"
                        ),
                    )
                    for service in services.values():
                        service.assert_running()
                finally:
                    kafka.start()
            during.join(timeout=300)
            assert reports and reports[0].ok and reports[0].published == len(chunks[2]), reports
            publish(hub_settings, chunks[3])

            offsets = Offsets(hub_settings)
            try:
                catch_up_and_stop(hub_settings, services, len(events), progress, offsets)
            finally:
                offsets.close()
    finally:
        progress.close()

    assert all(service.starts == 1 for service in services.values()), "no service was restarted by hand"
    expected = expected_states(hub_settings, events, AGENCIES)
    for agency in AGENCIES:
        assert_agency_matches(hub_settings, agency, expected[agency], len(events))
    assert_ledger_holds_each_event_once(hub_settings, AGENCIES)
    assert dead_letters(hub_settings) == [], f"a valid record was dead-lettered ({DEAD_LETTER})"
