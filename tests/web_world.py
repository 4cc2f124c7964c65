"""One namespace with a small court history, every service's answer to it, and the register and web server
running on it: what the web tests (HTTP and browser) look at. Built once per test session."""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hub.config import Settings
from hub.domain.events import CourtEvent, parse_event
from hub.domain.ids import resident_id_check_char
from tests.check_service import HUB, WebServer
from tests.support import ORG, PERSON, PERSON_ID, court_sample, hub_env, run_hub

BASE = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
PASSWORD = "correct-horse-battery-staple"
RESTRICTED_ID = "110101199003070011"
SHIELD_ID = "110101198805050034"
CROWD = 25  # public entries named 陈…: two pages of results


def resident(n: int) -> str:
    first17 = f"3423011964{(n % 12) + 1:02d}{(n % 27) + 1:02d}{n % 1000:03d}"
    return first17 + resident_id_check_char(first17)


def court(kind: str, entry_id: str, n: int, debtor: dict, court_code: str = "J0105", minutes: int = 0, **fields):
    record = court_sample(kind)
    record.update(
        entry_id=entry_id,
        event_id=f"00000000-0000-4000-8000-{n:012d}",
        debtor=debtor,
        court_code=court_code,
        occurred_at=(BASE + dt.timedelta(minutes=minutes)).isoformat(),
        **fields,
    )
    return parse_event(record)


def history() -> list[CourtEvent]:
    events = [
        court("Included", "P-1", 1, PERSON, disclosure="PUBLIC"),
        court(
            "Included",
            "R-1",
            2,
            {"kind": "PERSON", "id_number": RESTRICTED_ID, "name": "王五"},
            disclosure="RESTRICTED",
        ),
        court("Included", "O-1", 3, ORG, court_code="J0108", disclosure="PUBLIC"),
        court("Included", "S-1", 4, {"kind": "PERSON", "id_number": SHIELD_ID, "name": "赵六"}, disclosure="PUBLIC"),
    ]
    for i in range(CROWD):
        debtor = {"kind": "PERSON", "id_number": resident(i), "name": f"陈{chr(0x4E00 + i)}"}
        events.append(court("Included", f"C-{i:02d}", 100 + i, debtor, disclosure="PUBLIC"))
    return events


@dataclass
class World:
    settings: Settings
    web: WebServer
    folder: Path
    register: subprocess.Popen | None = None
    accounts: dict[str, str] = field(default_factory=dict)

    def shield(self, entry_id: str, debtor: dict, n: int) -> None:
        from tests.integration.helpers import publish

        publish(self.settings, [court("Shielded", entry_id, n, debtor, minutes=30)])

    def stop(self) -> None:
        self.web.discard()
        if self.register is not None and self.register.poll() is None:
            self.register.terminate()
            self.register.wait(timeout=60)


def add_account(settings: Settings, username: str, *options: str) -> None:
    done = subprocess.run(
        [HUB, "web", "accounts", "add", username, *options],
        input=PASSWORD + "\n",
        env=hub_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def build(settings: Settings, folder: Path) -> World:
    from tests.integration.helpers import publish, run_agency_once, run_ledger_once

    publish(settings, history())
    for agency in settings.agencies:
        assert run_agency_once(settings, agency) == 0
    assert run_ledger_once(settings) == 0
    done = run_hub(settings, "register", "run", "--once")
    assert done.returncode == 0, done.stderr
    from hub.web.accounts import Accounts, open_database

    db = open_database(settings)  # in this process: the CLI's own path is tested in tests/integration/test_web.py
    accounts = Accounts.for_settings(settings, db)
    accounts.add("auditor1", "auditor", None, PASSWORD)
    accounts.add("clerk-j0108", "court", "J0108", PASSWORD)
    db.dispose()
    log = open(folder / "register.log", "ab")  # noqa: SIM115 - the process writes it until the end
    register = subprocess.Popen([HUB, "register", "run"], env=hub_env(settings), stdout=log, stderr=log)
    web = WebServer(settings, folder / "web.log", HUB_WEB_RATE_PER_ADDRESS="1000").start()
    return World(settings, web, folder, register, {"auditor1": PASSWORD, "clerk-j0108": PASSWORD})


__all__ = ["PERSON_ID", "World", "build"]
