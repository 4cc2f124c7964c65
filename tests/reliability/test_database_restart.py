"""PostgreSQL stopped and restarted mid-stream: the running services retry with growing back-off while it is
gone, carry on by themselves when it is back, and nothing is lost or applied twice."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from hub.config import Settings
from hub.domain.events import CourtEvent
from tests.integration.helpers import publish
from tests.reliability.support import ServiceProcess, managed, stream_through_outage, wait_until

pytestmark = pytest.mark.reliability

RETRYING = "database unavailable; retrying"


def retries(service: ServiceProcess) -> dict[tuple[int | None, str | None], list[float]]:
    """The back-off of each retry the service logged, in order, per process and thread (its workers back off each
    alone, and so does a worker's fetch thread when a rebalance asks it for the stored offsets)."""
    waits: dict[tuple[int | None, str | None], list[float]] = {}
    for line in service.log_text().splitlines():
        if RETRYING in line and line.startswith("{"):
            entry = json.loads(line)
            waits.setdefault((entry.get("worker"), entry.get("thread")), []).append(entry["retry_in"])
    return waits


@pytest.mark.timeout(900)
def test_database_restart_mid_stream_is_retried_with_backoff_and_recovered_unaided_with_nothing_lost(
    hub_settings: Settings, tmp_path: Path
):
    """A database failover must cost a pause, never a record, a duplicate or a crashed service."""
    postgres = managed(hub_settings, "postgres")

    def outage(services: dict[str, ServiceProcess], chunk: list[CourtEvent]) -> None:
        try:
            assert postgres.stop() and not postgres.answers()
            publish(hub_settings, chunk)  # the stream goes on while the database is away
            # Down until every service has retried three times, each time waiting longer.
            wait_until(
                lambda: all(retries(s) and min(map(len, retries(s).values())) >= 3 for s in services.values()),
                120,
                lambda: f"retries logged: { {n: retries(s) for n, s in services.items()} }",
            )
            for service in services.values():
                service.assert_running()
        finally:
            postgres.start()
        for name, service in services.items():
            for process, waits in retries(service).items():
                first = waits[:3]
                backs_off = all(a < b for a, b in itertools.pairwise(first))
                assert backs_off, f"{name} {process} retried without backing off: {first}"

    stream_through_outage(hub_settings, tmp_path, ("land", "tax"), 81, outage)
