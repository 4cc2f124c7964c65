import csv
import datetime as dt
import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.calendar import LegalCalendar, Period
from hub.domain.events import parse_event
from hub.domain.rules import COURT_RULES, Deadlines
from producers.parsing import CSV_COLUMNS, UnknownFormatError, read_events_file
from producers.simulator import HISTORY_INJECTABLE, INJECTABLE, SimulationConfig, simulate

CHINA = dt.timezone(dt.timedelta(hours=8))
LIVE_AT = dt.datetime(2026, 3, 2, 10, 30, 15, 123456, tzinfo=CHINA)
# Around weekends and the long holidays, when a legal period runs longest past its nominal days.
LIVE_TIMES = [
    LIVE_AT,
    dt.datetime(2026, 2, 20, 9, 0, tzinfo=CHINA),  # inside the Spring Festival holiday
    dt.datetime(2026, 10, 5, 23, 59, tzinfo=CHINA),  # inside the National Day holiday
    dt.datetime(2026, 10, 12, 1, 0, tzinfo=CHINA),  # just after it
    dt.datetime(2026, 1, 4, 2, 0, tzinfo=dt.UTC),  # a Sunday, given in UTC
    dt.datetime(2026, 5, 6, 8, 0, tzinfo=CHINA),  # after the Labour Day holiday
]
TIME_FIELDS = ("occurred_at", "served_at", "received_at", "performed_at")


def at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def stated_times(record: dict) -> list[dt.datetime]:
    times = [at(record[name]) for name in TIME_FIELDS if record.get(name)]
    if record.get("employer_notified"):
        times.append(at(record["employer_notified"]["notified_at"]))
    return times


def judged(events: list[dict], d: Deadlines, as_of: dt.datetime) -> set[tuple[str, str]]:
    """The court breaches in `events` judged by their own dates, as the ledger counts them as of `as_of`:
    an act at or before the due instant of its period is on time, one after it is late. A second event
    under an event id already seen is no act of its own (the ledger keeps it as evidence only)."""
    found = set()
    by_entry = defaultdict(list)
    seen = set()
    for record in events:
        if record["event_id"] not in seen:
            seen.add(record["event_id"])
            by_entry[record["entry_id"]].append(record)
    for entry_id, records in by_entry.items():
        included = [r for r in records if r["type"] == "Included"]
        if not included:
            found.add(("ORPHAN_EVENT", entry_id))
            continue
        (inc,) = included
        inclusion = at(inc["occurred_at"])
        if not any(at(r["served_at"]) <= inclusion for r in records if r["type"] == "RiskWarningIssued"):
            found.add(("INCLUDED_WITHOUT_RISK_WARNING", entry_id))
        if inc["disclosure"] == "RESTRICTED" and not inc["employer_notified"]:
            found.add(("RESTRICTED_WITHOUT_EMPLOYER_NOTICE", entry_id))
        requests = [r for r in records if r["type"] == "CorrectionRequested"]
        decisions = [r for r in records if r["type"] == "CorrectionDecided"]
        revocations = [at(r["occurred_at"]) for r in records if r["type"] == "Revoked"]
        for request, decision in zip(requests, decisions, strict=True):
            received = at(request["received_at"])
            if received > d.due(at(inc["served_at"]), d.correction_request):
                found.add(("ORPHAN_EVENT", entry_id))
            if at(decision["occurred_at"]) > d.due(received, d.review):
                found.add(("CORRECTION_REVIEW_OVERDUE", entry_id))
            if decision["outcome"] == "UPHELD":
                decided = at(decision["occurred_at"])
                if not revocations or min(revocations) > d.due(decided, d.revoke):
                    found.add(("CORRECTION_UPHELD_NOT_REVOKED", entry_id))
        closing = next((r for r in records if r["type"] in ("Shielded", "Revoked")), None)
        closed = at(closing["occurred_at"]) if closing else None
        performed = closing and closing["type"] == "Shielded" and closing["performed_at"]
        if performed and closed > d.due(at(performed), d.shield):
            found.add(("SHIELD_OVERDUE", entry_id))
        if inc["period_months"] is not None:
            end = d.calendar.months_end(inclusion, inc["period_months"])
            due = d.due(end - dt.timedelta(microseconds=1), d.period_grace)
            if (closed is None and due < as_of) or (closed is not None and closed > due):
                found.add(("PERIOD_EXPIRED_NOT_SHIELDED", entry_id))
    return found


