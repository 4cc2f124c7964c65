"""The ledger and the audit on the real broker and database (docs/design.md §8, §9)."""

import datetime as dt
import json
import time
import uuid

from sqlalchemy import text

from hub.acl import agency_principal
from hub.audit.replay import replay
from hub.audit.verify import verify
from hub.clients import idempotent_producer
from hub.codec import default_codec, event_headers
from hub.domain.events import parse_event
from hub.ledger.chain import GENESIS, link
from hub.ledger.service import open_database, rows
from hub.readback import read_range
from hub.topics import COURT_EVENTS, DEAD_LETTER, create_topics, feedback_topic
from producers.simulator import SimulationConfig, simulate
from tests.integration.helpers import ledger_query, publish, run_agency_once, run_ledger_once, simulated
from tests.support import PERSON_ID, court_sample, feedback_sample, run_hub

AGENCIES = ["bank", "tax", "land", "transport"]


def test_end_to_end_from_simulation_to_a_passing_audit_and_a_caught_tampering(hub_settings, tmp_path):
    simulation = simulate(SimulationConfig(debtors=1200, seed=99, breach_rate=0.06))
    publish(hub_settings, (parse_event(r) for r in simulation.events))
    for agency in AGENCIES:
        assert run_agency_once(hub_settings, agency) == 0
    listed = next(
        r["debtor"]["id_number"]
        for r in simulation.events
        if r["type"] == "Included" and r["debtor"]["kind"] == "PERSON"
    )
    run_hub(hub_settings, "agency", "check", "bank", "--subject", listed, "--measure", "LOAN_RESTRICTED")
    assert run_ledger_once(hub_settings) == 0

    report = run_hub(hub_settings, "ledger", "report", "--format", "json")
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert {(v["rule"], v["entry_id"]) for v in data["violations"]} == {
        (b["rule"], b["entry_id"]) for b in simulation.breaches
    }
    assert all(v["party"].startswith("court:") for v in data["violations"])
    assert sum(data["summary"]["violations_by_rule"].values()) == len(simulation.breaches)
    assert set(data["summary"]["entries"]) == {"ACTIVE", "SHIELDED", "REVOKED"}
    csv_report = run_hub(hub_settings, "ledger", "report", "--format", "csv", "--rule", "SHIELD_OVERDUE")
    assert csv_report.stdout.splitlines()[0] == "rule,party,entry_id,due_at,detail"
    assert all(line.startswith("SHIELD_OVERDUE,") for line in csv_report.stdout.splitlines()[1:])

    first = run_hub(hub_settings, "audit", "replay", "--format", "json")
    second = run_hub(hub_settings, "audit", "replay", "--format", "json")
    assert first.returncode == 0, first.stderr
    replayed = json.loads(first.stdout)
    assert replayed["digest"] == json.loads(second.stdout)["digest"]
    assert set(replayed) == {"as_of", "known_at", "entries", "sanctions", "digest"}
    assert set(replayed["sanctions"]) == set(AGENCIES)
    verified = run_hub(hub_settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "PASSED" in verified.stdout

    seq, event_id = ledger_query(
        hub_settings, "select seq, event_id from ledger_events where event_type = 'Included' order by seq limit 1"
    )[0]
    ledger_query(
        hub_settings, "update ledger_events set body = replace(body, 'PUBLIC', 'RESTRICTED') where seq = :seq", seq=seq
    )
    tampered = run_hub(hub_settings, "audit", "verify")
    assert tampered.returncode == 1
    assert f"row {seq} (event {event_id}, Included) was changed" in tampered.stderr
    assert "FAILED" in tampered.stderr


def test_rewriting_every_later_hash_is_caught_by_the_published_checkpoints(hub_settings):
    publish(hub_settings, simulated(150, seed=4))
    assert run_ledger_once(hub_settings) == 0
    ledger_only = hub_settings.model_copy(update={"agencies": ()})
    assert verify(ledger_only).ok

    db = open_database(hub_settings)
    with db.begin() as conn:
        stored = list(rows(conn))
        conn.execute(text("update ledger_events set entry_id = 'FORGED' where seq = 3"))
        prev = GENESIS
        for row, _p, _h in list(rows(conn)):
            new = link(prev, row)
            conn.execute(
                text("update ledger_events set prev_hash = :p, hash = :h where seq = :s"),
                {"p": prev, "h": new, "s": row.seq},
            )
            prev = new
    db.dispose()
    assert len(stored) > 3
    result = verify(ledger_only)
    assert not result.ok
    assert any("published checkpoints disagree with the stored chain" in d for d in result.differences)


def test_a_late_shielding_is_shielded_as_of_its_decision_but_active_as_known_before_publication(hub_settings):
    now = dt.datetime.now(dt.UTC)
    person = {"kind": "PERSON", "id_number": PERSON_ID, "name": "张三"}

    def event(kind, occurred, **fields):
        record = court_sample(kind)
        record.update(
            event_id=str(uuid.uuid4()), entry_id="LATE", debtor=person, occurred_at=occurred.isoformat(), **fields
        )
        return parse_event(record)

    decided = now - dt.timedelta(days=5)
    publish(
        hub_settings,
        [
            event(
                "RiskWarningIssued", now - dt.timedelta(days=40), served_at=(now - dt.timedelta(days=40)).isoformat()
            ),
            event("Included", now - dt.timedelta(days=30)),
        ],
    )
    time.sleep(1.1)
    publish(hub_settings, [event("Shielded", decided, reason="CREDITOR_REQUEST", performed_at=None)])
    stamps = [r.timestamp_ms for r in read_range(hub_settings, hub_settings.topic(COURT_EVENTS))]
    between = dt.datetime.fromtimestamp((min(stamps) + max(stamps)) / 2000, dt.UTC)
    as_of = decided + dt.timedelta(hours=1)

    known_now, _ = replay(hub_settings, as_of=as_of)
    known_before, _ = replay(hub_settings, as_of=as_of, known_at=between)
    assert known_now["entries"]["LATE"]["state"] == "SHIELDED"
    assert known_before["entries"]["LATE"]["state"] == "ACTIVE"
    assert known_now["digest"] != known_before["digest"]
    cli = run_hub(hub_settings, "audit", "replay", "--as-of", as_of.isoformat(), "--known-at", between.isoformat())
    assert json.loads(cli.stdout)["entries"]["LATE"]["state"] == "ACTIVE"


def test_a_new_agency_topic_is_read_without_code_change_and_impostors_are_dead_lettered(hub_settings):
    settings = hub_settings.model_copy(update={"agencies": (*hub_settings.agencies, "customs")})
    create_topics(settings)
    included = parse_event(court_sample("Included"))
    publish(settings, [included])
    codec = default_codec()
    producer = idempotent_producer(settings, agency_principal("customs"))
    honest = parse_event(
        feedback_sample(
            "SanctionApplied",
            agency="customs",
            measures=["LOAN_RESTRICTED"],
            court_event_id=included.event_id,
            entry_id=included.entry_id,
        )
    )
    impostor = parse_event(
        feedback_sample(
            "SanctionApplied",
            agency="bank",
            court_event_id=included.event_id,
            measures=["LOAN_RESTRICTED"],
            entry_id=included.entry_id,
        )
    )
    for event in (honest, impostor):
        producer.produce(
            settings.topic(feedback_topic("customs")),
            key=event.debtor_id.encode(),
            value=codec.encode_event(event),
            headers=event_headers(event),
        )
    assert producer.flush(10) == 0
    assert run_ledger_once(hub_settings) == 0
    stored = {r[0] for r in ledger_query(hub_settings, "select event_id::text from ledger_events")}
    assert stored == {included.event_id, honest.event_id}
    dead = list(read_range(hub_settings, hub_settings.topic(DEAD_LETTER)))
    assert len(dead) == 1 and "not on" in dict(dead[0].headers)["dlq-reason"].decode()


def test_partition_parallel_replay_equals_one_sequential_pass(hub_settings):
    from hub.audit.replay import read_history
    from hub.domain.history import agency_sanctions, digest, entry_states

    publish(hub_settings, simulated(400, seed=31))
    for agency in ("bank", "transport"):
        assert run_agency_once(hub_settings, agency) == 0
    parallel, counts = replay(hub_settings, workers=2)
    history = read_history(hub_settings)
    as_of = known_at = dt.datetime.fromisoformat(parallel["known_at"])
    sequential = {
        "as_of": parallel["as_of"],
        "known_at": parallel["known_at"],
        "entries": entry_states(history.court, as_of, known_at),
        "sanctions": agency_sanctions(history.feedback, as_of, known_at),
    }
    assert parallel["digest"] == digest(sequential)
    assert counts.records == history.records and counts.clashes == 0
    assert max(r.recorded_at for r in [*history.court, *history.feedback]) == known_at
