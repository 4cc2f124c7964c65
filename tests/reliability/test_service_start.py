"""Services started while their servers are down: a started service says it is waiting, waits with growing back-off
and, once the server answers, starts and catches up with nothing lost; `--once` gives up after
HUB_CONNECT_TIMEOUT_SECONDS with one line naming the server and what to do (exit 3), never a traceback."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from pathlib import Path

import pytest

from hub.config import Settings
from hub.devstack.state import locked
from hub.errors import EXIT_UNAVAILABLE
from tests.integration.helpers import agency_restrictions, publish, simulated
from tests.reliability.support import (
    Progress,
    ServiceProcess,
    assert_agency_matches,
    expected_states,
    managed,
    running,
    wait_until,
)

pytestmark = pytest.mark.reliability

TIMEOUT = 4  # HUB_CONNECT_TIMEOUT_SECONDS: what `--once` waits; a started service ignores it
MARGIN = 15  # starting Python and importing
DOWN_FOR = 10.0  # seconds the server stays down after the service started


def waits(service: ServiceProcess, server: str) -> list[dict]:
    """The service's structured "waiting for <server>" warnings, in order."""
    return [
        json.loads(line)
        for line in service.log_text().splitlines()
        if line.startswith("{") and f'"waiting for {server} at' in line
    ]


def once_fails_fast(service: ServiceProcess) -> str:
    """`--once` while the server is down: exit 3 after the connect timeout; its one error line."""
    began = time.monotonic()
    result = subprocess.run(
        service.command(once=True),
        env=service.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - began
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr[-3000:]
    assert TIMEOUT <= took < TIMEOUT + MARGIN, f"gave up after {took:.1f}s"
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def catches_up(settings: Settings, service: ServiceProcess, agency: str, events: list) -> None:
    """Everything applied and delivered, a clean stop; the records, restrictions and feedback the pure function says."""
    progress = Progress(settings)
    try:
        wait_until(
            lambda: (
                service.assert_running() or (progress.applied(agency) == len(events) and progress.unsent(agency) == 0)
            ),
            300,
            lambda: (
                f"applied {progress.applied(agency)} of {len(events)}, unsent {progress.unsent(agency)}:\n"
                + service.tail()
            ),
        )
    finally:
        progress.close()
    assert service.stop() == 0, service.tail()
    assert service.starts == 1, "the service was never restarted by hand"
    expected = expected_states(settings, events, [agency])[agency]
    assert_agency_matches(settings, agency, expected, len(events))  # records, feedback complete, each event once
    now = dt.datetime.now(dt.UTC)
    assert agency_restrictions(settings, agency) == expected.restrictions(now)


@pytest.mark.timeout(600)
def test_a_service_started_while_postgresql_is_down_waits_for_it_then_catches_up_and_once_gives_up_in_one_line(
    hub_settings: Settings, tmp_path: Path
):
    """A service that starts before its database (a host booting, a failover) must wait, not crash."""
    postgres = managed(hub_settings, "postgres")
    agency = "bank"
    events = simulated(400, seed=93)
    port = hub_settings.local_stack()["pg_port"]
    database = f"{hub_settings.namespace}{agency}"
    service = ServiceProcess(hub_settings, agency, tmp_path, HUB_CONNECT_TIMEOUT_SECONDS=str(TIMEOUT))
    with running([service]):
        with locked(hub_settings.state_dir):
            assert postgres.stop() and not postgres.answers()
            try:
                assert once_fails_fast(service) == (
                    f"error: PostgreSQL at 127.0.0.1:{port} is not answering (connection refused); start it with "
                    "`hub dev up`, or set HUB_DATABASE_URL"
                )
                service.start()
                time.sleep(DOWN_FOR)
                service.assert_running()
            finally:
                postgres.start()
        waited = waits(service, "PostgreSQL")
        assert len(waited) >= 3, service.tail()
        assert waited[0]["event"] == (
            f"waiting for PostgreSQL at 127.0.0.1:{port} (database {database}): connection refused; retrying in 0.5s"
        )
        assert waited[0]["level"] == "warning" and waited[0]["reason"] == "connection refused"
        backoff = [w["retry_in"] for w in waited]
        assert backoff[:4] == [0.5, 1, 2, 4][: len(backoff[:4])], backoff
        publish(hub_settings, events)
        catches_up(hub_settings, service, agency, events)


@pytest.mark.timeout(600)
def test_a_service_started_while_kafka_is_down_waits_for_it_then_catches_up(hub_settings: Settings, tmp_path: Path):
    kafka = managed(hub_settings, "kafka")
    agency = "tax"
    events = simulated(400, seed=94)
    service = ServiceProcess(hub_settings, agency, tmp_path, HUB_CONNECT_TIMEOUT_SECONDS=str(TIMEOUT))
    bootstrap = hub_settings.bootstrap()
    with running([service]):
        with locked(hub_settings.state_dir):
            assert kafka.stop() and not kafka.answers()
            try:
                assert once_fails_fast(service) == (
                    f"error: Kafka at {bootstrap} is not answering (connection refused); start it with `hub dev up`, "
                    "or set HUB_KAFKA_BOOTSTRAP"
                )
                service.start()
                time.sleep(DOWN_FOR)
                service.assert_running()
            finally:
                kafka.start()
        waited = waits(service, "Kafka")
        assert len(waited) >= 2, service.tail()
        assert waited[0]["event"] == f"waiting for Kafka at {bootstrap}: connection refused; retrying in 0.5s"
        publish(hub_settings, events)
        catches_up(hub_settings, service, agency, events)
