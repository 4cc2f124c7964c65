"""Issue-9 behaviour on the real broker and database: times that cannot be law, schema evolution on a live
topic, and a revocation that ends a retention."""

import datetime as dt
import json
import uuid

from hub.acl import court_principal
from hub.clients import idempotent_producer
from hub.codec import HISTORY_HEADER, default_codec, event_headers
from hub.config import RetentionRuleSetting
from hub.domain.events import parse_event
from hub.readback import end_offsets, read_range
from hub.topics import COURT_EVENTS, DEAD_LETTER
from tests.integration.helpers import (
    agency_restrictions,
    feedback_records,
    ledger_query,
    publish,
    run_agency_once,
    run_ledger_once,
)
from tests.support import PERSON, PERSON_ID, court_sample, run_hub

AGENCIES = ["bank", "tax", "land", "transport"]
CST = dt.timezone(dt.timedelta(hours=8))


def court(kind, entry_id, when, **fields):
    record = court_sample(kind)
    if kind == "Shielded":
        record["performed_at"] = None
    record.update(event_id=str(uuid.uuid4()), entry_id=entry_id, debtor=PERSON, occurred_at=when.isoformat(), **fields)
    return record


def produce_raw(settings, records, *, version=None, historical=True):
    """Straight onto the court topic, as another producer (not `hub court publish`) would."""
    codec = default_codec()
    producer = idempotent_producer(settings, court_principal("J0105"))
    for record in records:
        event = parse_event(record)
        value = codec.encode(event.event_type, record, version=version) if version else codec.encode_event(event)
        producer.produce(
            settings.topic(COURT_EVENTS),
            key=event.debtor.id_number.encode(),
            value=value,
            headers=event_headers(event, historical),
        )
    assert producer.flush(15) == 0


