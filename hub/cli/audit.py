"""`hub audit replay|verify`: what auditors run."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Literal

import typer
from rich.table import Table

from hub.acl import AUDITOR
from hub.audit.replay import replay as run_replay
from hub.audit.verify import record_result
from hub.audit.verify import verify as run_verify
from hub.cli.common import (
    console,
    emit,
    err_console,
    escape,
    group,
    kafka_settings,
    parse_instant,
    progress_counter,
)
from hub.domain.times import show

app = group("Rebuild history from the topics and verify the services against it.")


@app.command()
def replay(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Legal time T (events' occurred_at): a date (its end) or a time, in the courts' zone unless it has "
            "an offset. Default: --known-at.",
        ),
    ] = None,
    known_at: Annotated[
        str | None,
        typer.Option(
            "--known-at",
            help="Record time K (broker timestamps), read like --as-of. Default: the latest record's time.",
        ),
    ] = None,
    output: Annotated[Literal["json", "table"], typer.Option("--format", help="json or table.")] = "json",
) -> None:
    """Every entry's state and every agency's sanctions as of T, as known at K, with a SHA-256 digest.

    \b
    Examples:
      hub audit replay
      hub audit replay --as-of 2026-03-31 --known-at 2026-04-02 --format json
    """
    cfg = kafka_settings(AUDITOR)
    with progress_counter("replaying topics") as progress:
        result, history = run_replay(
            cfg,
            parse_instant(as_of, "--as-of") if as_of else None,
            parse_instant(known_at, "--known-at") if known_at else None,
            progress,
        )
    if output == "json":
        emit(json.dumps(result, ensure_ascii=False, sort_keys=True, indent=1))
        return
    zone = cfg.zone
    as_of, known = (dt.datetime.fromisoformat(result[k]) for k in ("as_of", "known_at"))
    console.print(f"as of {show(as_of, zone)}, as known at {show(known, zone)} (times in {zone})")
    console.print(f"read {history.records} records ({history.undecodable} undecodable)")
    if history.clashes:
        console.print(
            f"{history.clashes} entry ids appear for more than one debtor; the first is shown", style="yellow"
        )
    states: dict[str, int] = {}
    for entry in result["entries"].values():
        states[entry["state"]] = states.get(entry["state"], 0) + 1
    table = Table("state", "entries")
    for state, count in sorted(states.items()):
        table.add_row(state, str(count))
    console.print(table)
    table = Table("agency", "subjects restricted", "restrictions")
    for agency, subjects in result["sanctions"].items():
        table.add_row(agency, str(len(subjects)), str(sum(len(m) for m in subjects.values())))
    console.print(table)
    console.print(f"digest {result['digest']}")


@app.command()
def verify() -> None:
    """Compare the topics with the ledger and every agency's database, and the hash chain with the
    published checkpoints; print each difference and exit 1 if there is any.

    \b
    Example:
      hub audit verify
    """
    cfg = kafka_settings(AUDITOR)
    with progress_counter("reading topics") as progress:
        result = run_verify(cfg, progress)
    for note in result.notes:
        console.print(note)
    unrecorded = record_result(cfg, result)
    if unrecorded:
        err_console.print(f"note: {unrecorded}")
    for difference in result.differences:
        err_console.print(f"[red]DIFFERENCE[/] {escape(str(difference))}", markup=True)
    if result.ok:
        console.print(
            "[green]audit verify: PASSED[/] (topics, ledger, hash chain, checkpoints and agencies agree)", markup=True
        )
        return
    err_console.print(f"[bold red]audit verify: FAILED[/] with {len(result.differences)} differences", markup=True)
    raise typer.Exit(1)
