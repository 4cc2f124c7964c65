"""`hub ledger run|report`: the compliance ledger."""

from __future__ import annotations

import datetime as dt
import json
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

app = group("The compliance ledger: record everything, name every breach.")


@app.command()
def run(
    once: Once = False,
    metrics_port: MetricsPort = None,
) -> None:
    """Store court events and every agency's feedback in the hash chain; publish checkpoints.

    \b
    Examples:
      hub ledger run
      hub ledger run --once
    """
    cfg = settings()
    codec = default_codec()
    run_engine(cfg, LedgerHandler(cfg, codec), lambda: open_database(cfg, forever=not once), codec, once, metrics_port)


@app.command()
def report(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="A date (the end of that day) or a time, read in the courts' time zone unless it has an offset "
            "(default: now).",
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