def test_an_inclusion_dated_next_year_is_refused_at_the_producer_and_dead_lettered_by_every_service(
    hub_settings, tmp_path
):
    next_year = dt.datetime.now(CST).replace(microsecond=0) + dt.timedelta(days=200)
    warning = court("RiskWarningIssued", "FUTURE", next_year - dt.timedelta(days=10))
    warning["served_at"] = warning["occurred_at"]
    included = court("Included", "FUTURE", next_year)
    path = tmp_path / "typo.jsonl"
    path.write_text(json.dumps(included, ensure_ascii=False) + "\n", encoding="utf-8")

    refused = run_hub(hub_settings, "court", "publish", str(path))
    assert refused.returncode == 1
    assert f"{path}:1: occurred_at: " in refused.stderr and "in the future" in refused.stderr
    dry = run_hub(hub_settings, "court", "publish", "--dry-run", str(path))
    assert dry.returncode == 1 and "in the future" in dry.stderr
    assert sum(end_offsets(hub_settings, hub_settings.topic(COURT_EVENTS)).values()) == 0

    produce_raw(hub_settings, [included], historical=False)
    for agency in AGENCIES:
        assert run_agency_once(hub_settings, agency) == 0
        assert agency_restrictions(hub_settings, agency) == {}
        assert feedback_records(hub_settings, agency) == []
    assert run_ledger_once(hub_settings) == 0
    assert ledger_query(hub_settings, "select count(*) from ledger_events")[0][0] == 0
    dead = list(read_range(hub_settings, hub_settings.topic(DEAD_LETTER)))
    services = sorted(dict(d.headers)["dlq-service"].decode() for d in dead)
    assert services == sorted([*AGENCIES, "ledger"])
    assert all("occurred_at" in dict(d.headers)["dlq-reason"].decode() for d in dead)

    replayed = json.loads(run_hub(hub_settings, "audit", "replay", "--format", "json").stdout)
    assert replayed["entries"] == {} and replayed["sanctions"] == {}
    verified = run_hub(hub_settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_topic_holding_v1_and_v2_inclusions_replays_reports_and_verifies(hub_settings):
    """v1 inclusions carry no served_at: their correction window runs from the decision itself."""
    t = dt.datetime(2026, 6, 1, 9, tzinfo=CST)  # a Monday
    history = []
    for entry in ("OLD", "NEW"):
        warning = court("RiskWarningIssued", entry, t - dt.timedelta(days=10))
        warning["served_at"] = warning["occurred_at"]
        history.append(warning)
    old = court("Included", "OLD", t)
    new = court("Included", "NEW", t, served_at=(t + dt.timedelta(days=3)).isoformat())
    requests = [
        court(
            "CorrectionRequested",
            entry,
            t + dt.timedelta(days=12),
            received_at=(t + dt.timedelta(days=12)).isoformat(),
        )
        for entry in ("OLD", "NEW")
    ]
    decisions = [court("CorrectionDecided", e, t + dt.timedelta(days=13), outcome="REJECTED") for e in ("OLD", "NEW")]
    produce_raw(hub_settings, history)
    produce_raw(hub_settings, [old], version=1)
    produce_raw(hub_settings, [new, *requests, *decisions])
    records = list(read_range(hub_settings, hub_settings.topic(COURT_EVENTS)))
    catalogue = default_codec().catalogue
    fingerprints = {r.value[2:10] for r in records if dict(r.headers)["event-type"] == b"Included"}
    assert fingerprints == {catalogue.version("Included", 1).fingerprint, catalogue.version("Included", 2).fingerprint}
    assert all(dict(r.headers)[HISTORY_HEADER[0]] == HISTORY_HEADER[1] for r in records)

    for agency in AGENCIES:
        assert run_agency_once(hub_settings, agency) == 0
        assert {s for s, _m in agency_restrictions(hub_settings, agency)} == {PERSON_ID}
    assert run_ledger_once(hub_settings) == 0
    report = json.loads(run_hub(hub_settings, "ledger", "report", "--format", "json").stdout)
    assert {(v["rule"], v["entry_id"]) for v in report["violations"]} == {("ORPHAN_EVENT", "OLD")}
    assert report["summary"]["court_events_imported_as_history"] == len(records)
    replayed = json.loads(run_hub(hub_settings, "audit", "replay", "--format", "json").stdout)
    assert {e: v["state"] for e, v in replayed["entries"].items()} == {"OLD": "ACTIVE", "NEW": "ACTIVE"}
    verified = run_hub(hub_settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_revocation_ends_a_retention_at_once_and_the_ledger_sees_it_answered(hub_settings):
    rules = [RetentionRuleSetting(agency="bank", measure="LOAN_RESTRICTED", legal_basis="《商业银行法》", days=365)]
    settings = hub_settings.model_copy(update={"retention_rules": rules})
    now = dt.datetime.now(CST).replace(microsecond=0)
    warning = court("RiskWarningIssued", "R", now - dt.timedelta(days=30))
    warning["served_at"] = warning["occurred_at"]
    included = court("Included", "R", now - dt.timedelta(days=20))
    shielded = court("Shielded", "R", now - dt.timedelta(days=2), reason="CREDITOR_REQUEST")
    publish(settings, [parse_event(r) for r in (warning, included, shielded)])
    assert run_agency_once(settings, "bank") == 0
    assert set(agency_restrictions(settings, "bank")) == {(PERSON_ID, "LOAN_RESTRICTED")}

    revoked = court("Revoked", "R", now - dt.timedelta(hours=1), reason="WRONGFUL_INCLUSION")
    publish(settings, [parse_event(revoked)], history=False)
    assert run_agency_once(settings, "bank") == 0
    assert agency_restrictions(settings, "bank") == {}
    answers = [(f.type, f.court_event_id, f.measures) for f in feedback_records(settings, "bank")]
    assert answers[-1] == ("SanctionLifted", revoked["event_id"], ["LOAN_RESTRICTED"])
    assert run_ledger_once(settings) == 0
    report = run_hub(settings, "ledger", "report", "--format", "json", HUB_AGENCIES="bank")
    assert json.loads(report.stdout)["violations"] == [], report.stdout
    verified = run_hub(settings, "audit", "verify", HUB_AGENCIES="bank")
    assert verified.returncode == 0, verified.stdout + verified.stderr
