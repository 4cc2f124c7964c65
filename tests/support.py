"""Sample events of every type, valid as published, for tests that need one of each."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "producers" / "examples" / "court-events.jsonl"

PERSON_ID = "11010519491231002X"
ORG_ID = "91110000600037341L"
REP_ID = "110101198001010053"
PERSON = {"kind": "PERSON", "id_number": PERSON_ID, "name": "张三"}
ORG = {
    "kind": "ORG",
    "id_number": ORG_ID,
    "name": "某某公司",
    "legal_representative": {"id_number": REP_ID, "name": "李四"},
}


def court_examples() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]


def court_sample(event_type: str) -> dict[str, Any]:
    return next(r for r in court_examples() if r["type"] == event_type)


def feedback_sample(event_type: str, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "agency": "transport",
        "occurred_at": "2026-01-20T10:00:05+08:00",
        "entry_id": "E-2026-0001",
        "court_event_id": "0b9c6a0e-3f0e-4d39-9a55-1f0c2b7d8e11",
        "debtor_id": PERSON_ID,
        "subject_id": PERSON_ID,
        "measures": ["AIR_TRAVEL_RESTRICTED", "HIGH_SPEED_RAIL_RESTRICTED"],
    }
    extra = {
        "SanctionRetained": {"legal_basis": "《民用航空法》第X条", "retain_until": "2027-03-01T00:00:00+08:00"},
        "SanctionFailed": {"reason": "subject unknown to the ticketing system"},
        "InterceptionRecorded": {
            "court_event_id": None,
            "measures": ["AIR_TRAVEL_RESTRICTED"],
            "measure": "AIR_TRAVEL_RESTRICTED",
            "channel": "12306",
            "entry_ids": ["E-2026-0001"],
        },
    }
    record.update(extra.get(event_type, {}))
    record.update(overrides)
    return record


COURT_TYPES = ["RiskWarningIssued", "Included", "CorrectionRequested", "CorrectionDecided", "Shielded", "Revoked"]
FEEDBACK_TYPES = ["SanctionApplied", "SanctionLifted", "SanctionRetained", "SanctionFailed", "InterceptionRecorded"]


def every_sample() -> list[dict[str, Any]]:
    return [court_sample(t) for t in COURT_TYPES] + [feedback_sample(t) for t in FEEDBACK_TYPES]


def hub_env(settings: Any, **extra: str) -> dict[str, str]:
    """The environment for a `hub` subprocess that works in the test's namespace."""
    return settings.environment(**extra)


def run_hub(settings: Any, *args: str, timeout: float = 300, **extra_env: str):
    """Run the installed `hub` command as a user would, in the test's namespace."""
    import subprocess
    import sys

    hub = Path(sys.executable).parent / "hub"
    return subprocess.run(
        [str(hub), *args], env=hub_env(settings, **extra_env), capture_output=True, text=True, timeout=timeout
    )
