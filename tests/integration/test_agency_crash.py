"""An agency stopped with SIGTERM finishes cleanly and serves its metrics (its SIGKILL test is in the
reliability suite: tests/reliability/test_single_service_kills.py)."""

import datetime as dt
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from consumers import load_policy
from hub.acl import agency_principal
from hub.agency.service import open_database
from hub.clients import security
from hub.domain.sanctions import replay
from hub.readback import end_offsets
from hub.topics import COURT_EVENTS
from tests.integration.helpers import (
    WORKERS,
    agency_records,
    all_hold_partitions,
    applied_records,
    comparable,
    feedback_records,
    free_ports,
    group_member,
    publish,
    simulated,
)
from tests.support import hub_env


def test_sigterm_finishes_cleanly_and_metrics_are_served(hub_settings):
    """Every worker serves its own metrics (port, port+1, ...): together they cover every partition."""
    import urllib.request

    agency = "bank"
    events = simulated(400, seed=8)
    publish(hub_settings, events)
    port = free_ports()
    hub = str(Path(sys.executable).parent / "hub")
    proc = subprocess.Popen(
        [hub, "agency", "run", agency, "--metrics-port", str(port)],
        env=hub_env(hub_settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    total = sum(end_offsets(hub_settings, hub_settings.topic(COURT_EVENTS)).values())
    deadline = time.monotonic() + 60
    while applied_records(hub_settings, agency) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    body = ""
    while time.monotonic() < deadline:
        body = "".join(
            urllib.request.urlopen(f"http://127.0.0.1:{port + i}/metrics", timeout=5).read().decode()
            for i in range(WORKERS)
        )
        published = f'hub_outbox_published_total{{service="bank",topic="{hub_settings.topic("agency.bank.feedback")}"}}'
        lags = [float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith("hub_consumer_lag{")]
        if published in body and len(lags) == hub_settings.partitions and sum(lags) == 0:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "stopped cleanly" in err
    for name in (
        "hub_records_consumed_total",
        "hub_effects_applied_total",
        "hub_dead_lettered_total",
        "hub_consumer_lag",
    ):
        assert name in body
    consumed = [line for line in body.splitlines() if line.startswith("hub_records_consumed_total{")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in consumed) == total
    expected = replay(load_policy(agency, hub_settings), events, dt.datetime.now(dt.UTC))
    assert {f.event_id for f in feedback_records(hub_settings, agency)} == {f.event_id for f in expected.feedback}


def test_a_fenced_static_member_joins_again_and_goes_on(hub_settings, tmp_path):
    """After a broker restart the coordinator may fence a static member for good (a fatal error in librdkafka);
    the service must join again by itself, not sit idle while the list changes."""
    from confluent_kafka import Consumer

    agency = "bank"
    first, second = simulated(600, seed=91), simulated(600, seed=92)
    publish(hub_settings, first)
    hub = str(Path(sys.executable).parent / "hub")
    log = tmp_path / "bank.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [hub, "agency", "run", agency],
            env=hub_env(hub_settings, HUB_INSTANCE_ID=f"{agency}-1"),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 120
        while applied_records(hub_settings, agency) < len(first) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert applied_records(hub_settings, agency) == len(first)
        while not all_hold_partitions(log) and time.monotonic() < deadline:
            time.sleep(0.1)  # a worker that joins after the usurper would fence it
        assert all_hold_partitions(log), log.read_text(errors="replace")[-3000:]

        usurper = Consumer(
            {
                **security(hub_settings, agency_principal(agency)),
                "group.id": f"{hub_settings.namespace}hub-{agency}",
                "group.instance.id": group_member(f"{agency}-1"),  # worker 0's, with several
                "session.timeout.ms": hub_settings.session_timeout_ms,
                "enable.auto.commit": False,
            }
        )
        usurper.subscribe([hub_settings.topic(COURT_EVENTS)])
        deadline = time.monotonic() + 60
        while not usurper.assignment() and time.monotonic() < deadline:
            usurper.poll(0.2)
        assert usurper.assignment(), "the second member with the service's instance id never joined"
        usurper.close()
        deadline = time.monotonic() + 60
        while "fenced" not in log.read_text(errors="replace") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "fenced" in log.read_text(errors="replace"), "the service was never told it had been fenced"

        publish(hub_settings, second)
        total = len(first) + len(second)
        deadline = time.monotonic() + 120
        while applied_records(hub_settings, agency) < total and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        assert applied_records(hub_settings, agency) == total, "the fenced service stopped consuming"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]
    expected = replay(load_policy(agency, hub_settings), [*first, *second], dt.datetime.now(dt.UTC))
    assert comparable(agency_records(hub_settings, agency)) == comparable(expected.entries)


def test_a_batch_whose_connection_dies_mid_transaction_is_redone_whole(hub_settings):
    """A database restart can end the connection inside a batch's transaction (here the very first batch,
    which also creates the offset rows); the whole batch is then redone, not half-remembered."""
    from sqlalchemy.exc import DBAPIError

    from hub.agency.service import AgencyHandler
    from hub.codec import default_codec
    from hub.engine import ConsumerEngine

    agency = "tax"
    events = simulated(300, seed=93)
    publish(hub_settings, events)
    codec = default_codec()
    handler = AgencyHandler(hub_settings, load_policy(agency, hub_settings), codec)
    apply, failures = handler.apply, []

    def apply_once_failing(conn, batch, now):
        if not failures:
            try:
                conn.execute(text("select pg_terminate_backend(pg_backend_pid())"))
            except DBAPIError as exc:
                failures.append(exc)
                raise
        return apply(conn, batch, now)

    handler.apply = apply_once_failing  # type: ignore[method-assign]
    engine = ConsumerEngine(hub_settings, handler, open_database(hub_settings, agency), codec, once=True)
    assert engine.run() == 0
    assert len(failures) == 1, "the connection was never lost: the test proves nothing"
    assert applied_records(hub_settings, agency) == len(events)
    expected = replay(load_policy(agency, hub_settings), events, dt.datetime.now(dt.UTC))
    assert comparable(agency_records(hub_settings, agency)) == comparable(expected.entries)
    assert {f.event_id for f in feedback_records(hub_settings, agency)} == {f.event_id for f in expected.feedback}
