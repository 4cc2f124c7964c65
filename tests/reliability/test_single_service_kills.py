"""One agency and the ledger, each SIGKILLed at random moments with small batches: they end exactly where the pure
functions say, with nothing lost or stored twice (moved here from the integration suite: fault injection takes
minutes, and tests/reliability/test_crash.py does the same for every service at once)."""

import datetime as dt
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consumers import load_policy
from hub.audit.verify import verify
from hub.codec import default_codec
from hub.domain.sanctions import replay
from hub.readback import end_offsets, read_range
from hub.topics import COURT_EVENTS, feedback_topic
from tests.integration.helpers import (
    agency_records,
    applied_records,
    assert_one_id_per_effect,
    comparable,
    feedback_records,
    ledger_query,
    publish,
    run_agency_once,
    simulated,
)
from tests.support import hub_env

pytestmark = pytest.mark.reliability

KILLS = 6


def test_sigkill_at_random_moments_loses_nothing_and_applies_nothing_twice(hub_settings):
    agency = "transport"
    events = simulated(5000, seed=77)
    publish(hub_settings, events)
    total = sum(end_offsets(hub_settings, hub_settings.topic(COURT_EVENTS)).values())
    hub = str(Path(sys.executable).parent / "hub")
    env = hub_env(hub_settings, HUB_BATCH_SIZE="25", HUB_INSTANCE_ID=f"{agency}-1")
    rng = random.Random(1)
    progress = []
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [hub, "agency", "run", agency], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        before = applied_records(hub_settings, agency) if progress else 0
        while applied_records(hub_settings, agency) == before and time.monotonic() < deadline:
            time.sleep(0.05)  # killed once it is working, not while it starts
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        progress.append(applied_records(hub_settings, agency))
    assert progress[-1] < total, f"the stream ended before the last kill: {progress} of {total}"
    assert progress == sorted(progress)

    final = subprocess.run(
        [hub, "agency", "run", agency, "--once"], env=env, capture_output=True, text=True, timeout=300
    )
    assert final.returncode == 0, final.stderr[-3000:]

    expected = replay(load_policy(agency, hub_settings), events, dt.datetime.now(dt.UTC))
    assert comparable(agency_records(hub_settings, agency)) == comparable(expected.entries)
    published = feedback_records(hub_settings, agency)
    assert {f.event_id for f in published} == {f.event_id for f in expected.feedback}
    assert_one_id_per_effect(published)


def test_ledger_survives_sigkill_with_nothing_lost_or_stored_twice(hub_settings):
    events = simulated(2500, seed=12)
    publish(hub_settings, events)
    for agency in ("bank", "transport"):
        assert run_agency_once(hub_settings, agency) == 0
    hub = str(Path(sys.executable).parent / "hub")
    env = hub_env(hub_settings, HUB_BATCH_SIZE="50", HUB_INSTANCE_ID="ledger-1", HUB_CHECKPOINT_ROWS="500")
    rng = random.Random(3)
    counts = []
    for _ in range(5):
        proc = subprocess.Popen([hub, "ledger", "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = counts[-1] if counts else 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _stored(hub_settings) == before:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        counts.append(_stored(hub_settings))
    final = subprocess.run([hub, "ledger", "run", "--once"], env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]

    codec = default_codec()
    topics = [hub_settings.topic(COURT_EVENTS)] + [hub_settings.topic(feedback_topic(a)) for a in ("bank", "transport")]
    on_topics = {codec.decode_event(r.value).event_id for t in topics for r in read_range(hub_settings, t)}
    assert counts[-2] < len(on_topics), f"the stream ended before the last kills: {counts}"
    stored = ledger_query(hub_settings, "select event_id::text from ledger_events")
    assert len(stored) == len({r[0] for r in stored}) == len(on_topics)
    assert {r[0] for r in stored} == on_topics
    result = verify(hub_settings.model_copy(update={"agencies": ("bank", "transport")}))
    assert result.ok, result.differences


def _stored(settings) -> int:
    return ledger_query(settings, "select count(*) from ledger_events")[0][0]


def test_the_register_survives_sigkill_and_ends_as_the_pure_function_says(hub_settings):
    from sqlalchemy import text

    from hub.domain.lifecycle import Recorded
    from hub.domain.register import register
    from hub.register import search
    from hub.register.service import open_database

    events = simulated(3000, seed=78)
    publish(hub_settings, events)
    total = sum(end_offsets(hub_settings, hub_settings.topic(COURT_EVENTS)).values())
    hub = str(Path(sys.executable).parent / "hub")
    env = hub_env(hub_settings, HUB_BATCH_SIZE="25", HUB_INSTANCE_ID="register-1")
    db = open_database(hub_settings)

    def done() -> int:
        with db.connect() as conn:
            return conn.execute(text("select coalesce(sum(next_offset), 0) from consumer_offsets")).scalar_one()

    rng = random.Random(2)
    progress = []
    for _ in range(4):
        proc = subprocess.Popen([hub, "register", "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before, deadline = done(), time.monotonic() + 60
        while done() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        progress.append(done())
    assert progress[-1] < total, f"the stream ended before the last kill: {progress} of {total}"
    final = subprocess.run([hub, "register", "run", "--once"], env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    now = dt.datetime.now(dt.UTC)
    expected = register(Recorded(e, now, n) for n, e in enumerate(events))
    with db.connect() as conn:
        ids = conn.execute(text("select entry_id from public_entries")).scalars().all()
        listed = {i: search.entry(conn, i) for i in ids}
    db.dispose()
    assert len(ids) == len(set(ids)) and listed == expected