def recorded_late(live: list[dict], live_at: dt.datetime, d: Deadlines) -> set[tuple[str, str]]:
    """The breaches of events recorded at `live_at`: published after their publication period, or a
    shielding recorded after the shielding deadline."""
    found = set()
    for r in live:
        if live_at > d.due(at(r["occurred_at"]), d.publication):
            found.add(("PUBLICATION_LATE", r["entry_id"]))
        if r["type"] == "Shielded" and r["performed_at"] and live_at > d.due(at(r["performed_at"]), d.shield):
            found.add(("SHIELD_OVERDUE", r["entry_id"]))
    return found


def injected(result) -> set[tuple[str, str]]:
    return {(b["rule"], b["entry_id"]) for b in result.breaches}


def copies(result) -> list[dict]:
    """The live events that reuse an event id of the history."""
    history = {r["event_id"] for r in result.events}
    return [r for r in result.live if r["event_id"] in history]


def fresh(result) -> list[dict]:
    """The live events that are court acts of their own (every one but the conflicting copy)."""
    history = {r["event_id"] for r in result.events}
    return [r for r in result.live if r["event_id"] not in history]


def conflicts(result) -> set[tuple[str, str]]:
    """EVENT_ID_CONFLICT as the ledger finds it: an event id of the history published again, other content."""
    history = {r["event_id"]: r for r in result.events}
    return {("EVENT_ID_CONFLICT", r["entry_id"]) for r in copies(result) if r != history[r["event_id"]]}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32), breach_rate=st.sampled_from([0.0, 0.05, 0.5]))
def test_every_simulated_event_validates(seed, breach_rate):
    result = simulate(SimulationConfig(debtors=40, seed=seed, breach_rate=breach_rate, live_at=LIVE_AT, live_debtors=3))
    assert result.events and result.live
    for record in result.events + result.live:
        parse_event(json.loads(json.dumps(record, ensure_ascii=False)), family="court")


def test_same_seed_same_history_other_seed_other_history():
    a = simulate(SimulationConfig(debtors=300, seed=7))
    b = simulate(SimulationConfig(debtors=300, seed=7))
    c = simulate(SimulationConfig(debtors=300, seed=8))
    assert a.events == b.events and a.breaches == b.breaches
    assert a.events != c.events
    assert a.live == [] and c.live == []


def test_same_config_same_bytes_live_part_included(tmp_path):
    config = SimulationConfig(debtors=300, seed=7, breach_rate=0.05, live_at=LIVE_AT, live_debtors=12)
    files = []
    for run in ("a", "b"):
        result = simulate(config)
        result.write(tmp_path / f"{run}.jsonl")
        result.write_live(tmp_path / f"{run}-live.jsonl")
        result.write_breaches(tmp_path / f"{run}-breaches.json")
        files.append([(tmp_path / f"{run}{s}").read_bytes() for s in (".jsonl", "-live.jsonl", "-breaches.json")])
    assert files[0] == files[1]
    live = files[0][1]
    # A warning and an inclusion each, one shielding, one inclusion of the history again with other content.
    assert len(live.splitlines()) == len(result.live) == 2 * 12 + 2
    assert [json.loads(line) for line in live.decode().splitlines()] == result.live
    other = simulate(SimulationConfig(debtors=300, seed=7, breach_rate=0.05, live_at=LIVE_AT + dt.timedelta(hours=1)))
    assert other.live == [], "no live debtors, nothing live"
    moved = simulate(replace(config, live_at=LIVE_AT + dt.timedelta(hours=1)))
    assert moved.live != result.live


def test_history_does_not_depend_on_the_live_settings(tmp_path):
    plain = simulate(SimulationConfig(debtors=400, seed=21, breach_rate=0.1))
    plain.write(tmp_path / "plain.jsonl")
    for live_at in LIVE_TIMES[:3]:
        live = simulate(SimulationConfig(debtors=400, seed=21, breach_rate=0.1, live_at=live_at, live_debtors=9))
        live.write(tmp_path / "live.jsonl")
        assert (tmp_path / "live.jsonl").read_bytes() == (tmp_path / "plain.jsonl").read_bytes()
        assert live.events == plain.events
        assert injected(plain) < injected(live)


