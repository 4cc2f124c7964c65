"""Shared by the fault-injection tests: real `hub` service subprocesses, how far each has durably got,
and the end-state checks (the pure functions' answer for the agencies, every event once in the ledger)."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from consumers import load_policy
from hub import devstack
from hub.acl import AUDITOR
from hub.agency.service import open_database
from hub.audit.verify import verify
from hub.clients import consumer as make_consumer
from hub.codec import CodecError, default_codec
from hub.config import Settings
from hub.devstack.state import locked
from hub.domain.events import CourtEvent, EventValidationError
from hub.domain.sanctions import AgencyState, replay
from hub.readback import Record, end_offsets, read_range
from hub.topics import COURT_EVENTS, DEAD_LETTER, feedback_topic
from tests.integration.helpers import (
    agency_records,
    assert_one_id_per_effect,
    comparable,
    feedback_records,
    ledger_query,
    publish,
    simulated,
)
from tests.support import hub_env

HUB = str(Path(sys.executable).parent / "hub")
AGENCIES = ("bank", "tax", "land", "transport")


def wait_until(condition: Callable[[], bool], timeout: float, what: Callable[[], str], poll: float = 0.2) -> None:
    """Liveness with a generous bound: the tests assert that it happens, never how fast."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:.0f}s: {what()}")
        time.sleep(poll)


class ServiceProcess:
    """One `hub agency run NAME` or `hub ledger run`, started as an operator would; all its runs log to one file."""

    def __init__(self, settings: Settings, service: str, log_dir: Path, **env: str):
        self.service = service
        self.env = hub_env(settings, **env)
        self.log = log_dir / f"{service}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0
        self.started_at = 0  # the stored progress when it last started

    def command(self, once: bool = False) -> list[str]:
        argv = [HUB, "ledger", "run"] if self.service == "ledger" else [HUB, "agency", "run", self.service]
        return [*argv, "--once"] if once else argv

    def _stderr(self, note: str) -> BinaryIO:
        handle = open(self.log, "ab")  # noqa: SIM115 - the child keeps its own copy of the descriptor
        handle.write(f"--- {note}\n".encode())
        handle.flush()
        return handle

    def start(self, progress: int = 0) -> None:
        self.starts += 1
        self.started_at = progress
        with self._stderr(f"start {self.starts}") as log:
            self.proc = subprocess.Popen(
                self.command(), env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
            )

    def assert_running(self) -> None:
        assert self.proc is not None, f"{self.service} was never started"
        code = self.proc.poll()
        assert code is None, f"{self.service} exited by itself with code {code}:\n{self.tail()}"

    def kill(self) -> None:
        """SIGKILL: no handler runs, no batch finishes, nothing is flushed or delivered."""
        self.assert_running()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=60) == -signal.SIGKILL
        self.kills += 1

    def stop(self, timeout: float = 180.0) -> int:
        """SIGTERM: the service finishes its batch, delivers its outbox and exits (0 when clean)."""
        self.assert_running()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def run_once(self, timeout: float = 600.0) -> int:
        """`--once`: up to the end offsets present at start; the final catch-up after the faults."""
        with self._stderr("run --once") as log:
            return subprocess.run(
                self.command(once=True),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                timeout=timeout,
            ).returncode

    def discard(self) -> None:
        """Whatever happened to the test, leave no process behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def running(services: Iterable[ServiceProcess]) -> Iterator[None]:
    """Started and finished by the test; on any failure, none is left running."""
    services = list(services)
    try:
        yield
    finally:
        for service in services:
            service.discard()


class Progress:
    """How far each service has durably got, read from its own database: the sum of its stored next offsets."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._engines: dict[str, Engine] = {}

    def _engine(self, service: str) -> Engine:
        if service not in self._engines:
            self._engines[service] = create_engine(
                self.settings.service_database_url(service),
                pool_pre_ping=True,
                pool_size=1,
                connect_args={"connect_timeout": 3},
            )
        return self._engines[service]

    def _value(self, service: str, sql: str) -> int | None:
        try:
            with self._engine(service).connect() as conn:
                return conn.execute(text(sql)).scalar_one()
        except DBAPIError:
            return None  # the database is restarting, or the service has not created its tables yet

    def applied(self, service: str) -> int | None:
        """Records consumed and committed (None while the database does not answer)."""
        return self._value(service, "select coalesce(sum(next_offset), 0) from consumer_offsets")

    def unsent(self, service: str) -> int | None:
        return self._value(service, "select count(*) from outbox")

    def stored(self, service: str) -> dict[tuple[str, int], int]:
        """The next offset the service will read, per partition it has consumed from."""
        try:
            with self._engine(service).connect() as conn:
                rows = conn.execute(text("select topic, partition, next_offset from consumer_offsets")).all()
        except DBAPIError:
            return {}
        return {(r.topic, r.partition): r.next_offset for r in rows}

    def behind(self, service: str, offsets: Offsets, topics: Sequence[str]) -> str:
        """For a failure message: where the service stands against the end of each partition it lags on."""
        stored = self.stored(service)
        lagging = [
            f"{topic}[{partition}] {stored.get((topic, partition), 0)}/{end}"
            for topic in topics
            for partition, end in sorted(offsets.ends(topic).items())
            if stored.get((topic, partition), 0) != end
        ]
        return f"{service} at {self.applied(service)}, lagging on {', '.join(lagging) or 'nothing'}"

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()


