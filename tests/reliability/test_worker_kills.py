"""`hub agency run NAME --workers N` killed with SIGKILL: the workers die with it (an orphan would go on consuming
beside the restarted service), and a rerun ends where the pure function says."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hub.config import Settings
from hub.readback import end_offsets
from hub.topics import COURT_EVENTS
from tests.integration.helpers import applied_records, publish, simulated
from tests.reliability.support import HUB, assert_agency_matches, expected_states, wait_until
from tests.support import hub_env

pytestmark = pytest.mark.reliability

AGENCY = "bank"


def alive(pid: int) -> bool:
    """A process that has exited is gone, or a zombie until whoever adopted it reaps it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_sigkill_of_the_supervisor_takes_its_workers_along_and_a_rerun_ends_right(
    hub_settings: Settings, tmp_path: Path
):
    events = simulated(1200, seed=80)
    publish(hub_settings, events)
    total = sum(end_offsets(hub_settings, hub_settings.topic(COURT_EVENTS)).values())
    env = hub_env(hub_settings, HUB_BATCH_SIZE="25", HUB_INSTANCE_ID=f"{AGENCY}-1")
    log = tmp_path / f"{AGENCY}.log"

    def workers() -> list[int]:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and json.loads(line)["event"] == "workers started":
                return json.loads(line)["pids"]
        return []

    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [HUB, "agency", "run", AGENCY, "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        wait_until(
            lambda: proc.poll() is None and applied_records(hub_settings, AGENCY) > 0,
            120,
            lambda: f"the workers never got going (exit {proc.poll()}):\n{log.read_text(errors='replace')[-3000:]}",
        )
        pids = workers()
        assert len(pids) == 2 and all(alive(pid) for pid in pids), pids
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    wait_until(lambda: not any(alive(pid) for pid in pids), 2, lambda: f"workers still alive: {pids}", poll=0.05)
    stopped_at = applied_records(hub_settings, AGENCY)
    assert stopped_at < total, f"the stream ended before the kill: {stopped_at} of {total}"
    time.sleep(1.0)
    assert applied_records(hub_settings, AGENCY) == stopped_at, "something went on consuming after the kill"

    rerun = subprocess.run(  # default batches: the rerun only has to be right
        [HUB, "agency", "run", AGENCY, "--once"],
        env=hub_env(hub_settings, HUB_INSTANCE_ID=f"{AGENCY}-1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    expected = expected_states(hub_settings, events, [AGENCY])[AGENCY]
    assert_agency_matches(hub_settings, AGENCY, expected, len(events))
