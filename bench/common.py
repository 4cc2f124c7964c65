"""What every measurement shares: sizes, figures and targets, isolated namespaces, and measured subprocesses.

Every process whose speed is measured runs as its own command under bench/launch.py, which reports the
command's wall time and its own peak resident memory (the kernel's, from `wait4`), so neither the harness's
start-up nor its memory pollutes a figure.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from sqlalchemy.engine import make_url

from hub.config import SERVICES, Settings

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
HUB = Path(sys.executable).parent / "hub"


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is; `full` is the issue's, `quick` a first look in a few minutes."""

    name: str
    limits_records: int  # records for Kafka's perf tools and the Python consumers
    p1_events: int  # court events one agency bootstraps from
    p2_rate: int  # court events per second, steady
    p2_seconds: float  # measured window
    p2_warmup_seconds: float  # published at the same rate before the window, not counted
    p2_bulk_rate: int  # court events per second of a bulk import, after the steady stream
    p2_bulk_seconds: float
    p3_subjects: int  # restricted subjects in the agency's database
    p3_calls: int  # Python check() calls, at most...
    p3_seconds: float  # ...or this long, whichever comes first
    p3_cli_calls: int  # `hub agency check` invocations
    p4_events: int  # court events the audit replays
    p6_events: int  # ledger events (court acts and the agencies' feedback) the report judges

    @classmethod
    def named(cls, name: str) -> Sizes:
        if name == "full":
            return cls(
                "full",
                1_000_000,
                200_000,
                500,
                60.0,
                5.0,
                5_000,
                20.0,
                1_000_000,
                1_000_000,
                60.0,
                10,
                1_000_000,
                1_000_000,
            )
        if name == "quick":
            return cls(
                "quick", 200_000, 20_000, 500, 15.0, 3.0, 5_000, 6.0, 100_000, 200_000, 15.0, 6, 100_000, 100_000
            )
        raise ValueError(f"unknown size {name!r}: full or quick")


@dataclass(frozen=True)
class Target:
    """A goal from the issue; `met` is reported, never asserted."""

    op: Literal[">=", "<="]
    value: float

    def met(self, figure: float | None) -> bool | None:
        if figure is None or (isinstance(figure, float) and math.isnan(figure)):
            return None
        return figure >= self.value if self.op == ">=" else figure <= self.value

    def __str__(self) -> str:
        return f"{self.op} {fmt_number(self.value)}"


@dataclass
class Figure:
    """One line of the table: a measured value, its unit, its target, and the memory of the process behind it."""

    key: str
    section: str
    label: str
    value: float | None
    unit: str
    target: Target | None = None
    rss_kb: int | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "section": self.section,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "target": None if self.target is None else {"op": self.target.op, "value": self.target.value},
            "met": None if self.target is None else self.target.met(self.value),
            "peak_rss_mib": None if self.rss_kb is None else round(self.rss_kb / 1024, 1),
            "note": self.note,
        }


