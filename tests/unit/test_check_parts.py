"""The check service's pure parts: the journal survives its process and a torn line, keys verify only their
secret, a rate limit lets a burst through and then says how long to wait."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.agency.api import RateLimits, malformed
from hub.agency.journal import Journal, read
from hub.agency.keys import ApiKey, ApiKeyError, KeyRing, _digest, check_system

AT = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def _record(n: int):
    return (f"00000000-0000-4000-8000-{n:012d}", AT, "11010519491231002X", "AIR_TRAVEL_RESTRICTED", "gate", ["M"])


def test_a_journal_is_durable_replayable_and_orphaned_only_when_its_process_is_gone(tmp_path: Path):
    journal = Journal(tmp_path, "bank")
    journal.append([_record(1), _record(2)])
    assert journal.pending() == [_record(1), _record(2)] and journal.held == 2
    other = Journal(tmp_path, "bank")
    assert [p for p, _ in _closing(other.orphans())] == [], "a live process's journal is not an orphan"
    journal.empty()
    assert journal.pending() == [] and journal.held == 0
    journal.append([_record(3)])
    with open(journal.path, "ab") as out:
        out.write(b'{"id": "torn')  # what a SIGKILL in the middle of a write leaves: never fsynced, never answered
    assert read(journal.path) == [_record(3)]
    os.close(journal._fd)  # the process is gone: its lock goes with it
    found = [p for p, _ in _closing(other.orphans())]
    assert found == [journal.path]
    assert list(Journal(tmp_path, "bank2").orphans()) == [], "another agency's journals are not this one's"
    other.close()
    assert not other.path.exists(), "an empty journal is removed when its process stops"


def test_a_journal_written_by_a_killed_process_is_found_by_the_next(tmp_path: Path):
    code = (
        "import sys, datetime as dt; from pathlib import Path; from hub.agency.journal import Journal; "
        f"j = Journal(Path({str(tmp_path)!r}), 'tax'); "
        "j.append([('00000000-0000-4000-8000-000000000009', dt.datetime.now(dt.UTC), 's', 'm', 'c', ['E'])]); "
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    survivor = Journal(tmp_path, "tax")
    (path, _fd), *rest = list(survivor.orphans())
    assert not rest and [r[0] for r in read(path)] == ["00000000-0000-4000-8000-000000000009"]


def _closing(found):
    for path, fd in found:
        os.close(fd)
        yield path, fd


def test_a_key_verifies_with_its_own_secret_only():
    key = ApiKey("0123456789ab", "railway", _digest("s" * 43), None, AT)
    ring = KeyRing([key, ApiKey("ba9876543210", "old", _digest("t" * 43), None, AT, revoked_at=AT)])
    assert ring.verify("hubk_0123456789ab_" + "s" * 43) == key
    assert ring.verify("hubk_0123456789ab_" + "t" * 43) is None
    assert ring.verify("hubk_ba9876543210_" + "t" * 43) is None, "a revoked key"
    assert ring.verify("s" * 43) is None and ring.verify("") is None
    assert len(ring) == 1
    with pytest.raises(ApiKeyError, match="1 to 64"):
        check_system("has space")


def test_a_rate_limit_lets_a_burst_through_then_says_how_long_to_wait():
    limits = RateLimits(default_rate=10)
    key = ApiKey("0123456789ab", "kiosk", "x", None, AT)
    assert [limits.take(key, 1) for _ in range(10)] == [0.0] * 10
    wait = limits.take(key, 1)
    assert 0 < wait <= 0.11
    assert limits.take(ApiKey("ba9876543210", "fast", "x", 1000.0, AT), 500) == 0.0, "a key's own rate"


def test_a_refused_body_names_its_field_and_the_content_type_mistake():
    problem = malformed([{"loc": ("body", "checks", 3, "subject"), "msg": "Field required"}], "application/json")
    assert (problem.status, problem.field, problem.detail) == (
        400,
        "checks[3].subject",
        "checks[3].subject: Field required",
    )
    form = malformed([{"loc": ("body",), "msg": "Input should be an object"}], "application/x-www-form-urlencoded")
    assert "Content-Type: application/json" in form.detail and form.field is None
