"""Shared CLI plumbing: consoles and the settings object."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hub.config import Settings, get_settings
from hub.domain.times import read_instant
from hub.log import bind_process, configure

if TYPE_CHECKING:
    from sqlalchemy import Engine

# Options every service command shares (`hub agency run`, `hub ledger run`).
Once = Annotated[bool, typer.Option("--once", help="Process up to the end offsets present at start, then exit.")]
MetricsPort = Annotated[
    int | None,
    typer.Option("--metrics-port", min=1, max=65535, help="Serve Prometheus metrics on HUB_METRICS_ADDRESS:PORT."),
]
# The same for a service that takes --workers: each worker serves its own metrics.
WorkersMetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=1,
        max=65535,
        help="Serve Prometheus metrics on HUB_METRICS_ADDRESS:PORT; with --workers N, worker i (0 to N-1) on PORT+i.",
    ),
]


def _cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container's cpuset narrows)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# `hub agency run` and `hub register run`: one worker per CPU unless told otherwise (the help shows the number).
DEFAULT_WORKERS = _cpus()
Workers = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="Processes of the service, sharing its partitions as one consumer group (default: the CPUs this "
        "process may use); more than the topic's partitions would idle. 1: no child processes.",
    ),
]

# Output quotes data back (case numbers, file names, reasons): never read as markup or emoji codes unless a
# line asks for styling with markup=True, and then the data in it goes through `escape`.
console = Console(markup=False, emoji=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)

__all__ = ["console", "emit", "err_console", "error", "escape", "group"]

# Plain help (flags without a type, defaults shown), -h as well as --help, in every group and command.
CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 110}


def group(help: str) -> typer.Typer:
    """A subcommand group as every `hub` group is made."""
    return typer.Typer(
        help=help,
        no_args_is_help=True,
        rich_markup_mode=None,
        context_settings=CONTEXT,
        pretty_exceptions_enable=False,
        add_completion=False,
    )


def emit(text: str) -> None:
    """Machine-readable output (JSON, CSV) byte for byte, and without rich's rendering cost."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def error(message: object) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(message))}", markup=True)


def parse_instant(value: str, option: str) -> dt.datetime:
    """An instant on the command line: a date means the end of that day, and a time without an offset is
    read in the courts' time zone (HUB_COURT_TIME_ZONE), as a Chinese auditor means it; `now` is now."""
    if value.strip().lower() == "now":
        return dt.datetime.now(dt.UTC)
    try:
        return read_instant(value, get_settings().zone)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def settings() -> Settings:
    current = get_settings()
    configure(current.log_level, current.log_format)
    return current


def kafka_settings(principal: str) -> Settings:
    """The settings of a one-off command that needs the broker, once it answers as `principal`: at most
    HUB_CONNECT_TIMEOUT_SECONDS, then hub.errors.Unavailable says which broker and what to do."""
    from hub.clients import wait_for_kafka

    current = settings()
    wait_for_kafka(current, principal, forever=False)
    return current


@contextlib.contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal; silent otherwise (logs and CI stay clean)."""
    if not err_console.is_terminal:
        yield lambda _n: None
        return
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@contextlib.contextmanager
def progress_counter(label: str) -> Iterator[Callable[[int | None, int], None]]:
    """Like progress_bar, for work that learns its total as it goes: call with (total, done)."""
    if not err_console.is_terminal:
        yield lambda _total, _done: None
        return
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda total, done: progress.update(task, total=total, completed=done)


def run_engine(
    cfg: Settings,
    handler,
    open_db: Callable[[], Engine],
    codec,
    once: bool,
    metrics_port: int | None,
    workers: int = 1,
) -> None:
    """Run a service's handler on the one consumer engine until stopped (or, with --once, to the end offsets
    present at start, then print its summary); exits with the engine's code.

    With `workers` above 1 this process supervises that many copies of its own command (hub.engine.workers):
    it migrates the database and waits for the broker once, so that a failure is one line, not one per worker;
    a worker then opens the database without migrating it."""
    from hub.engine import ConsumerEngine
    from hub.engine import workers as pool

    worker = pool.current()
    if worker is None and workers > 1:
        from hub.clients import wait_for_kafka
        from hub.engine import metrics

        pool.check_ports(metrics_port, workers, lambda port: metrics.check_free(port, cfg.metrics_address))
        open_db().dispose()
        wait_for_kafka(cfg, handler.principal, forever=not once)
        code, summary = pool.supervise(
            sys.argv[1:], workers, service=handler.service, once=once, port=metrics_port, instance=cfg.instance_id
        )
        if once and summary is not None:
            console.print(summary.line())
        raise typer.Exit(code)
    if worker is not None:
        from hub.db import engine_for

        bind_process(worker=worker.index)
        db = engine_for(cfg, handler.service)
    else:
        db = open_db()
    engine = ConsumerEngine(cfg, handler, db, codec, once=once, metrics_port=metrics_port)
    code = engine.run()
    if worker is not None:
        worker.report(engine.summary)
    elif once and engine.summary is not None:
        console.print(engine.summary.line())
    raise typer.Exit(code)
