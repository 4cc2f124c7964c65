"""SIGKILL at random moments of a 20,000-event stream: each agency service and the ledger, ten times each,
while the courts keep publishing. Afterwards every agency holds exactly what the pure function says and
the ledger holds every court and feedback event exactly once."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from hub.config import Settings
from tests.integration.helpers import publish, simulated
from tests.reliability.support import (
    AGENCIES,
    Offsets,
    Progress,
    ServiceProcess,
    assert_agency_matches,
    assert_ledger_holds_each_event_once,
    catch_up_and_stop,
    dead_letters,
    expected_states,
    running,
)

pytestmark = pytest.mark.reliability

SERVICES = (*AGENCIES, "ledger")
DEBTORS = 6_250  # about 3.2 court events a debtor: a stream of 20,000 events
CHUNK = 1_000  # the courts publish this many at a time, whenever the fastest agency is about to run dry
KILLS = 10  # per service


@pytest.mark.timeout(1200)
def test_sigkill_of_every_service_ten_times_mid_stream_loses_nothing_and_applies_nothing_twice(
    hub_settings: Settings, tmp_path: Path
):
    """Exactly-once rests on one transaction per batch and ids derived from effects; dying anywhere must not matter."""
    events = simulated(DEBTORS, seed=20_000)
    assert len(events) >= 20_000
    expected = expected_states(hub_settings, events, AGENCIES)  # no retention rules: the instant does not matter
    ledger_input = len(events) + sum(len(state.feedback) for state in expected.values())
    inputs = {**dict.fromkeys(AGENCIES, len(events)), "ledger": ledger_input}
    rng = random.Random(20_000)
    # Kill points are drawn over the whole stream, as durable progress: start, middle and end of the work.
    targets = {s: sorted(int(rng.uniform(0.02, 0.9) * inputs[s]) for _ in range(KILLS)) for s in SERVICES}
    services = {
        s: ServiceProcess(
            hub_settings,
            s,
            tmp_path,
            HUB_BATCH_SIZE="50" if s == "ledger" else "20",  # many small transactions: many moments to die in
            HUB_INSTANCE_ID=f"{s}-1",  # static membership: a restarted instance gets its partitions back at once
            HUB_CHECKPOINT_ROWS="500",
        )
        for s in SERVICES
    }
    chunks = [events[i : i + CHUNK] for i in range(0, len(events), CHUNK)]
    progress, offsets = Progress(hub_settings), Offsets(hub_settings)
    killed_at: dict[str, list[int]] = {s: [] for s in SERVICES}
    published = 0
    try:
        with running(services.values()):
            for service in services.values():
                service.start()
            deadline = time.monotonic() + 900
            while any(targets.values()):
                assert time.monotonic() < deadline, f"kills still due {targets}, killed at {killed_at}"
                done = {s: progress.applied(s) or 0 for s in SERVICES}
                if chunks and max(done[a] for a in AGENCIES) > published - CHUNK // 2:
                    published += publish(hub_settings, chunks.pop(0))
                    continue
                for s, service in services.items():
                    # Due, and working since its last start (not still importing): kill it a random instant later.
                    if targets[s] and done[s] >= targets[s][0] and done[s] > service.started_at:
                        time.sleep(rng.uniform(0.0, 0.25))
                        service.kill()
                        after = progress.applied(s) or 0
                        killed_at[s].append(after)
                        targets[s].pop(0)
                        service.start(after)
                time.sleep(0.05)
            for chunk in chunks:
                published += publish(hub_settings, chunk)
            assert published == len(events)

            # Restarted after every kill, they finish the stream by themselves; then a clean stop and --once.
            catch_up_and_stop(hub_settings, services, len(events), progress, offsets)
    finally:
        progress.close()
        offsets.close()

    for s in SERVICES:
        assert services[s].kills == KILLS >= 10
        assert all(at < inputs[s] for at in killed_at[s]), f"{s} killed after the stream was consumed: {killed_at[s]}"
    for agency in AGENCIES:
        assert_agency_matches(hub_settings, agency, expected[agency], len(events))
    assert_ledger_holds_each_event_once(hub_settings, AGENCIES)
    assert dead_letters(hub_settings) == [], "a valid record was dead-lettered"