@pytest.mark.parametrize("live_at", LIVE_TIMES)
def test_every_live_time_is_before_publication(live_at):
    result = simulate(SimulationConfig(debtors=200, seed=5, breach_rate=0.2, live_at=live_at, live_debtors=20))
    assert len(result.live) == 2 * 20 + 2
    for record in result.live:
        for time in stated_times(record):
            assert time < live_at, record
    times = [at(r["occurred_at"]) for r in result.live]
    assert times == sorted(times), "live events come in publication order"
    history_ids = {r["event_id"] for r in result.events}
    (conflict,) = copies(result)
    assert history_ids & {r["event_id"] for r in result.live} == {conflict["event_id"]}, "only the conflicting copy"


def test_history_is_realistic():
    result = simulate(SimulationConfig(debtors=2000, seed=3, breach_rate=0.05, live_at=LIVE_AT, live_debtors=10))
    types = {r["type"] for r in result.events}
    assert types == {"RiskWarningIssued", "Included", "CorrectionRequested", "CorrectionDecided", "Shielded", "Revoked"}
    debtors = {}
    for r in result.events:
        debtors.setdefault(r["debtor"]["id_number"], set()).add(r["entry_id"])
    kinds = {r["debtor"]["kind"] for r in result.events}
    assert kinds == {"PERSON", "ORG"}
    assert sum(len(e) > 1 for e in debtors.values()) > 100, "some debtors have several entries"
    outcomes = {r.get("outcome") for r in result.events if r["type"] == "CorrectionDecided"}
    assert outcomes == {"UPHELD", "REJECTED"}
    assert any(
        r["type"] == "Included" and r["disclosure"] == "RESTRICTED" and r["employer_notified"] for r in result.events
    )
    reps = {r["debtor"]["legal_representative"]["id_number"] for r in result.events if r["debtor"]["kind"] == "ORG"}
    assert reps & set(debtors), "some legal representatives are debtors themselves"
    assert {b["rule"] for b in result.breaches} == set(INJECTABLE)
    plain = simulate(SimulationConfig(debtors=2000, seed=3, breach_rate=0.05))
    assert {b["rule"] for b in plain.breaches} == set(HISTORY_INJECTABLE), "the history alone has all but one"


def test_injectable_covers_every_court_rule():
    assert set(COURT_RULES) <= set(INJECTABLE)
    assert "PUBLICATION_LATE" in INJECTABLE and "PUBLICATION_LATE" not in HISTORY_INJECTABLE
    assert "EVENT_ID_CONFLICT" in INJECTABLE and "EVENT_ID_CONFLICT" not in HISTORY_INJECTABLE
    assert len(set(INJECTABLE)) == len(INJECTABLE)


@pytest.mark.parametrize("live_at", LIVE_TIMES)
def test_one_history_inclusion_is_published_again_with_other_content(live_at):
    config = SimulationConfig(debtors=300, seed=23, breach_rate=0.05, live_at=live_at, live_debtors=6)
    result = simulate(config)
    history = {r["event_id"]: r for r in result.events}
    (conflict,) = copies(result)
    original = history[conflict["event_id"]]
    assert conflict["type"] == "Included"
    assert conflict != original and {k for k in conflict if conflict[k] != original[k]} == {"obligation"}
    assert conflict.keys() == original.keys()
    event = parse_event(json.loads(json.dumps(conflict, ensure_ascii=False)), family="court")
    assert event.event_id == original["event_id"] and event != parse_event(original, family="court")
    assert all(time < live_at for time in stated_times(conflict))
    breaches = [b for b in result.breaches if b["rule"] == "EVENT_ID_CONFLICT"]
    assert breaches == [
        {
            "rule": "EVENT_ID_CONFLICT",
            "party": f"court:{original['court_code']}",
            "entry_id": original["entry_id"],
            "detail": f"event id {original['event_id']} published again with different content",
        }
    ]
    # An entry with nothing else to judge: no breach of its own, untouched by the other live events.
    assert {b["rule"] for b in result.breaches if b["entry_id"] == original["entry_id"]} == {"EVENT_ID_CONFLICT"}
    assert original["entry_id"] not in {r["entry_id"] for r in fresh(result)}
    assert simulate(config).live == result.live, "the same choice every time"


