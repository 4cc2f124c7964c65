"""The check service under faults: PostgreSQL stopped while it answers, and SIGKILL under load. A BLOCKED answer
is given only once its record is durable, so every answered block ends in the interceptions table and on the
feedback topic exactly once."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from hub.agency.service import open_database
from hub.config import Settings
from tests.check_service import CheckService, add_key
from tests.integration.helpers import feedback_records, publish, run_agency_once
from tests.integration.test_agencies import court
from tests.reliability.support import managed, wait_until
from tests.support import PERSON, PERSON_ID, REP_ID

pytestmark = pytest.mark.reliability

AGENCY = "transport"
BLOCK = {"subject": PERSON_ID, "measure": "AIR_TRAVEL_RESTRICTED"}


def _recorded(settings: Settings) -> list[str]:
    db = open_database(settings, AGENCY)
    with db.connect() as conn:
        ids = [str(r[0]) for r in conn.execute(text("select event_id from interceptions"))]
    db.dispose()
    return ids


def _forwarded_once(settings: Settings, recorded: list[str]) -> None:
    assert run_agency_once(settings, AGENCY) == 0
    sent = [f.event_id for f in feedback_records(settings, AGENCY) if f.type == "InterceptionRecorded"]
    assert sorted(sent) == sorted(recorded), "each record on the feedback topic exactly once"


def _metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def _blocks(client: httpx.Client, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        answer = client.post("/v1/checks", json=BLOCK).json()
        assert answer["decision"] == "BLOCKED", answer
        ids.append(answer["interception_id"])
    return ids


@pytest.fixture
def listed(hub_settings: Settings) -> tuple[Settings, str]:
    publish(hub_settings, [court("Included", "M", 1, PERSON)])
    assert run_agency_once(hub_settings, AGENCY) == 0
    return hub_settings, add_key(hub_settings, AGENCY, "railway-12306")


@pytest.mark.timeout(600)
def test_with_postgres_stopped_checks_go_on_blocks_are_journaled_and_land_once_when_it_returns(listed, tmp_path: Path):
    settings, key = listed
    postgres = managed(settings, "postgres")
    answered: list[str] = []
    service = CheckService(settings, AGENCY, tmp_path / "serve.log", HUB_CHECK_MAX_INDEX_AGE_SECONDS="3")
    second = CheckService(settings, AGENCY, tmp_path / "serve-2.log")
    try:
        service.start()
        with service.client(key) as client:
            answered += _blocks(client, 20)
            assert postgres.stop() and not postgres.answers()
            stopped = time.time()
            try:
                answered += _blocks(client, 50)
                assert client.post("/v1/checks", json={**BLOCK, "subject": REP_ID}).json()["decision"] == "ALLOWED"
                assert _metric(client, "hub_interceptions_journaling") == 1
                assert _metric(client, "hub_interceptions_pending") >= 50
                wait_until(lambda: client.get("/readyz").status_code == 503, 30, lambda: client.get("/readyz").text)
                late = client.post("/v1/checks", json=BLOCK).json()
                answered.append(late["interception_id"])
                assert dt.datetime.fromisoformat(late["index_as_of"]).timestamp() < stopped + 1, "its age is told"
            finally:
                postgres.start()
            wait_until(lambda: _metric(client, "hub_interceptions_pending") == 0, 60, lambda: service.tail())
            wait_until(lambda: client.get("/readyz").status_code == 200, 60, lambda: client.get("/readyz").text)
        assert sorted(_recorded(settings)) == sorted(answered), "every answered block is in the table, once"

        # SIGKILL while the database is away: the journal survives the process, the next instance replays it.
        with service.client(key) as client:
            assert postgres.stop()
            try:
                during = _blocks(client, 30)
                service.kill()
            finally:
                postgres.start()
        answered += during
        second.start()
        wait_until(lambda: set(during) <= set(_recorded(settings)), 60, lambda: second.tail())
        assert sorted(_recorded(settings)) == sorted(answered)
        assert second.stop() == 0
    finally:
        service.discard()
        second.discard()
    _forwarded_once(settings, answered)


@pytest.mark.timeout(600)
def test_sigkill_under_load_loses_no_answered_block(listed, tmp_path: Path):
    settings, key = listed
    service = CheckService(settings, AGENCY, tmp_path / "serve.log").start()
    answered: list[str] = []
    asked = [0]
    lock = threading.Lock()
    halt = threading.Event()

    def caller() -> None:
        with service.client(key) as client:
            while not halt.is_set():
                with lock:
                    asked[0] += 1
                try:
                    reply = client.post("/v1/checks", json=BLOCK)
                except httpx.TransportError:
                    return
                with lock:
                    answered.append(reply.json()["interception_id"])

    callers = [threading.Thread(target=caller) for _ in range(8)]
    try:
        for t in callers:
            t.start()
        wait_until(lambda: len(answered) >= 300, 60, lambda: f"{len(answered)} answers")
        service.kill()
        halt.set()
        for t in callers:
            t.join(timeout=60)
    finally:
        halt.set()
        service.discard()
    recorded = set(_recorded(settings))
    assert len(answered) == len(set(answered)) >= 300
    assert set(answered) <= recorded, f"{len(set(answered) - recorded)} answered blocks have no record"
    unanswered = asked[0] - len(answered)
    assert len(recorded) - len(answered) <= unanswered <= len(callers), (
        "a record without an answer is only a request in flight at the kill"
    )
    _forwarded_once(settings, sorted(recorded))
