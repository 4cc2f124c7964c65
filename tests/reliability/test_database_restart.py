"""PostgreSQL stopped and restarted mid-stream: the running services retry with growing back-off while it is
gone, carry on by themselves when it is back, and nothing is lost or applied twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub import devstack
from hub.config import Settings
from hub.devstack.postgres import LocalPostgres
from hub.devstack.state import locked
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

AGENCIES = ("land", "tax")
RETRYING = "database unavailable; retrying"


def managed_postgres(settings: Settings) -> LocalPostgres:
    """The session's own PostgreSQL, to stop and start; an external one (HUB_DATABASE_URL) is not ours to stop."""
    _kafka, postgres = devstack._components(settings)
    if postgres is None:
        pytest.skip("the database is not managed by `hub dev` here (HUB_DATABASE_URL is set)")
    return postgres


def retries(service: ServiceProcess) -> list[float]:
    """The back-off of each retry the service logged, in order."""
    waits = []
    for line in service.log_text().splitlines():
        if RETRYING in line and line.startswith("{"):
            waits.append(json.loads(line)["retry_in"])
    return waits


@pytest.mark.timeout(900)
def test_database_restart_mid_stream_is_retried_with_backoff_and_recovered_unaided_with_nothing_lost(
    hub_settings: Settings, tmp_path: Path
):
    """A database failover must cost a pause, never a record, a duplicate or a crashed service."""
    postgres = managed_postgres(hub_settings)
    events = simulated(2_000, seed=81)
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
            publish(hub_settings, chunks[1])  # and at once the database goes: the rest of the stream comes after

            with locked(hub_settings.state_dir):
                try:
                    assert postgres.stop() and not postgres.answers()
                    publish(hub_settings, chunks[2])  # the stream goes on while the database is away
                    # Down until every service has retried three times, each time waiting longer.
                    wait_until(
                        lambda: all(len(retries(s)) >= 3 for s in services.values()),
                        120,
                        lambda: f"retries logged: { {n: retries(s) for n, s in services.items()} }",
                    )
                    for service in services.values():
                        service.assert_running()
                finally:
                    postgres.start()
            for name, service in services.items():
                first = retries(service)[:3]
                assert first[0] < first[1] < first[2], f"{name} retried without backing off: {first}"
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
    assert dead_letters(hub_settings) == []