def test_history_never_reuses_an_event_id_and_a_rate_of_zero_never_conflicts():
    for rate in (0.3, 1.0):
        plain = simulate(SimulationConfig(debtors=300, seed=29, breach_rate=rate))
        assert "EVENT_ID_CONFLICT" not in {b["rule"] for b in plain.breaches}
        assert len({r["event_id"] for r in plain.events}) == len(plain.events)
    everything = simulate(SimulationConfig(debtors=100, seed=29, breach_rate=1.0, live_at=LIVE_AT, live_debtors=4))
    assert len(copies(everything)) == 1, "every entry breached: the copy is taken from one of them"
    none = simulate(SimulationConfig(debtors=300, seed=29, breach_rate=0.0, live_at=LIVE_AT, live_debtors=4))
    assert copies(none) == [] and none.breaches == []


def test_the_history_and_live_part_in_one_file_are_refused_naming_both_lines(tmp_path):
    """What `hub court publish` says of the two together: the one conflicting reuse, and nothing else."""
    result = simulate(SimulationConfig(debtors=200, seed=31, breach_rate=0.05, live_at=LIVE_AT, live_debtors=5))
    path = tmp_path / "all.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.events + result.live), encoding="utf-8"
    )
    (conflict,) = copies(result)
    first = 1 + next(i for i, r in enumerate(result.events) if r["event_id"] == conflict["event_id"])
    again = 1 + len(result.events) + result.live.index(conflict)
    parsed = read_events_file(path)
    assert [(p.line, p.field) for p in parsed.problems] == [(again, "event_id")]
    assert parsed.problems[0].reason == (
        f"{conflict['event_id']} is used again with different content (first on line {first}): "
        "an event id names one court act"
    )
    assert len(parsed.events) == len(result.events) + len(result.live) - 1 and parsed.duplicates == 0


def test_events_are_in_time_order_and_each_entry_starts_with_warning_or_inclusion():
    result = simulate(SimulationConfig(debtors=500, seed=11, breach_rate=0.1))
    times = [parse_event(r).occurred_at for r in result.events]
    assert times == sorted(times)
    first = {}
    for r in result.events:
        first.setdefault(r["entry_id"], r["type"])
    orphans = {b["entry_id"] for b in result.breaches if b["rule"] == "ORPHAN_EVENT"}
    assert {t for e, t in first.items() if e not in orphans} <= {"RiskWarningIssued", "Included"}


WORKING_DAYS = Deadlines(
    calendar=LegalCalendar.of(holidays=[dt.date(2024, 5, 6), dt.date(2025, 3, 3)]),
    review=Period(3, "working days"),
    revoke=Period(2, "working days"),
    shield=Period(5),
    period_grace=Period(1, "working days"),
    correction_request=Period(7),
)


@pytest.mark.parametrize("deadlines", [Deadlines(), WORKING_DAYS], ids=["default", "working-days"])
def test_on_time_acts_meet_their_due_instant_and_injected_ones_miss_it(deadlines):
    """The ledger's count, made from the events themselves with the legal calendar, is exactly the list
    of injected breaches: every on-time act at or before its due instant, every late one after it."""
    seen = set()
    for seed, live_at in zip(range(101, 107), LIVE_TIMES, strict=True):
        config = SimulationConfig(
            debtors=350, seed=seed, breach_rate=0.3, deadlines=deadlines, live_at=live_at, live_debtors=6
        )
        result = simulate(config)
        history_breaches = injected(simulate(replace(config, live_at=None)))
        assert history_breaches < injected(result)
        assert judged(result.events, deadlines, live_at) == history_breaches
        # The live events add nothing by their own dates; recorded at live_at, exactly the live breaches.
        assert judged(result.events + result.live, deadlines, live_at) == history_breaches
        assert recorded_late(fresh(result), live_at, deadlines) | conflicts(result) == (
            injected(result) - history_breaches
        )
        seen |= {rule for rule, _ in injected(result)}
    assert seen == set(INJECTABLE), "every injectable breach was checked"


