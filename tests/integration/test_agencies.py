"""Agencies on the real broker and database: apply, lift, feedback, exactly once (docs/design.md §6, §7)."""

import datetime as dt
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Producer

from consumers import load_policy
from hub.acl import court_principal
from hub.clients import security
from hub.codec import MAGIC, default_codec
from hub.db import drop_database
from hub.domain.events import parse_event
from hub.domain.sanctions import replay
from hub.readback import end_offsets, read_range
from hub.topics import COURT_EVENTS, DEAD_LETTER
from tests.integration.helpers import (
    agency_records,
    agency_restrictions,
    all_hold_partitions,
    applied_records,
    assert_one_id_per_effect,
    comparable,
    feedback_records,
    pending_outbox,
    publish,
    run_agency_once,
    simulated,
)
from tests.support import ORG, ORG_ID, PERSON, PERSON_ID, REP_ID, court_sample, run_hub

AGENCIES = ["bank", "tax", "land", "transport"]


def court(kind, entry_id, n, debtor, **fields):
    record = court_sample(kind)
    record.update(entry_id=entry_id, event_id=f"00000000-0000-4000-8000-{n:012d}", debtor=debtor, **fields)
    return parse_event(record)


def blocked(settings, agency, subject, measure):
    result = run_hub(
        settings, "agency", "check", agency, "--subject", subject, "--measure", measure, "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_two_entries_one_person_across_all_four_agencies(hub_settings):
    publish(hub_settings, [court("Included", "A", 1, PERSON), court("Included", "B", 2, PERSON)])
    publish(hub_settings, [court("Shielded", "A", 3, PERSON)])
    for agency in AGENCIES:
        assert run_agency_once(hub_settings, agency) == 0
    for agency in AGENCIES:
        measures = load_policy(agency, hub_settings).person_measures
        assert agency_restrictions(hub_settings, agency) == {(PERSON_ID, m): {"B"} for m in measures}
    answer = blocked(hub_settings, "transport", PERSON_ID, "AIR_TRAVEL_RESTRICTED")
    assert answer == {"decision": "BLOCKED", "subject": PERSON_ID, "measure": "AIR_TRAVEL_RESTRICTED", "entries": ["B"]}

    publish(hub_settings, [court("Shielded", "B", 4, PERSON)])
    for agency in AGENCIES:
        assert run_agency_once(hub_settings, agency) == 0
        assert agency_restrictions(hub_settings, agency) == {}
        answers = sorted(
            (f.type, f.entry_id) for f in feedback_records(hub_settings, agency) if f.type != "InterceptionRecorded"
        )
        assert answers == [
            ("SanctionApplied", "A"),
            ("SanctionApplied", "B"),
            ("SanctionLifted", "A"),
            ("SanctionLifted", "B"),
        ]
    assert blocked(hub_settings, "transport", PERSON_ID, "AIR_TRAVEL_RESTRICTED")["decision"] == "ALLOWED"
    interceptions = [f for f in feedback_records(hub_settings, "transport") if f.type == "InterceptionRecorded"]
    assert [(i.subject_id, i.entry_ids, i.channel) for i in interceptions] == [(PERSON_ID, ["B"], "cli")]


def test_org_debtor_bank_and_tax_restrict_the_org_transport_its_representative(hub_settings):
    publish(hub_settings, [court("Included", "O", 1, ORG)])
    for agency in AGENCIES:
        assert run_agency_once(hub_settings, agency) == 0
    assert blocked(hub_settings, "bank", ORG_ID, "BOND_ISSUANCE_RESTRICTED")["decision"] == "BLOCKED"
    assert blocked(hub_settings, "tax", ORG_ID, "INVOICE_RESTRICTED")["decision"] == "BLOCKED"
    assert blocked(hub_settings, "transport", REP_ID, "HIGH_SPEED_RAIL_RESTRICTED")["entries"] == ["O"]
    assert blocked(hub_settings, "transport", ORG_ID, "HIGH_SPEED_RAIL_RESTRICTED")["decision"] == "ALLOWED"
    applied = [f for f in feedback_records(hub_settings, "transport") if f.type == "SanctionApplied"]
    assert [(f.debtor_id, f.subject_id) for f in applied] == [(ORG_ID, REP_ID)]


def test_republished_events_and_a_replay_into_a_fresh_database_give_the_same_state(hub_settings):
    events = simulated(300, seed=21)
    publish(hub_settings, events)
    assert run_agency_once(hub_settings, "land") == 0
    first = comparable(agency_records(hub_settings, "land"))
    feedback_before = len(feedback_records(hub_settings, "land"))
    expected = replay(load_policy("land", hub_settings), events, dt.datetime.now(dt.UTC))
    assert first == comparable(expected.entries)

    publish(hub_settings, events[:50] + events[-50:])  # the same event ids again
    assert run_agency_once(hub_settings, "land") == 0
    assert comparable(agency_records(hub_settings, "land")) == first
    assert len(feedback_records(hub_settings, "land")) == feedback_before, "a republished event causes no feedback"

    drop_database(hub_settings, "land")
    assert run_agency_once(hub_settings, "land") == 0
    assert comparable(agency_records(hub_settings, "land")) == first
    ids = {f.event_id for f in feedback_records(hub_settings, "land")}
    assert ids == {f.event_id for f in expected.feedback}, "the replay re-sends the same feedback ids"


def test_second_once_run_changes_nothing_and_publishes_nothing(hub_settings):
    publish(hub_settings, simulated(100, seed=5))
    assert run_agency_once(hub_settings, "tax") == 0
    state, count = agency_records(hub_settings, "tax"), len(feedback_records(hub_settings, "tax"))
    assert run_agency_once(hub_settings, "tax") == 0
    assert agency_records(hub_settings, "tax") == state
    assert len(feedback_records(hub_settings, "tax")) == count
    assert pending_outbox(hub_settings, "tax") == 0


def test_poison_records_go_to_the_dead_letter_topic_and_the_rest_is_applied(hub_settings):
    codec = default_codec()
    topic = hub_settings.topic(COURT_EVENTS)
    good_before = court("Included", "G1", 1, PERSON)
    good_after = court("Included", "G2", 2, PERSON)
    invalid = court_sample("Included")
    invalid["debtor"] = dict(PERSON, id_number=PERSON_ID[:17] + "3")
    poison = [
        os.urandom(64),
        MAGIC + bytes(8) + b"\x02\x04",
        codec.encode("Included", invalid),
    ]
    publish(hub_settings, [good_before])
    producer = Producer({**security(hub_settings, court_principal("J0105")), "partitioner": "murmur2_random"})
    for value in poison:
        producer.produce(topic, key=PERSON_ID.encode(), value=value)
    producer.flush(10)
    publish(hub_settings, [good_after])

    assert run_agency_once(hub_settings, "bank") == 0
    assert agency_restrictions(hub_settings, "bank")[(PERSON_ID, "LOAN_RESTRICTED")] == {"G1", "G2"}
    dead = list(read_range(hub_settings, hub_settings.topic(DEAD_LETTER)))
    assert [r.value for r in dead] == poison
    reasons = [dict(r.headers)["dlq-reason"].decode() for r in dead]
    assert "bad magic bytes" in reasons[0]
    assert "unknown schema fingerprint" in reasons[1]
    assert "debtor.id_number" in reasons[2]
    for r in dead:
        headers = dict(r.headers)
        assert headers["dlq-source-topic"].decode() == topic
        assert headers["dlq-service"] == b"bank"
        assert int(headers["dlq-source-offset"]) in (1, 2, 3)


def test_check_rejects_invalid_ids_and_unknown_measures_clearly(hub_settings):
    bad_id = run_hub(
        hub_settings, "agency", "check", "bank", "--subject", PERSON_ID[:17] + "3", "--measure", "LOAN_RESTRICTED"
    )
    assert bad_id.returncode != 0 and "should be 'X'" in bad_id.stderr
    bad_measure = run_hub(
        hub_settings, "agency", "check", "bank", "--subject", PERSON_ID, "--measure", "AIR_TRAVEL_RESTRICTED"
    )
    assert bad_measure.returncode != 0 and "not a measure of bank" in bad_measure.stderr
    markup = run_hub(hub_settings, "agency", "check", "bank", "--subject", "[/][b]:x:", "--measure", "LOAN_RESTRICTED")
    assert markup.returncode == 2 and "'[/][b]:x:' is" in markup.stderr, "input is quoted back as typed"
    text = run_hub(hub_settings, "agency", "check", "bank", "--subject", PERSON_ID, "--measure", "LOAN_RESTRICTED")
    assert text.returncode == 3 and "hub db migrate bank" in text.stderr, "a checker never makes the tables"
    assert run_hub(hub_settings, "db", "migrate", "bank").returncode == 0
    text = run_hub(hub_settings, "agency", "check", "bank", "--subject", PERSON_ID, "--measure", "LOAN_RESTRICTED")
    assert text.returncode == 0 and text.stdout.startswith("ALLOWED")


def test_configured_retention_keeps_then_lifts_by_itself(hub_settings):
    rules = [{"agency": "transport", "measure": "AIR_TRAVEL_RESTRICTED", "legal_basis": "民航安全规定", "days": 30}]
    settings = hub_settings.model_copy(
        update={"retention_rules": hub_settings.model_validate({"retention_rules": rules}).retention_rules}
    )
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=60)).isoformat()
    other = {"kind": "PERSON", "id_number": REP_ID, "name": "李四"}
    publish(settings, [court("Included", "R", 1, PERSON), court("Shielded", "R", 2, PERSON, occurred_at=recent)])
    publish(settings, [court("Included", "Q", 3, other), court("Shielded", "Q", 4, other, occurred_at=long_ago)])
    assert run_agency_once(settings, "transport") == 0
    assert agency_restrictions(settings, "transport") == {(PERSON_ID, "AIR_TRAVEL_RESTRICTED"): {"R"}}
    by_entry = {}
    for f in feedback_records(settings, "transport"):
        by_entry.setdefault(f.entry_id, []).append((f.type, tuple(f.measures)))
    assert by_entry["R"] == [
        ("SanctionApplied", ("AIR_TRAVEL_RESTRICTED", "HIGH_SPEED_RAIL_RESTRICTED")),
        ("SanctionLifted", ("HIGH_SPEED_RAIL_RESTRICTED",)),
        ("SanctionRetained", ("AIR_TRAVEL_RESTRICTED",)),
    ]
    assert by_entry["Q"][-1] == ("SanctionLifted", ("AIR_TRAVEL_RESTRICTED",)), "an expired retention ends itself"
    retained = next(f for f in feedback_records(settings, "transport") if f.type == "SanctionRetained")
    assert retained.legal_basis == "民航安全规定"


