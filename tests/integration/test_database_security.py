"""Tests that try to break into the real local PostgreSQL: TLS and SCRAM only, each service's role in its own
database only, and an agency's checker role able to read restrictions and record interceptions, nothing else."""

import psycopg
import pytest
from sqlalchemy.engine import make_url

from hub.agency.check import InterceptionChecker
from hub.db import AUDITOR, NotMigrated, checker_role, provision
from hub.devstack.tls import LocalCA
from tests.integration.helpers import publish, run_agency_once, run_ledger_once
from tests.integration.test_agencies import court
from tests.support import PERSON, PERSON_ID


def _libpq(settings, service: str, role: str | None = None, **query: str) -> str:
    url = make_url(settings.service_database_url(service, role)).set(drivername="postgresql")
    return url.update_query_dict(query).render_as_string(hide_password=False)


def _refusal(url: str) -> str:
    """Why the server refused the connection, or '' if it let us in."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:
        return str(exc)
    return ""


@pytest.fixture
def hub_settings(hub_settings):
    """A namespace whose databases and roles exist (services make their own when they first start)."""
    provision(hub_settings, [*hub_settings.agencies, "ledger"])
    return hub_settings


def test_only_tls_with_scram_gets_in_and_the_client_verifies_the_server(hub_settings, tmp_path):
    good = _libpq(hub_settings, "bank")
    with psycopg.connect(good) as conn:
        assert conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone() == (True,)
    assert "no encryption" in _refusal(_libpq(hub_settings, "bank", sslmode="disable"))
    wrong = make_url(good).set(password="not-the-password").render_as_string(hide_password=False)
    assert "password authentication failed" in _refusal(wrong)
    nobody = make_url(good).set(username="nobody").render_as_string(hide_password=False)
    assert "password authentication failed" in _refusal(nobody)
    other = LocalCA(tmp_path / "other-ca").ensure()
    assert "certificate verify failed" in _refusal(_libpq(hub_settings, "bank", sslrootcert=str(other.cert_path)))
    with psycopg.connect(
        make_url(hub_settings.admin_database_url()).set(drivername="postgresql").render_as_string(hide_password=False)
    ) as conn:
        rules = conn.execute("select type, auth_method from pg_hba_file_rules").fetchall()
    assert rules == [("hostssl", "scram-sha-256")], "no trust, no plaintext, no other method"


def test_each_service_role_enters_its_own_database_only(hub_settings):
    for service in ("bank", "tax", "land", "transport", "ledger"):
        assert _refusal(_libpq(hub_settings, service)) == "", f"{service} into its own database"
    assert "permission denied for database" in _refusal(_libpq(hub_settings, "tax", role="bank"))
    assert "permission denied for database" in _refusal(_libpq(hub_settings, "ledger", role="bank"))
    assert "permission denied for database" in _refusal(_libpq(hub_settings, "bank", role="tax"))
    assert "permission denied for database" in _refusal(_libpq(hub_settings, "bank", role=checker_role("tax")))
    assert "permission denied for database" in _refusal(_libpq(hub_settings, "ledger", role=checker_role("bank")))
    admin_db = make_url(_libpq(hub_settings, "bank")).set(database="postgres").render_as_string(hide_password=False)
    assert "permission denied for database" in _refusal(admin_db)
    for service in ("bank", "ledger"):
        assert _refusal(_libpq(hub_settings, service, role=AUDITOR)) == "", "the auditor reads every database"


def _denied(url: str, statement: str) -> bool:
    with psycopg.connect(url) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_a_checker_reads_restrictions_and_records_interceptions_and_nothing_else(hub_settings):
    publish(hub_settings, [court("Included", "A", 1, PERSON)])
    assert run_agency_once(hub_settings, "bank") == 0
    with InterceptionChecker(hub_settings, "bank", cached=False) as checker:
        assert checker.check(PERSON_ID, "LOAN_RESTRICTED", channel="desk").decision == "BLOCKED"
    assert checker.db.url.username == checker_role("bank")
    url = _libpq(hub_settings, "bank", role=checker_role("bank"))
    for statement in [
        "create table stolen (x int)",
        "create temp table scratch (x int)",
        "alter table restrictions add column x int",
        "drop table restrictions",
        "truncate restrictions",
        "delete from restrictions",
        "update entries set status = 'LIFTED'",
        "insert into restrictions (subject_id, measure, entry_id) values ('x', 'y', 'z')",
        "select * from outbox",
        "select * from consumer_offsets",
        "select * from processed_events",
        "select * from interceptions",
        "update interceptions set forwarded = true",
    ]:
        assert _denied(url, statement), statement
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from restrictions").fetchone()[0] > 0
    with psycopg.connect(_libpq(hub_settings, "bank", role=AUDITOR)) as conn:
        assert conn.execute("select count(*) from interceptions").fetchone() == (1,), "the block was recorded"


def test_a_checker_never_migrates_and_the_auditor_writes_nothing(hub_settings):
    with pytest.raises(NotMigrated, match="hub db migrate tax"):
        InterceptionChecker(hub_settings, "tax")  # the service never ran: no tables, and the checker makes none
    with psycopg.connect(_libpq(hub_settings, "tax", role=AUDITOR)) as conn:
        assert conn.execute("select count(*) from pg_tables where schemaname = 'public'").fetchone() == (0,)
    assert run_ledger_once(hub_settings) == 0
    auditor = _libpq(hub_settings, "ledger", role=AUDITOR)
    for statement in ["delete from ledger_events", "update chain_head set seq = 0", "create table stolen (x int)"]:
        assert _denied(auditor, statement), statement