@pytest.mark.parametrize("live_at", LIVE_TIMES)
def test_late_live_publications(live_at):
    d = Deadlines()
    result = simulate(SimulationConfig(debtors=300, seed=17, breach_rate=0.02, live_at=live_at, live_debtors=8))
    live_breaches = [b for b in result.breaches if b["rule"] == "PUBLICATION_LATE"]
    assert len(live_breaches) == 2
    assert all(b["party"] == f"court:{b['entry_id'].split('-')[1]}" for b in live_breaches)
    by_entry = defaultdict(list)
    for r in fresh(result):
        by_entry[r["entry_id"]].append(r)
    late = [
        e
        for e, records in by_entry.items()
        if any(live_at > d.due(at(r["occurred_at"]), d.publication) for r in records)
    ]
    assert sorted(late) == sorted(b["entry_id"] for b in live_breaches)
    # The late shielding: a plain history entry, active at the end of the history, shielded on time by its date.
    shielded = [r for r in result.live if r["type"] == "Shielded"]
    assert len(shielded) == 1
    (shield,) = shielded
    performed = at(shield["performed_at"])
    assert shield["reason"] == "FULL_PERFORMANCE"
    assert dt.timedelta(days=8) <= live_at - performed
    assert at(shield["occurred_at"]) <= d.due(performed, d.shield) < live_at
    own = [r for r in result.events if r["entry_id"] == shield["entry_id"]]
    assert {r["type"] for r in own} >= {"Included"} and not {r["type"] for r in own} & {"Shielded", "Revoked"}
    assert next(r for r in own if r["type"] == "Included")["period_months"] is None
    assert {b["rule"] for b in result.breaches if b["entry_id"] == shield["entry_id"]} == {
        "PUBLICATION_LATE",
        "SHIELD_OVERDUE",
    }
    assert result.breaches == sorted(result.breaches, key=lambda b: (b["entry_id"], b["rule"]))
    # The late new entry: dated days back, with its warning served before its inclusion.
    (entry,) = [e for e in late if e != shield["entry_id"]]
    warning, inclusion = by_entry[entry]
    assert (warning["type"], inclusion["type"]) == ("RiskWarningIssued", "Included")
    assert at(warning["served_at"]) <= at(inclusion["occurred_at"])
    assert live_at - at(inclusion["occurred_at"]) >= dt.timedelta(days=5)
    # Every other live entry is fresh: within the last six hours, warned then listed.
    for other, records in by_entry.items():
        if other in late:
            continue
        warning, inclusion = records
        assert live_at - dt.timedelta(hours=6) < at(warning["occurred_at"]) <= at(inclusion["occurred_at"]) < live_at
        assert at(warning["served_at"]) <= at(inclusion["occurred_at"])


def test_served_at_on_every_inclusion_and_corrections_within_the_window():
    d = Deadlines()
    for seed in (1, 2, 3):
        result = simulate(SimulationConfig(debtors=600, seed=seed, breach_rate=0.1, live_at=LIVE_AT, live_debtors=10))
        served = {}
        for r in result.events + result.live:
            if r["type"] == "Included":
                inclusion, at_served = at(r["occurred_at"]), at(r["served_at"])
                assert r["served_at"].endswith("+08:00")
                assert inclusion <= at_served <= inclusion + dt.timedelta(days=2)
                served[r["entry_id"]] = at_served
        requests = [r for r in result.events if r["type"] == "CorrectionRequested"]
        assert requests
        for r in requests:
            received = at(r["received_at"])
            assert served[r["entry_id"]] < received <= d.due(served[r["entry_id"]], d.correction_request)


def test_no_breaches_when_rate_is_zero():
    assert simulate(SimulationConfig(debtors=500, seed=5, breach_rate=0.0)).breaches == []


@pytest.mark.parametrize("live_at", LIVE_TIMES[:3])
def test_no_breaches_at_all_when_rate_is_zero_live_part_included(live_at):
    d = Deadlines()
    result = simulate(SimulationConfig(debtors=500, seed=5, breach_rate=0.0, live_at=live_at, live_debtors=15))
    assert result.breaches == []
    assert len(result.live) == 2 * 15 and not any(r["type"] == "Shielded" for r in result.live)
    assert copies(result) == [], "no event id of the history published again"
    assert judged(result.events + result.live, d, live_at) == set()
    assert recorded_late(result.live, live_at, d) == set()


