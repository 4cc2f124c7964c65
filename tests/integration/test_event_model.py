"""One event model on the real broker and database: a reused event id kept as evidence, and a new unit with a
measure of its own that joins without any other reader being upgraded."""

import datetime as dt
import json
import sys
import types
import uuid

from hub.acl import agency_principal
from hub.agency.check import InterceptionChecker
from hub.audit.replay import replay
from hub.audit.verify import verify
from hub.clients import idempotent_producer
from hub.codec import default_codec, event_headers
from hub.db import drop_database
from hub.domain.events import parse_event
from hub.domain.sanctions import AgencyPolicy
from hub.ledger.report import build_report
from hub.readback import read_range
from hub.topics import DEAD_LETTER, create_topics, feedback_topic
from tests.integration.helpers import feedback_records, ledger_query, publish, run_agency_once, run_ledger_once
from tests.support import ORG, PERSON, PERSON_ID, REP_ID, court_sample, run_hub

CST = dt.timezone(dt.timedelta(hours=8))


def court(kind, entry_id, when, debtor=PERSON, **fields):
    record = court_sample(kind)
    if kind == "Shielded":
        record["performed_at"] = None
    record.update(event_id=str(uuid.uuid4()), entry_id=entry_id, debtor=debtor, occurred_at=when.isoformat())
    for name in ("served_at", "received_at"):
        if name in record and kind != "Included":
            record[name] = when.isoformat()
    record.update(fields)
    return record


def listing(entry_id, debtor, start):
    return [
        court("RiskWarningIssued", entry_id, start, debtor),
        court("Included", entry_id, start + dt.timedelta(days=10), debtor),
    ]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_an_event_id_reused_with_other_content_is_kept_as_evidence_and_reported(hub_settings, tmp_path):
    start = dt.datetime(2026, 5, 4, 9, tzinfo=CST)
    first = listing("C1", PERSON, start)
    second = dict(first[1], obligation="支付货款99万元")  # same event id, other content
    ok = run_hub(hub_settings, "court", "publish", "--history", write_jsonl(tmp_path / "a.jsonl", first))
    assert ok.returncode == 0, ok.stderr
    again = run_hub(hub_settings, "court", "publish", "--history", write_jsonl(tmp_path / "b.jsonl", [second]))
    assert again.returncode == 0, again.stderr
    same = run_hub(hub_settings, "court", "publish", "--history", write_jsonl(tmp_path / "c.jsonl", first))
    assert same.returncode == 0, same.stderr  # an identical republication: harmless

    assert run_agency_once(hub_settings, "bank") == 0
    assert [f.type for f in feedback_records(hub_settings, "bank")] == ["SanctionApplied"], "acts on the first only"
    assert run_ledger_once(hub_settings) == 0
    stored = ledger_query(
        hub_settings, "select body from ledger_events where event_id = :id order by seq", id=first[1]["event_id"]
    )
    assert [json.loads(b)["obligation"] for (b,) in stored] == [first[1]["obligation"], "支付货款99万元"]
    report = json.loads(run_hub(hub_settings, "ledger", "report", "--format", "json").stdout)
    conflicts = [v for v in report["violations"] if v["rule"] == "EVENT_ID_CONFLICT"]
    assert [(v["party"], v["entry_id"]) for v in conflicts] == [("court:J0105", "C1")]
    assert first[1]["event_id"] in conflicts[0]["detail"]
    verified = run_hub(hub_settings, "audit", "verify", HUB_AGENCIES="bank")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_fifth_agency_with_a_measure_of_its_own_joins_without_a_rollout(hub_settings, monkeypatch):
    """Only its own module is new: the ledger stores and judges its feedback, the audit replays it, and no reader
    dead-letters it."""
    customs = types.ModuleType("consumers.customs")
    customs.POLICY = AgencyPolicy("customs", ("EXIT_RESTRICTED",), ("EXPORT_LICENCE_RESTRICTED",))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "consumers.customs", customs)
    settings = hub_settings.model_copy(update={"agencies": (*hub_settings.agencies, "customs")})
    create_topics(settings)
    start = dt.datetime(2026, 5, 4, 9, tzinfo=CST)
    publish(settings, [parse_event(r) for r in [*listing("P", PERSON, start), *listing("O", ORG, start)]])
    for agency in ("customs", "bank"):
        assert run_agency_once(settings, agency) == 0
    applied = {(f.entry_id, f.type, tuple(f.measures)) for f in feedback_records(settings, "customs")}
    assert applied == {
        ("P", "SanctionApplied", ("EXIT_RESTRICTED",)),
        ("O", "SanctionApplied", ("EXPORT_LICENCE_RESTRICTED",)),
    }

    with InterceptionChecker(settings, "customs", cached=False) as checker:
        assert checker.check(PERSON_ID, "EXIT_RESTRICTED", channel="border").decision == "BLOCKED"
    assert run_agency_once(settings, "customs") == 0
    # A block of a measure the entry never carried here is judged, like any other agency's.
    codec = default_codec()
    wrongful = parse_event(
        {
            "event_id": str(uuid.uuid4()),
            "type": "InterceptionRecorded",
            "agency": "customs",
            "occurred_at": dt.datetime.now(CST).isoformat(),
            "entry_id": "O",
            "court_event_id": None,
            "debtor_id": ORG["id_number"],
            "subject_id": REP_ID,
            "measures": ["EXPORT_LICENCE_RESTRICTED"],
            "measure": "EXPORT_LICENCE_RESTRICTED",
            "channel": "border",
            "entry_ids": ["O"],
        }
    )
    producer = idempotent_producer(settings, agency_principal("customs"))
    producer.produce(
        settings.topic(feedback_topic("customs")),
        key=wrongful.debtor_id.encode(),
        value=codec.encode_event(wrongful),
        headers=event_headers(wrongful),
    )
    assert producer.flush(10) == 0

    assert run_ledger_once(settings) == 0
    assert list(read_range(settings, settings.topic(DEAD_LETTER))) == []
    stored = ledger_query(settings, "select count(*) from ledger_events where agency = 'customs'")[0][0]
    assert stored == 4  # two applications, the lawful block and the wrongful one
    report = build_report(settings)
    assert {(v.rule, v.party, v.entry_id) for v in report.violations} == {("WRONGFUL_SANCTION", "agency:customs", "O")}
    result, history = replay(settings)
    assert result["sanctions"]["customs"] == {
        PERSON_ID: ["EXIT_RESTRICTED"],
        ORG["id_number"]: ["EXPORT_LICENCE_RESTRICTED"],
    }
    assert history.undecodable == 0
    verified = verify(settings.model_copy(update={"agencies": ("bank", "customs")}))
    assert verified.ok, verified.differences
    drop_database(settings, "customs")
