"""`hub ledger run|project|report`: the compliance ledger."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from itertools import groupby
from typing import Annotated, Literal

import typer
from rich.table import Table

from hub.cli.common import MetricsPort, Once, console, emit, error, group, parse_instant, run_engine, settings
from hub.codec import default_codec
from hub.domain.rules import RULES
from hub.domain.times import show
from hub.ledger.report import build_report
from hub.ledger.service import LedgerHandler, open_database
from hub.log import bind_process, get_logger

app = group("The compliance ledger: record everything, name every breach.")
PROJECTOR_NICENESS = 19  # below the services: the projection may lag in a burst, the ledger may not


@app.command()
def run(
    once: Once = False,
    metrics_port: MetricsPort = None,
) -> None:
    """Store court events and every agency's feedback in the hash chain; publish checkpoints.

    Beside itself it runs `hub ledger project` at a lower priority, which keeps the report's projection.

    \b
    Examples:
      hub ledger run
      hub ledger run --once
    """
    cfg = settings()
    codec = default_codec()
    projector = Projector([sys.executable, "-m", "hub", "ledger", "project", "--beside", str(os.getpid())])

    def opened():
        """The database is there: only now the projector, which would otherwise repeat a failure's message."""
        db = open_database(cfg, forever=not once)
        projector.start()
        return db

    try:
        run_engine(cfg, LedgerHandler(cfg, codec), opened, codec, once, metrics_port)
    finally:
        projector.stop()


class Projector:
    """`hub ledger project` beside the ledger, started again if it dies (after a pause doubling from a second
    to a minute): without it the report and the desk stay right, but judge more and more rows themselves."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.child: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._keep, name="report-projector", daemon=True).start()

    def _keep(self) -> None:
        pause = 1.0
        while True:
            with self.lock:
                if self.stopping.is_set():
                    return
                self.child = subprocess.Popen(self.argv)
                started = time.monotonic()
            code = self.child.wait()
            if self.stopping.is_set():
                return
            pause = 1.0 if time.monotonic() - started > 300 else pause
            get_logger("hub.ledger").warning(
                "report projector exited; starting it again", exit_code=code, retry_in=pause
            )
            if self.stopping.wait(pause):
                return
            pause = min(pause * 2, 60.0)

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
            child = self.child
        if child is None:
            return
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()


@app.command()
def project(
    once: Annotated[bool, typer.Option("--once", help="Project up to the ledger's last row, then exit.")] = False,
    beside: Annotated[
        int | None,
        typer.Option("--beside", hidden=True, help="Started by `hub ledger run` (this PID): nice, and end with it."),
    ] = None,
) -> None:
    """Keep the report's projection up to date: each component of linked entries judged, until its horizon.

    `hub ledger run` starts one beside itself (at a lower priority, so that judging a bulk import never holds
    up recording); run it alone with --once to bring the projection up to the ledger's last row. Without it
    `hub ledger report` is still right, judging what is not projected yet itself, only slower.

    \b
    Examples:
      hub ledger project --once
    """
    from hub.ledger.projection import ReportProjection, follow

    cfg = settings()
    if beside is not None:
        os.nice(PROJECTOR_NICENESS)
        bind_process(process="report-projector")
    db = open_database(cfg, forever=not once)
    projection = ReportProjection(cfg)
    if once:
        with db.begin() as conn:
            rows = projection.catch_up(conn, dt.datetime.now(dt.UTC), final=True)
        console.print(f"report projection: {rows} rows projected, up to date")
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _number, _frame: stop.set())
    follow(projection, db, stop, beside)


@app.command()
def report(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="A date (the end of that day), a time, read in the courts' time zone unless it has an offset, or "
            "`now` (the default). From now on it is answered from the ledger's projection, in seconds; an earlier "
            "instant judges the whole history.",
        ),
    ] = None,
    output: Annotated[Literal["table", "json", "csv"], typer.Option("--format", help="table, json or csv.")] = "table",
    party: Annotated[
        str | None,
        typer.Option("--party", help="Only this party: court:J0105 or agency:bank (or J0105, bank)."),
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule, e.g. SHIELD_OVERDUE.")] = None,
) -> None:
    """Every breach of the Opinions' rules as of an instant, and a summary.

    \b
    Examples:
      hub ledger report
      hub ledger report --as-of 2026-03-31 --party bank --format csv > breaches.csv
    """
    if rule is not None and rule not in RULES:
        error(f"unknown rule {rule!r}; rules: {', '.join(RULES)}")
        raise typer.Exit(2)
    result = build_report(settings(), parse_instant(as_of, "--as-of") if as_of else None, party, rule)
    if output == "json":
        emit(json.dumps(result.as_dict(), ensure_ascii=False, indent=1))
    elif output == "csv":
        emit(result.as_csv())
    else:
        _table(result)


def _table(result) -> None:
    data = result.as_dict()
    zone = result.zone
    offset = dt.datetime.now(zone).strftime("%z")
    console.print(
        f"Compliance report as of {show(result.as_of, zone)} (times in {zone}, UTC{offset[:3]}:{offset[3:]})",
        style="bold",
    )
    for party, items in groupby(sorted(result.violations, key=lambda v: (v.party, v.due_at)), key=lambda v: v.party):
        table = Table("rule", "entry", "due at", "detail", title=party, title_justify="left")
        for v in items:
            table.add_row(v.rule, v.entry_id, show(v.due_at, zone), v.detail)
        console.print(table)
    if result.imported:
        console.print(
            f"{result.imported} court events were loaded as a historical import (exempt from publication-time rules)"
        )
    summary = data["summary"]
    console.print("entries: " + ", ".join(f"{k} {v}" for k, v in summary["entries"].items()))
    console.print(f"violations: {len(result.violations)}")
    for rule, count in summary["violations_by_rule"].items():
        console.print(f"  {rule:<36} {count}")
    for party, count in summary["violations_by_party"].items():
        console.print(f"  {party:<36} {count}")
