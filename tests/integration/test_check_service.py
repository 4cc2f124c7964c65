"""The check service (`hub agency serve`) over real HTTPS, on the real database: its answers are the embedded
checker's and the database's, it asks for a key, follows a lift at once, and speaks one error shape."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time

import pytest
from sqlalchemy import text

from bench.ids import resident_id
from hub.agency import store
from hub.agency.check import InterceptionChecker
from hub.agency.service import open_database
from hub.config import RetentionRuleSetting
from tests.check_service import CheckService, add_key
from tests.integration.helpers import feedback_records, publish, run_agency_once, simulated
from tests.integration.test_agencies import court
from tests.support import PERSON, PERSON_ID, REP_ID, run_hub

AGENCY = "transport"
MEASURES = ("AIR_TRAVEL_RESTRICTED", "HIGH_SPEED_RAIL_RESTRICTED")
RETENTION = [RetentionRuleSetting(agency=AGENCY, measure="AIR_TRAVEL_RESTRICTED", legal_basis="test basis", days=400)]


@contextlib.contextmanager
def _serving(settings, tmp_path, history=()):
    publish(settings, [*history, court("Included", "M", 1, PERSON)])
    assert run_agency_once(settings, AGENCY) == 0
    key = add_key(settings, AGENCY, "railway-12306", "--rate", "1000000")
    with CheckService(settings, AGENCY, tmp_path / "serve.log") as service:
        yield settings, service, key


@pytest.fixture
def served(hub_settings, tmp_path):
    with _serving(hub_settings, tmp_path) as served:
        yield served


@pytest.fixture
def served_history(namespaces, tmp_path):
    """A simulated court history: entries applied, lifted, retained and with their retention ended."""
    history = simulated(debtors=1500, seed=13, breach_rate=0.0)
    with _serving(namespaces(retention_rules=RETENTION), tmp_path, history) as served:
        yield served


def _database_view(settings) -> tuple[dict[tuple[str, str], set[str]], dict]:
    db = open_database(settings, AGENCY)
    with db.connect() as conn:
        found = store.restrictions(conn, dt.datetime.now(dt.UTC))
        records = store.load_all(conn)
    db.dispose()
    return found, records


def test_http_answers_equal_the_embedded_checker_and_the_database_for_10000_subjects(served_history):
    settings, service, key = served_history
    in_force, records = _database_view(settings)
    now = dt.datetime.now(dt.UTC)
    statuses = {r.status.value for r in records.values()}
    retained_now = {r.subject_id for r in records.values() if r.status.value == "RETAINED" and r.retain_until > now}
    expired = {  # shielded, retained for AIR_TRAVEL_RESTRICTED by the rule, and the retention has ended
        r.subject_id for r in records.values() if r.status.value == "LIFTED" and r.acts[-1].kind == "Shielded"
    }
    assert {"APPLIED", "LIFTED"} <= statuses and retained_now and expired, "the history has every case"

    rng = random.Random(7)
    listed = sorted({r.subject_id for r in records.values()})
    questions = [(s, rng.choice(MEASURES)) for s in listed]
    questions += [(resident_id(rng.randrange(10**6), restricted=False), rng.choice(MEASURES)) for _ in range(10_000)]
    questions = questions[:10_000]
    rng.shuffle(questions)
    expected = {(s, m): sorted(in_force.get((s, m), ())) for s, m in questions}
    assert sum(bool(v) for v in expected.values()) > 500, "many of the questions are blocks"

    answers = {}
    with service.client(key) as client:
        for start in range(0, len(questions), 1000):
            chunk = questions[start : start + 1000]
            reply = client.post("/v1/checks/batch", json={"checks": [{"subject": s, "measure": m} for s, m in chunk]})
            assert reply.status_code == 200, reply.text
            for (s, m), got in zip(chunk, reply.json()["results"], strict=True):
                assert got["decision"] == ("BLOCKED" if got["entries"] else "ALLOWED")
                answers[(s, m)] = got["entries"]
        single = client.post("/v1/checks", json={"subject": questions[0][0], "measure": questions[0][1]}).json()
        assert single["entries"] == expected[questions[0]]
    assert answers == expected

    with InterceptionChecker(settings, AGENCY) as checker:
        results, durable = checker.decide([(s, m, "test") for s, m in questions])
        if durable is not None:
            durable.result()
    assert {(r.subject, r.measure): r.entries for r in results} == expected


def test_a_key_is_needed_names_the_channel_and_revoked_is_refused(served):
    settings, service, key = served
    question = {"subject": PERSON_ID, "measure": "AIR_TRAVEL_RESTRICTED", "channel": "gate-7"}
    with service.client() as anonymous:
        for headers in ({}, {"Authorization": "Bearer hubk_000000000000_" + "A" * 43}, {"Authorization": key}):
            reply = anonymous.post("/v1/checks", json=question, headers=headers)
            assert reply.status_code == 401, reply.text
            assert reply.json()["error"] == "unauthorized" and "hub agency keys add" in reply.json()["detail"]
    slow = add_key(settings, AGENCY, "kiosk", "--rate", "5")
    deadline = time.monotonic() + 10
    with service.client(slow) as client:
        while (first := client.post("/v1/checks", json={**question, "subject": REP_ID})).status_code == 401:
            assert time.monotonic() < deadline, "a new key is taken within seconds"
        codes = [first.status_code] + [
            client.post("/v1/checks", json={**question, "subject": REP_ID}).status_code for _ in range(10)
        ]
        assert codes.count(200) <= 6 and codes[-1] == 429, codes
        limited = client.post("/v1/checks", json=question)
        assert limited.json()["error"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    with service.client(key) as client:
        blocked = client.post("/v1/checks", json=question).json()
        assert (blocked["decision"], blocked["entries"]) == ("BLOCKED", ["M"])
        assert client.post("/v1/checks", json={**question, "subject": REP_ID}).json()["decision"] == "ALLOWED"
        held = client.get(f"/v1/subjects/{PERSON_ID}").json()["restrictions"]
        assert {(r["entry_id"], r["measure"]) for r in held} == {("M", m) for m in MEASURES}

        listed = run_hub(settings, "agency", "keys", "list", AGENCY)
        assert listed.returncode == 0 and "railway-12306" in listed.stdout and "active" in listed.stdout
        key_id = key.split("_")[1]
        assert run_hub(settings, "agency", "keys", "revoke", AGENCY, key_id).returncode == 0
        deadline = time.monotonic() + 10
        while client.post("/v1/checks", json=question).status_code != 401:
            assert time.monotonic() < deadline, "a revoked key is refused within seconds"
            time.sleep(0.05)
        assert "revoked" in run_hub(settings, "agency", "keys", "list", AGENCY).stdout

    assert run_agency_once(settings, AGENCY) == 0, "the service makes the recorded block feedback"
    recorded = [f for f in feedback_records(settings, AGENCY) if f.type == "InterceptionRecorded"]
    assert [(r.event_id, r.channel, r.entry_ids) for r in recorded] == [
        (blocked["interception_id"], "railway-12306/gate-7", ["M"])
    ], "one record per BLOCKED answer, naming the key's system"


def test_a_shielding_committed_by_the_agency_reaches_the_check_service_at_once(served):
    settings, service, key = served
    question = {"subject": PERSON_ID, "measure": "HIGH_SPEED_RAIL_RESTRICTED"}
    with service.client(key) as client:
        assert client.post("/v1/checks", json=question).json()["decision"] == "BLOCKED"
        publish(settings, [court("Shielded", "M", 2, PERSON)])
        assert run_agency_once(settings, AGENCY) == 0  # the agency has committed the lift when this returns
        committed = time.monotonic()
        while (answer := client.post("/v1/checks", json=question).json())["decision"] != "ALLOWED":
            assert time.monotonic() - committed < 1.0, f"the lift reaches the check service in well under 1 s: {answer}"
        assert dt.datetime.fromisoformat(answer["index_as_of"]) <= dt.datetime.fromisoformat(answer["checked_at"])


def test_a_retention_ends_exactly_on_time_without_any_event(served):
    settings, service, key = served
    question = {"subject": PERSON_ID, "measure": "AIR_TRAVEL_RESTRICTED"}
    db = open_database(settings, AGENCY)
    with db.begin() as conn:  # as the agency's store would write a retention ending in 1.5 s
        until = conn.execute(
            text("update restrictions set until = now() + interval '1.5 seconds' where entry_id = 'M' returning until")
        ).scalar()
        conn.execute(text("update entries set change_seq = nextval('entry_changes') where entry_id = 'M'"))
    db.dispose()
    answers = []
    with service.client(key) as client:
        while not answers or answers[-1]["decision"] == "BLOCKED":
            answers.append(client.post("/v1/checks", json=question).json())
            assert len(answers) < 10_000
    assert len(answers) > 1, "blocked before the end"
    for answer in answers[1:]:
        checked = dt.datetime.fromisoformat(answer["checked_at"])  # to the millisecond
        if abs(checked - until) > dt.timedelta(milliseconds=1):
            assert answer["decision"] == ("BLOCKED" if checked < until else "ALLOWED"), (answer, until)


def test_bad_questions_get_one_error_shape_with_the_cli_s_message(served):
    settings, service, key = served
    cli = run_hub(settings, "agency", "check", AGENCY, "--subject", "110105194912310021", "--measure", "X")
    assert cli.returncode == 2
    with service.client(key) as client:
        cases = [
            ({"subject": "110105194912310021", "measure": "AIR_TRAVEL_RESTRICTED"}, 422, "invalid_subject", "subject"),
            ({"subject": PERSON_ID, "measure": "FLYING"}, 422, "unknown_measure", "measure"),
            ({"subject": PERSON_ID}, 400, "malformed_body", "measure"),
            ({"subject": PERSON_ID, "measure": "AIR_TRAVEL_RESTRICTED", "extra": 1}, 400, "malformed_body", "extra"),
        ]
        for body, status, error, field in cases:
            reply = client.post("/v1/checks", json=body)
            assert (reply.status_code, reply.json()["error"], reply.json()["field"]) == (status, error, field), (
                reply.text
            )
        detail = client.post("/v1/checks", json=cases[0][0]).json()["detail"]
        cli_subject = run_hub(
            settings, "agency", "check", AGENCY, "--subject", "110105194912310021", "--measure", MEASURES[0]
        )
        assert detail in cli_subject.stderr, "the same message as the CLI"
        broken = client.post("/v1/checks", content=b'{"subject": ', headers={"content-type": "application/json"})
        assert (broken.status_code, broken.json()["error"]) == (400, "malformed_body")
        too_many = client.post("/v1/checks/batch", json={"checks": [cases[1][0]] * 1001})
        assert (too_many.status_code, too_many.json()["error"]) == (422, "too_many_checks")
        mixed = client.post(
            "/v1/checks/batch", json={"checks": [{"subject": PERSON_ID, "measure": MEASURES[0]}] * 2 + [cases[0][0]]}
        )
        assert (mixed.status_code, mixed.json()["field"]) == (422, "checks[2].subject")
        assert client.get("/v1/subjects/12345").status_code == 422

        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["subjects"] == 1
        metrics = client.get("/metrics").text
        for name in (
            "hub_checks_total",
            "hub_check_duration_seconds_bucket",
            "hub_index_age_seconds",
            "hub_index_subjects",
            "hub_interceptions_pending",
        ):
            assert name in metrics
        schema = client.get("/openapi.json").json()
        assert {"/v1/checks", "/v1/checks/batch", "/v1/subjects/{subject}"} <= set(schema["paths"])
    assert run_agency_once(settings, AGENCY) == 0
    assert not [f for f in feedback_records(settings, AGENCY) if f.type == "InterceptionRecorded"], (
        "a rejected batch recorded nothing"
    )