class Offsets:
    """End offsets through one long-lived probe (it joins no group)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.probe = make_consumer(settings, f"{settings.namespace}hub-audit-reliability-{uuid.uuid4()}", AUDITOR)

    def ends(self, topic: str) -> dict[int, int]:
        return end_offsets(self.settings, topic, self.probe)

    def total(self, topics: Sequence[str]) -> int:
        return sum(sum(self.ends(t).values()) for t in topics)

    def close(self) -> None:
        self.probe.close()


def ledger_topics(settings: Settings, agencies: Sequence[str] = AGENCIES) -> list[str]:
    """What the ledger reads: the court topic and the agencies' feedback topics."""
    return [settings.topic(COURT_EVENTS), *(settings.topic(feedback_topic(a)) for a in agencies)]


def expected_states(
    settings: Settings, events: Sequence[CourtEvent], agencies: Sequence[str]
) -> dict[str, AgencyState]:
    """The pure function's answer: what each agency must hold after the stream, however often it crashed."""
    now = dt.datetime.now(dt.UTC)
    return {a: replay(load_policy(a, settings), events, now) for a in agencies}


def assert_agency_matches(settings: Settings, agency: str, expected: AgencyState, court_events: int) -> None:
    """Records equal the replay, feedback ids equal the replay's (one id per effect), each event processed once."""
    actual = comparable(agency_records(settings, agency))
    wanted = comparable(expected.entries)
    wrong = sorted(k for k in set(actual) | set(wanted) if actual.get(k) != wanted.get(k))
    assert not wrong, f"{agency}: {len(wrong)} entries differ from the replay, e.g. " + "; ".join(
        f"{k}: stored {actual.get(k)}, expected {wanted.get(k)}" for k in wrong[:3]
    )
    published = feedback_records(settings, agency)
    ids = {f.event_id for f in published}
    wanted_ids = {f.event_id for f in expected.feedback}
    assert ids == wanted_ids, f"{agency}: {len(wanted_ids - ids)} feedback missing, {len(ids - wanted_ids)} unexpected"
    assert_one_id_per_effect(published)
    db = open_database(settings, agency)
    with db.connect() as conn:
        processed = conn.execute(text("select count(*) from processed_events")).scalar_one()
    db.dispose()
    assert processed == court_events, f"{agency}: {processed} court events processed, {court_events} published"


def event_ids_on(settings: Settings, topics: Sequence[str]) -> list[str]:
    """Every valid event id on the topics, with repeats (a re-sent feedback appears twice); poison is skipped."""
    codec = default_codec()
    ids = []
    for topic in topics:
        family = "court" if topic == settings.topic(COURT_EVENTS) else "feedback"
        for record in read_range(settings, topic):
            with contextlib.suppress(CodecError, EventValidationError):
                ids.append(codec.decode_event(record.value, family=family).event_id)
    return ids


def assert_ledger_holds_each_event_once(settings: Settings, agencies: Sequence[str]) -> set[str]:
    """The ledger holds exactly the event ids on the court and feedback topics, each once; the audit passes."""
    on_topics = set(event_ids_on(settings, ledger_topics(settings, agencies)))
    stored = [row[0] for row in ledger_query(settings, "select event_id::text from ledger_events")]
    assert len(stored) == len(set(stored)), "an event is stored twice"
    missing, extra = on_topics - set(stored), set(stored) - on_topics
    assert not missing and not extra, f"ledger: {len(missing)} events missing, {len(extra)} on no topic"
    assert len(stored) == len(on_topics)
    result = verify(settings.model_copy(update={"agencies": tuple(agencies)}))
    assert result.ok, "\n".join(result.differences[:30])
    return on_topics


