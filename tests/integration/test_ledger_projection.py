"""The report's projection on the real database: kept by the ledger, read by `hub ledger report`, and always
the report the whole history judged at once gives (hub/ledger/projection.py)."""

from __future__ import annotations

import copy
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from hub.domain.events import parse_event
from hub.domain.history import entry_states
from hub.domain.rules import judge
from hub.ledger.report import build_report
from hub.ledger.service import history, read_database
from tests.integration.helpers import ledger_query, publish, run_agency_once, run_ledger_once, simulated
from tests.support import court_sample, hub_env, run_hub


def _whole(settings, as_of):
    """The report as the whole history judged at once gives it."""
    db = read_database(settings)
    with db.connect() as conn:
        court, feedback = history(conn)
    db.dispose()
    violations = judge(court, feedback, as_of, settings.deadlines(), settings.agencies)
    states: dict[str, int] = {}
    for view in entry_states(court, as_of, as_of).values():
        states[view["state"]] = states.get(view["state"], 0) + 1
    return [v.as_dict() for v in violations], dict(sorted(states.items()))


def _same(settings, as_of, projected=True):
    report = build_report(settings, as_of)
    assert report.projected is projected
    violations, states = _whole(settings, as_of)
    assert [v.as_dict() for v in report.violations] == violations
    assert report.entries == states
    return report


def _head(settings):
    return ledger_query(settings, "select upto_seq, judged_at from report_head")[0]


def _fresh_inclusion(settings, when: dt.datetime) -> None:
    """An entry included now, answered by no agency yet: its agencies' deadlines lie ahead."""
    entry = f"E-NOW-{uuid.uuid4().hex[:8]}"
    for kind, offset in (("RiskWarningIssued", -60), ("Included", 0)):
        record = copy.deepcopy(court_sample(kind))
        moment = (when + dt.timedelta(seconds=offset)).isoformat()
        record.update(event_id=str(uuid.uuid4()), entry_id=entry, occurred_at=moment)
        if kind == "RiskWarningIssued":
            record["served_at"] = record["occurred_at"]
        publish(settings, [parse_event(record)], history=False)


def test_the_ledger_keeps_the_projection_and_the_report_is_the_whole_judgement(hub_settings):
    settings = hub_settings.model_copy(update={"agencies": ("bank", "tax")})
    publish(settings, simulated(300, seed=31, breach_rate=0.1))
    for agency in settings.agencies:
        assert run_agency_once(settings, agency) == 0
    assert run_ledger_once(settings) == 0
    last = ledger_query(settings, "select max(seq) from ledger_events")[0][0]
    assert _head(settings).upto_seq == last
    components = ledger_query(settings, "select count(*) from report_components where violations <> '[]'")[0][0]
    assert components > 0

    now = dt.datetime.now(dt.UTC)
    report = _same(settings, now)
    assert len(report.violations) >= components

    # A lag: the report judges the rows past the projection's head itself, reading only.
    ledger_query(settings, "update report_head set upto_seq = :u", u=last // 2)
    _same(settings, dt.datetime.now(dt.UTC))
    assert _head(settings).upto_seq == last // 2

    # An instant before the projection's last judgement: the whole history, judged at once.
    _same(settings, now - dt.timedelta(days=30), projected=False)


def test_a_deadline_that_passes_after_the_projection_shows_in_the_report(hub_settings):
    settings = hub_settings.model_copy(update={"agencies": ("bank",)})
    publish(settings, simulated(40, seed=32))
    assert run_agency_once(settings, "bank") == 0
    now = dt.datetime.now(dt.UTC)
    _fresh_inclusion(settings, now)
    assert run_ledger_once(settings) == 0
    horizon = ledger_query(settings, "select min(horizon) from report_components where horizon is not null")[0][0]
    assert horizon is not None and horizon > now  # the bank's day to answer the fresh inclusion

    today = _same(settings, dt.datetime.now(dt.UTC))
    assert not [v for v in today.violations if v.rule == "SANCTION_NOT_APPLIED" and v.entry_id.startswith("E-NOW")]
    later = _same(settings, now + dt.timedelta(days=3))
    overdue = [v for v in later.violations if v.rule == "SANCTION_NOT_APPLIED" and v.entry_id.startswith("E-NOW")]
    assert [v.party for v in overdue] == ["agency:bank"]

    # The ledger judges the expired component again at its next tick, and stores it so.
    assert run_ledger_once(settings.model_copy(update={})) == 0
    _same(settings, dt.datetime.now(dt.UTC))


def test_other_deadline_settings_are_not_answered_from_the_projection(hub_settings):
    publish(hub_settings, simulated(60, seed=33, breach_rate=0.2))
    assert run_ledger_once(hub_settings) == 0
    stricter = hub_settings.model_copy(update={"agency_deadline_hours": 1.0})
    _same(stricter, dt.datetime.now(dt.UTC), projected=False)
    assert run_ledger_once(stricter) == 0  # the ledger, started with them, judges everything again
    assert _head(stricter).upto_seq == ledger_query(stricter, "select max(seq) from ledger_events")[0][0]
    _same(stricter, dt.datetime.now(dt.UTC))


def _children(pid: int) -> list[int]:
    """Of every thread: a child started by a thread is listed under that thread only."""
    found = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in listing.read_text().split()]
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _projectors(ledger: int) -> list[int]:
    return [c for c in _children(ledger) if "project" in Path(f"/proc/{c}/cmdline").read_text()]