@dataclass
class Section:
    """A measurement's outcome: its figures for the table, and every detail for the JSON file."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def add(
        self, key: str, label: str, value: float | None, unit: str, target: Target | None = None, **kwargs: Any
    ) -> Figure:
        figure = Figure(f"{self.name}.{key}", self.name, label, value, unit, target, **kwargs)
        self.figures.append(figure)
        return figure

    def figure(self, key: str) -> Figure | None:
        return next((f for f in self.figures if f.key == f"{self.name}.{key}"), None)


def fmt_number(value: float) -> str:
    if value == int(value) and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"


_started = time.monotonic()


def say(message: str) -> None:
    """Progress lines: the run takes minutes, so say what it is doing (and since when)."""
    print(f"[bench {time.monotonic() - _started:7.1f}s] {message}", flush=True)


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    say(f"{message} ...")
    started = time.perf_counter()
    yield
    say(f"{message}: done in {time.perf_counter() - started:.1f}s")


# -- namespaces: every run on its own topics and databases, removed at the end -------------------------


class Namespaces:
    """Fresh topic and database prefixes for one run; `cleanup` removes every one of them, even after a failure."""

    def __init__(self, base: Settings, keep: bool = False):
        self.base = base
        self.run_id = uuid.uuid4().hex[:8]
        self.keep = keep
        self.made: list[Settings] = []
        self.extra_topics: list[str] = []
        self.extra_databases: list[str] = []  # full names, made by the stack's superuser (the P1 peer's)

    def make(self, tag: str, create: bool = True) -> Settings:
        from hub.topics import create_topics

        settings = self.base.model_copy(update={"namespace": f"b{self.run_id}{tag}_"})
        self.made.append(settings)
        if create:
            create_topics(settings)
        return settings

    def cleanup(self) -> None:
        from hub.clients import admin
        from hub.db import drop_database
        from hub.topics import delete_topics

        if self.keep:
            say(f"keeping namespaces {', '.join(s.namespace for s in self.made)} (--keep)")
            return
        for settings in self.made:
            try:
                delete_topics(settings)
            except Exception as exc:
                say(f"warning: could not delete the topics of {settings.namespace}: {exc}")
            for service in SERVICES:
                try:
                    drop_database(settings, service)
                except Exception as exc:
                    say(f"warning: could not drop database {settings.namespace}{service}: {exc}")
        if self.extra_topics:
            try:
                client = admin(self.base, "admin")  # kept alive until the futures resolve
                futures = client.delete_topics(self.extra_topics, operation_timeout=30)
                for future in futures.values():
                    with contextlib.suppress(Exception):
                        future.result()
            except Exception as exc:
                say(f"warning: could not delete {', '.join(self.extra_topics)}: {exc}")
        if self.extra_databases:
            try:
                drop_databases(self.base, self.extra_databases)
            except Exception as exc:
                say(f"warning: could not drop {', '.join(self.extra_databases)}: {exc}")
        self.made.clear()
        self.extra_topics.clear()
        self.extra_databases.clear()


def drop_databases(settings: Settings, names: Sequence[str]) -> None:
    """As the stack's superuser, on one connection."""
    import psycopg
    from psycopg import sql

    url = make_url(settings.admin_database_url()).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        for name in names:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def hub_env(settings: Settings, **extra: str) -> dict[str, str]:
    return settings.environment(PYTHONUNBUFFERED="1", **extra)