@pytest.mark.parametrize("agency", ["bank"])
def test_two_instances_share_the_work_without_doing_anything_twice(hub_settings, agency):
    import subprocess
    import sys
    from pathlib import Path

    from tests.support import hub_env

    events = simulated(1500, seed=33)
    publish(hub_settings, events)
    hub = str(Path(sys.executable).parent / "hub")
    env = hub_env(hub_settings, HUB_BATCH_SIZE="40")
    procs = [
        subprocess.Popen(
            [hub, "agency", "run", agency, "--once"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    expected = replay(load_policy(agency, hub_settings), events, dt.datetime.now(dt.UTC))
    assert comparable(agency_records(hub_settings, agency)) == comparable(expected.entries)
    published = feedback_records(hub_settings, agency)
    assert {f.event_id for f in published} == {f.event_id for f in expected.feedback}
    assert_one_id_per_effect(published)


def test_workers_share_the_partitions_and_a_once_run_prints_one_summary(hub_settings, tmp_path):
    """`--workers 2`: two processes, one consumer group. A `--once` run over a history reaches the pure model's
    state and prints the one line a single process would. Which worker does how much of a `--once` run is a race
    (the first to join may finish before the group rebalances), so the sharing itself is shown by a started run:
    once both hold partitions, the next history is consumed by both."""
    import signal
    import subprocess
    import sys
    import time

    from tests.support import hub_env

    first, second = simulated(400, seed=34), simulated(400, seed=35)
    publish(hub_settings, first)
    court = hub_settings.topic(COURT_EVENTS)
    total = sum(end_offsets(hub_settings, court).values())
    result = run_hub(hub_settings, "agency", "run", "bank", "--once", "--workers", "2", HUB_BATCH_SIZE="100")
    assert result.returncode == 0, result.stderr[-3000:]
    policy = load_policy("bank", hub_settings)
    expected = replay(policy, first, dt.datetime.now(dt.UTC))
    assert comparable(agency_records(hub_settings, "bank")) == comparable(expected.entries)
    assert {f.event_id for f in feedback_records(hub_settings, "bank")} == {f.event_id for f in expected.feedback}
    kinds = Counter(f.type for f in expected.feedback)
    summary = (
        f"bank: read {total} events: {kinds['SanctionApplied']} applied, {kinds['SanctionLifted']} lifted, 0 retained, "
        f"0 failed, 0 dead-lettered, 0 duplicates skipped; {len(expected.feedback)} feedback published in "
    )
    [line] = result.stdout.splitlines()
    assert line.startswith(summary) and re.fullmatch(r"\d+\.\ds", line.removeprefix(summary)), line

    log = tmp_path / "bank.log"

    def lines() -> list[dict]:
        return [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]

    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "hub"), "agency", "run", "bank", "--workers", "2"],
            env=hub_env(hub_settings, HUB_BATCH_SIZE="100"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 120
        while not all_hold_partitions(log, 2):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
        publish(hub_settings, second)
        more = sum(end_offsets(hub_settings, court).values()) - total
        while applied_records(hub_settings, "bank") < total + more or pending_outbox(hub_settings, "bank"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]
    expected = replay(policy, [*first, *second], dt.datetime.now(dt.UTC))
    assert comparable(agency_records(hub_settings, "bank")) == comparable(expected.entries)
    published = feedback_records(hub_settings, "bank")
    assert {f.event_id for f in published} == {f.event_id for f in expected.feedback}
    assert_one_id_per_effect(published)
    read = {line["worker"]: line["read"] for line in lines() if "worker" in line and "read" in line}
    assert sorted(read) == [0, 1] and all(read.values()) and sum(read.values()) == more, read
    totals = [line for line in lines() if "worker" not in line and line["event"].startswith("bank: read ")]
    assert [line["read"] for line in totals] == [more], "the supervisor logs the workers' total"


def test_embedded_checker_answers_from_memory_follows_lifts_and_records_blocks(hub_settings):
    from hub.agency.check import InterceptionChecker

    publish(hub_settings, [court("Included", "M", 1, PERSON)])
    assert run_agency_once(hub_settings, "transport") == 0
    with InterceptionChecker(hub_settings, "transport", refresh=0.2, flush=0.05) as checker:
        first = checker.check(PERSON_ID, "AIR_TRAVEL_RESTRICTED", channel="gate-7")
        assert (first.decision, first.entries) == ("BLOCKED", ["M"])
        assert checker.check(REP_ID, "AIR_TRAVEL_RESTRICTED").decision == "ALLOWED"

        publish(hub_settings, [court("Shielded", "M", 2, PERSON)])
        assert run_agency_once(hub_settings, "transport") == 0
        checker.refresh()
        assert checker.check(PERSON_ID, "AIR_TRAVEL_RESTRICTED").decision == "ALLOWED", "a lift reaches the index"
    assert run_agency_once(hub_settings, "transport") == 0, "the service makes the recorded block feedback"
    recorded = [f for f in feedback_records(hub_settings, "transport") if f.type == "InterceptionRecorded"]
    assert [(r.event_id, r.subject_id, r.entry_ids, r.channel, r.debtor_id) for r in recorded] == [
        (first.interception_id, PERSON_ID, ["M"], "gate-7", PERSON_ID)
    ]


def test_blocks_recorded_by_an_embedded_checker_become_feedback_through_the_service(hub_settings):
    from hub.agency.check import InterceptionChecker

    publish(hub_settings, [court("Included", "K", 1, PERSON)])
    assert run_agency_once(hub_settings, "bank") == 0
    with InterceptionChecker(hub_settings, "bank") as checker:
        ids = [checker.check(PERSON_ID, "LOAN_RESTRICTED", channel=f"desk-{n}").interception_id for n in range(3)]
    assert run_agency_once(hub_settings, "bank") == 0, "the service forwards them on its next tick"
    recorded = [f for f in feedback_records(hub_settings, "bank") if f.type == "InterceptionRecorded"]
    assert [(r.event_id, r.channel, r.entry_ids) for r in recorded] == [(ids[n], f"desk-{n}", ["K"]) for n in range(3)]