def test_live_settings_are_checked():
    with pytest.raises(ValueError, match="aware"):
        SimulationConfig(debtors=1, seed=1, live_at=dt.datetime(2026, 3, 2, 10))
    with pytest.raises(ValueError, match="live_debtors"):
        SimulationConfig(debtors=1, seed=1, live_at=LIVE_AT, live_debtors=-1)


# -- files: the format the extension names, as `hub court publish` reads it -------------------------------


def test_a_history_written_as_csv_parses_back_to_the_same_events(tmp_path):
    config = SimulationConfig(debtors=300, seed=11, breach_rate=0.2, live_at=LIVE_AT, live_debtors=6)
    result = simulate(config)
    assert any(r["debtor"]["kind"] == "ORG" for r in result.events), "legal representatives are flattened too"
    assert any(r.get("employer_notified") for r in result.events) and any(r.get("period_months") for r in result.events)
    result.write(tmp_path / "history.csv")
    result.write_live(tmp_path / "live.csv")
    for name, records in (("history.csv", result.events), ("live.csv", result.live)):
        path = tmp_path / name
        with open(path, encoding="utf-8", newline="") as handle:
            assert tuple(next(csv.reader(handle))) == CSV_COLUMNS, "the header is the reader's column list"
        parsed = read_events_file(path)
        assert parsed.rejected == [] and parsed.duplicates == 0
        assert parsed.events == [parse_event(r, family="court") for r in records]
    again = simulate(config)
    again.write(tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "history.csv").read_bytes(), "byte for byte"


def test_json_extensions_write_json_lines_and_the_extension_is_read_case_blind(tmp_path):
    result = simulate(SimulationConfig(debtors=50, seed=3))
    for name in ("a.jsonl", "a.json", "a.ndjson", "A.JSONL"):
        result.write(tmp_path / name)
    first = (tmp_path / "a.jsonl").read_bytes()
    assert [json.loads(line) for line in first.decode().splitlines()] == result.events
    assert all((tmp_path / name).read_bytes() == first for name in ("a.json", "a.ndjson", "A.JSONL"))
    result.write(tmp_path / "b.CSV")
    assert read_events_file(tmp_path / "b.CSV").events == read_events_file(tmp_path / "a.jsonl").events


@pytest.mark.parametrize("name", ["history.txt", "history.xml", "history", "history.csv.gz"])
def test_an_unknown_extension_is_refused_naming_the_accepted_ones_and_nothing_is_written(tmp_path, name):
    result = simulate(SimulationConfig(debtors=5, seed=3, live_at=LIVE_AT, live_debtors=1))
    for write in (result.write, result.write_live):
        with pytest.raises(UnknownFormatError, match=r"\.jsonl.*\.json.*\.csv"):
            write(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def _hub(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "HUB_STATE_DIR": str(cwd / "state"), "HUB_LOG_LEVEL": "INFO"}
    return subprocess.run(
        [sys.executable, "-m", "hub", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_simulate_out_csv_round_trips_through_publish_dry_run_and_an_unknown_extension_exits_2(tmp_path):
    simulate_ = ["court", "simulate", "--debtors", "120", "--seed", "5", "--breach-rate", "0.1", "--live", "3"]
    made = _hub(*simulate_, "--out", "history.csv", "--live-out", "live.csv", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    for name in ("history.csv", "live.csv"):
        checked = _hub("court", "publish", "--dry-run", name, cwd=tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert ", 0 invalid; dry run" in checked.stdout
    for option in ("--out", "--live-out"):
        extra = ("--out", "history.jsonl") if option == "--live-out" else ()
        refused = _hub(*simulate_, *extra, option, "x.txt", cwd=tmp_path)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"{option} x.txt" in refused.stderr and ".jsonl" in refused.stderr and ".csv" in refused.stderr
        assert "Traceback" not in refused.stderr + refused.stdout
        assert not (tmp_path / "x.txt").exists() and not (tmp_path / "history.jsonl").exists()