def dead_letters(settings: Settings) -> list[Record]:
    """Everything on hub.dead-letter, from every service."""
    return list(read_range(settings, settings.topic(DEAD_LETTER)))


def catch_up_and_stop(
    settings: Settings,
    services: dict[str, ServiceProcess],
    court_events: int,
    progress: Progress,
    offsets: Offsets,
    timeout: float = 600.0,
) -> None:
    """Wait until the running services have consumed everything and delivered their outboxes, stop them with
    SIGTERM (exit 0 expected), then run each once more with `--once`, agencies before the ledger."""
    agencies = [s for s in services if s != "ledger"]
    court = [settings.topic(COURT_EVENTS)]

    def alive() -> bool:
        """A service that died is reported at once, with its log, rather than waited for."""
        for service in services.values():
            service.assert_running()
        return True

    wait_until(
        lambda: alive() and all(progress.applied(a) == court_events and progress.unsent(a) == 0 for a in agencies),
        timeout,
        lambda: f"of {court_events} court events: " + "; ".join(progress.behind(a, offsets, court) for a in agencies),
    )
    if "ledger" in services:
        topics = ledger_topics(settings, agencies)
        wait_until(
            lambda: alive() and progress.applied("ledger") == offsets.total(topics),
            timeout,
            lambda: progress.behind("ledger", offsets, topics),
        )
    for name, service in services.items():
        assert service.stop() == 0, f"{name} did not stop cleanly:\n{service.tail()}"
    for name, service in services.items():
        assert service.run_once() == 0, f"{name} --once failed:\n{service.tail()}"


def managed(settings: Settings, component: str) -> Any:
    """The session's own broker or database, to stop and start; an external one is not ours to stop."""
    kafka, postgres = devstack._components(settings)
    found = {"kafka": kafka, "postgres": postgres}[component]
    if found is None:
        pytest.skip(f"{component} is not managed by `hub dev` here (HUB_KAFKA_BOOTSTRAP / HUB_DATABASE_URL is set)")
    return found


def stream_through_outage(
    settings: Settings,
    tmp_path: Path,
    agencies: Sequence[str],
    seed: int,
    outage: Callable[[dict[str, ServiceProcess], list[CourtEvent]], None],
) -> None:
    """The agencies and the ledger run from first event to last and are never restarted by hand. The stream
    comes in quarters; `outage` takes a server away under them (the stack lock held) and publishes the third.
    Afterwards each agency equals the pure function and the ledger holds every event once."""
    events = simulated(2_000, seed=seed)
    q = len(events) // 4
    chunks = [events[:q], events[q : 2 * q], events[2 * q : 3 * q], events[3 * q :]]
    services = {
        s: ServiceProcess(settings, s, tmp_path, HUB_BATCH_SIZE="25", HUB_INSTANCE_ID=f"{s}-1")
        for s in (*agencies, "ledger")
    }
    progress = Progress(settings)
    try:
        with running(services.values()):
            for service in services.values():
                service.start()
            publish(settings, chunks[0])
            wait_until(
                lambda: all((progress.applied(s) or 0) > 0 for s in services),
                300,
                lambda: f"services working: {[progress.applied(s) for s in services]}",
            )
            publish(settings, chunks[1])  # and at once the server goes: the rest of the stream comes after
            with locked(settings.state_dir):
                outage(services, chunks[2])
            publish(settings, chunks[3])
            offsets = Offsets(settings)
            try:
                catch_up_and_stop(settings, services, len(events), progress, offsets)
            finally:
                offsets.close()
    finally:
        progress.close()

    assert all(service.starts == 1 for service in services.values()), "no service was restarted by hand"
    expected = expected_states(settings, events, agencies)
    for agency in agencies:
        assert_agency_matches(settings, agency, expected[agency], len(events))
    assert_ledger_holds_each_event_once(settings, agencies)
    assert dead_letters(settings) == [], f"a valid record was dead-lettered ({DEAD_LETTER})"
