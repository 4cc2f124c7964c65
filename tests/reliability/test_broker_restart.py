"""Kafka stopped and restarted mid-stream: the running services reconnect by themselves, the courts'
publications made while it was down arrive, and nothing is lost or applied twice."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hub.config import Settings
from hub.domain.events import CourtEvent
from producers.publisher import CourtPublisher, PublishReport
from tests.reliability.support import ServiceProcess, managed, stream_through_outage, wait_until

pytestmark = pytest.mark.reliability


@pytest.mark.timeout(900)
def test_broker_restart_mid_stream_loses_nothing_applies_nothing_twice_and_services_reconnect_alone(
    hub_settings: Settings, tmp_path: Path
):
    """A broker restart is routine maintenance: no operator should have to restart the services after it."""
    kafka = managed(hub_settings, "kafka")

    def outage(services: dict[str, ServiceProcess], chunk: list[CourtEvent]) -> None:
        # A court publishes while the broker is down: its records wait in the producer, then arrive.
        publisher = CourtPublisher(hub_settings)
        reports: list[PublishReport] = []
        during = threading.Thread(target=lambda: reports.append(publisher.publish(chunk)), daemon=True)
        try:
            assert kafka.stop() and not kafka.answers()
            during.start()
            wait_until(
                lambda: len(publisher.producer) == len(chunk),
                120,
                lambda: f"{len(publisher.producer)} of {len(chunk)} records queued while the broker is down",
            )
            for service in services.values():
                service.assert_running()
        finally:
            kafka.start()
        during.join(timeout=300)
        assert reports and reports[0].ok and reports[0].published == len(chunk), reports

    stream_through_outage(hub_settings, tmp_path, ("bank", "transport"), 71, outage)