def _projected_to_the_end(settings, at_least: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = ledger_query(settings, "select coalesce(max(seq), 0) from ledger_events")[0][0]
        head = ledger_query(settings, "select upto_seq from report_head")
        if rows > at_least and head and head[0].upto_seq == rows:
            return
        time.sleep(0.5)
    raise AssertionError(f"the projector beside the running ledger did not reach its last row in {seconds:.0f} s")


def test_a_running_ledger_keeps_the_projection_beside_itself_restarts_it_and_takes_it_along_when_killed(hub_settings):
    publish(hub_settings, simulated(200, seed=34))
    hub = str(Path(sys.executable).parent / "hub")
    ledger = subprocess.Popen(
        [hub, "ledger", "run"], env=hub_env(hub_settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _projected_to_the_end(hub_settings, 500, 90)
        projectors = _projectors(ledger.pid)
        assert len(projectors) == 1
        assert os.getpriority(os.PRIO_PROCESS, projectors[0]) == 19
        _same(hub_settings, dt.datetime.now(dt.UTC))

        # A projector that dies is started again, and projects what comes after.
        os.kill(projectors[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _projectors(ledger.pid) in ([], projectors):
            time.sleep(0.2)
        projectors = _projectors(ledger.pid)
        assert len(projectors) == 1 and _alive(projectors[0]), "the ledger did not start its projector again"
        rows = ledger_query(hub_settings, "select max(seq) from ledger_events")[0][0]
        publish(hub_settings, simulated(50, seed=36))
        _projected_to_the_end(hub_settings, rows, 90)
        _same(hub_settings, dt.datetime.now(dt.UTC))
    finally:
        ledger.send_signal(signal.SIGKILL)
        ledger.wait()
    deadline = time.monotonic() + 30
    while _alive(projectors[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(projectors[0]), "the projector outlived its ledger"


def test_hub_ledger_project_once_brings_the_projection_to_the_last_row(hub_settings):
    publish(hub_settings, simulated(60, seed=35))
    assert run_ledger_once(hub_settings) == 0
    ledger_query(hub_settings, "delete from report_head")
    done = run_hub(hub_settings, "ledger", "project", "--once")
    assert done.returncode == 0, done.stderr
    rows = ledger_query(hub_settings, "select max(seq) from ledger_events")[0][0]
    assert f"{rows} rows projected" in done.stdout
    assert _head(hub_settings).upto_seq == rows
    _same(hub_settings, dt.datetime.now(dt.UTC))
