"""`hub ledger report`: the breaches as of an instant, from the ledger's own store."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hub.config import Settings
from hub.domain.history import entry_states
from hub.domain.rules import Violation, judge
from hub.ledger.service import history, open_database


@dataclass
class Report:
    as_of: dt.datetime
    violations: list[Violation]
    entries: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "violations": [v.as_dict() for v in self.violations],
            "summary": {
                "entries": self.entries,
                "violations_by_rule": dict(sorted(Counter(v.rule for v in self.violations).items())),
                "violations_by_party": dict(sorted(Counter(v.party for v in self.violations).items())),
            },
        }

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["rule", "party", "entry_id", "due_at", "detail"])
        for v in self.violations:
            writer.writerow([v.rule, v.party, v.entry_id, v.due_at.isoformat(), v.detail])
        return out.getvalue()


def build_report(
    settings: Settings, as_of: dt.datetime | None = None, party: str | None = None, rule: str | None = None
) -> Report:
    as_of = as_of or dt.datetime.now(dt.UTC)
    db = open_database(settings)
    with db.connect() as conn:
        court, feedback = history(conn)
    db.dispose()
    violations = judge(court, feedback, as_of, settings.deadlines(), settings.agencies)
    if party:
        violations = [v for v in violations if v.party == party]
    if rule:
        violations = [v for v in violations if v.rule == rule]
    states = Counter(e["state"] for e in entry_states(court, as_of, as_of).values())
    return Report(as_of, violations, dict(sorted(states.items())))