def libpq_url(settings: Settings, service: str) -> str:
    """A psycopg connection string for a service's database (the hub's URLs name the SQLAlchemy driver)."""
    url = make_url(settings.service_database_url(service)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


# -- measured subprocesses --------------------------------------------------------------------------------


@dataclass
class Finished:
    returncode: int
    seconds: float  # wall time of the command, from its start to its exit
    max_rss_kb: int  # peak resident set of its largest process (kernel accounting, Linux: KiB)
    log: Path
    tree_rss_kb: int = 0  # peak of the summed RSS of the command's process tree (sampled)
    processes: int = 1  # most processes seen at once in that tree
    cpu_seconds: float | None = None  # user + system CPU of the command (and the children it waited for)

    def cpu_per_1000(self, items: int, idle: Finished | None = None) -> float | None:
        """CPU seconds per 1,000 items, the start-up's CPU (`idle`: the same command with nothing to do) taken
        off: the cost per event, which a regression shows even when the machine's speed hides it."""
        if self.cpu_seconds is None or not items:
            return None
        startup = (idle.cpu_seconds or 0.0) if idle is not None else 0.0
        spent = self.cpu_seconds - startup
        return max(spent, 0.0) / items * 1000

    @property
    def peak_kb(self) -> int:
        """The command's memory: exact for one process; for several, the sampled peak of their sum."""
        return max(self.max_rss_kb, self.tree_rss_kb) if self.processes > 1 else self.max_rss_kb

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Measured:
    """A command run under bench/launch.py, which reaps it with `wait4` and reports its exit code, wall time
    and peak RSS (see there why the harness cannot ask the kernel directly). Output goes to `log`."""

    live: ClassVar[set[Measured]] = set()  # started and not yet reaped: stop_all() ends them whatever happens

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None):
        self.argv = list(argv)
        self.log = log
        self.result = log.with_suffix(".rusage.json")
        log.parent.mkdir(parents=True, exist_ok=True)
        for stale in (self.result, Path(f"{self.result}.pid")):
            stale.unlink(missing_ok=True)
        launcher = [sys.executable, "-S", str(BENCH_DIR / "launch.py"), str(self.result), "--"]
        self._out = open(log, "wb")  # noqa: SIM115 - closed when the launcher has exited
        self.process = subprocess.Popen(
            [*launcher, *self.argv],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
        Measured.live.add(self)

    @property
    def name(self) -> str:
        return " ".join(Path(self.argv[0]).name if i == 0 else a for i, a in enumerate(self.argv[:5]))

    def running(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM, passed on to the command by the launcher."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def _kill(self) -> None:
        """SIGKILL the command (while its launcher runs, its pid is still its own) and the launcher."""
        if self.running():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(Path(f"{self.result}.pid").read_text()), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def _reaped(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self._out.close()
        Measured.live.discard(self)

    def wait(self, timeout: float | None = None) -> Finished:
        """Wait for the exit; past `timeout` the command is killed and TimeoutError raised."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            self._reaped()
            raise TimeoutError(f"{self.name} did not finish within {timeout:.0f}s (log: {self.log})") from None
        except BaseException:  # interrupted: leave nothing running
            self._kill()
            self._reaped()
            raise
        self._reaped()
        try:
            result = json.loads(self.result.read_text())
        except (OSError, ValueError):
            raise RuntimeError(
                f"{self.name} exited {self.process.returncode} without a report:\n{Finished(1, 0, 0, self.log).tail()}"
            ) from None
        return Finished(
            result["returncode"],
            result["seconds"],
            result["max_rss_kb"],
            self.log,
            result.get("tree_rss_kb", 0),
            result.get("processes", 1),
            result.get("cpu_seconds"),
        )

    @classmethod
    def wait_all(cls, commands: dict[str, Measured], timeout: float) -> dict[str, Finished]:
        """Wait for several commands within one overall timeout; those still running then are killed."""
        deadline = time.monotonic() + timeout
        finished = {}
        for name, command in commands.items():
            try:
                finished[name] = command.wait(max(0.1, deadline - time.monotonic()))
            except (TimeoutError, RuntimeError) as exc:
                say(f"warning: {exc}")
        return finished

    @classmethod
    def stop_all(cls, grace: float = 15.0) -> None:
        """SIGTERM whatever is still running and SIGKILL what is left after `grace` seconds: a failed or
        interrupted measurement must not leave services running on the stack."""
        running = {m.name: m for m in cls.live if m.running()}
        for m in running.values():
            m.terminate()
        cls.wait_all(running, grace)
        for m in list(cls.live):
            m._kill()
            m._reaped()


def run_measured(argv: Sequence[str], env: dict[str, str], log: Path, timeout: float) -> Finished:
    return Measured(argv, env, log).wait(timeout)


def run_worker(task: str, settings: Settings, log: Path, timeout: float, *args: str) -> tuple[dict[str, Any], int]:
    """Run `python -m bench.worker TASK ...` in the namespace; its JSON answer and its peak RSS (KiB: with
    worker processes of its own, their sum). The answer also carries "processes", and the launcher's "wall_s"
    and "cpu_seconds" (interpreter start-up included, as for a `hub` command)."""
    argv = [sys.executable, "-m", "bench.worker", task, *args]
    finished = Measured(argv, hub_env(settings), log, cwd=BENCH_DIR.parent).wait(timeout)
    if finished.returncode != 0:
        raise RuntimeError(f"worker {task} exited {finished.returncode}; end of {log}:\n{finished.tail()}")
    answer = None
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{") and '"bench_worker"' in line:
            answer = json.loads(line)
            break
    if answer is None:
        raise RuntimeError(f"worker {task} printed no result; end of {log}:\n{finished.tail()}")
    answer["processes"] = finished.processes
    answer["wall_s"] = finished.seconds
    answer["cpu_seconds"] = finished.cpu_seconds
    answer["largest_process_peak_rss_kb"] = finished.max_rss_kb
    answer["process_tree_peak_rss_kb"] = finished.tree_rss_kb
    return answer, finished.peak_kb


# -- statistics -------------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100): a value that was actually observed."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def free_port() -> int:
    """A port nothing listens on now, on 127.0.0.1, for a server the bench starts."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(client) -> bool:
    """`hub web serve` (an httpx client on it) answers /healthz."""
    import httpx

    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.5, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(interval)


def java() -> str:
    found = shutil.which("java")
    if not found:
        raise RuntimeError("java not found on PATH: Kafka's perf tools need Java 17 or newer")
    return found
