"""`hub court publish|simulate`: what a court's case system uses to hand events to the hub."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from hub.cli.common import console, err_console, error, escape, progress_bar, settings
from hub.domain.events import parse_event
from hub.topics import COURT_EVENTS
from producers.parsing import InputFileError, iter_events_file
from producers.publisher import CourtPublisher, Outgoing, PublishReport
from producers.simulator import SimulationConfig, simulate

app = typer.Typer(
    help="Publish court list events (validated first) and simulate court histories.", no_args_is_help=True
)

EXIT_INVALID = 1
EXIT_DELIVERY = 3


@app.command()
def publish(
    file: Annotated[Path, typer.Argument(help="JSON Lines (.jsonl) or CSV (.csv) court events (DESIGN §5).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report only; publish nothing.")] = False,
    skip_invalid: Annotated[
        Path | None,
        typer.Option(
            "--skip-invalid", metavar="REJECTS", help="Publish the valid records; invalid ones go to REJECTS."
        ),
    ] = None,
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="Load past events as a historical import: marked so, and exempt from the ledger's "
            "publication-time rules (PUBLICATION_LATE, late-recorded shielding).",
        ),
    ] = False,
) -> None:
    """Validate every record, then publish all of them to court.list-events, or nothing at all.

    Problems are printed as FILE:LINE: field: reason. An event dated after now (beyond
    HUB_CLOCK_TOLERANCE_SECONDS) is refused. Exit 1: invalid input (nothing published unless
    --skip-invalid); exit 3: a delivery failed.
    """
    cfg = settings()
    publisher = None if dry_run else CourtPublisher(cfg, history=history)
    ready: list[Outgoing] = []
    rejected = []
    now = dt.datetime.now(dt.UTC)
    tolerance = dt.timedelta(seconds=cfg.clock_tolerance_seconds)
    try:
        for item in iter_events_file(file, now, tolerance):
            if item.event is None:
                rejected.append(item)
            elif publisher is not None:
                ready.append(publisher.prepare(item.event))
            else:
                ready.append(None)  # type: ignore[arg-type]
    except InputFileError as exc:
        error(exc)
        raise typer.Exit(EXIT_INVALID) from None
    for item in rejected:
        for problem in item.problems:
            err_console.print(str(problem))
    total = len(ready) + len(rejected)
    if rejected and skip_invalid is None:
        err_console.print(
            f"{len(rejected)} of {total} records invalid; nothing published "
            "(fix them, or use --skip-invalid REJECTS to publish the rest)"
        )
        raise typer.Exit(EXIT_INVALID)
    if rejected and skip_invalid is not None:
        with open(skip_invalid, "w", encoding="utf-8") as out:
            for item in rejected:
                reasons = [f"{p.field}: {p.reason}" for p in item.problems]
                out.write(json.dumps({"line": item.line, "problems": reasons, "raw": item.raw}, ensure_ascii=False))
                out.write("\n")
        err_console.print(f"{len(rejected)} invalid records written to {skip_invalid}")
    if publisher is None:
        console.print(f"{file}: {len(ready)} valid, {len(rejected)} invalid; dry run, nothing published")
        return
    with progress_bar("publishing", len(ready)) as advance:
        report = publisher.send(ready, progress=advance)
    _print_report(report, cfg.topic(COURT_EVENTS), history)
    if not report.ok:
        raise typer.Exit(EXIT_DELIVERY)


def _print_report(report: PublishReport, topic: str, history: bool = False) -> None:
    what = "events as a historical import" if history else "events"
    console.print(
        f"published {report.published} {what} to {topic} in {report.seconds:.2f}s ({report.rate:,.0f} events/s)"
    )
    if report.failures:
        for event_id, reason in report.failures[:20]:
            err_console.print(f"[red]delivery failed[/] {event_id}: {escape(str(reason))}", markup=True)
        err_console.print(f"{len(report.failures)} deliveries failed")


@app.command("simulate")
def simulate_command(
    debtors: Annotated[int, typer.Option("--debtors", min=1, help="How many debtors (persons and organisations).")],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same history, byte for byte.")],
    start: Annotated[
        dt.datetime,
        typer.Option("--start", formats=["%Y-%m-%d"], help="First day of the three-year simulated window."),
    ] = dt.datetime(2023, 1, 2),
    breach_rate: Annotated[
        float,
        typer.Option("--breach-rate", min=0.0, max=1.0, help="Share of entries given one procedural breach."),
    ] = 0.01,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the history as JSON Lines (for `publish --history`).")
    ] = None,
    live: Annotated[
        int,
        typer.Option(
            "--live",
            min=0,
            help="Also make events dated just before now for N new debtors, to publish live (with a breach rate, "
            "one of them and one shielding of the history are published late).",
        ),
    ] = 0,
    live_out: Annotated[Path | None, typer.Option("--live-out", help="Write the live events as JSON Lines.")] = None,
    do_publish: Annotated[
        bool,
        typer.Option("--publish", help="Publish the history as a historical import, then the live events."),
    ] = False,
    breaches_out: Annotated[
        Path | None, typer.Option("--breaches-out", help="Write the injected breaches (rule, party, entry_id) as JSON.")
    ] = None,
) -> None:
    """Generate a deterministic, realistic court history with a controllable share of breaches."""
    if out is None and not do_publish:
        error("give --out FILE, --publish, or both")
        raise typer.Exit(2)
    if live_out is not None and not live:
        error("--live-out needs --live N")
        raise typer.Exit(2)
    live_at = dt.datetime.now(dt.UTC) if live else None
    config = SimulationConfig(
        debtors=debtors,
        seed=seed,
        start=start.date(),
        breach_rate=breach_rate,
        deadlines=settings().deadlines(),
        live_at=live_at,
        live_debtors=live,
    )
    result = simulate(config)
    if out is not None:
        result.write(out)
        console.print(f"wrote {len(result.events)} events for {debtors} debtors to {out}")
    if live_out is not None:
        result.write_live(live_out)
        console.print(f"wrote {len(result.live)} live events to {live_out}")
    if breaches_out is not None:
        result.write_breaches(breaches_out)
        console.print(f"wrote {len(result.breaches)} injected breaches to {breaches_out}")
    if do_publish:
        cfg = settings()
        for records, history in ((result.events, True), (result.live, False)):
            if not records:
                continue
            publisher = CourtPublisher(cfg, history=history)
            ready = [publisher.prepare(parse_event(record, family="court")) for record in records]
            with progress_bar("publishing", len(ready)) as advance:
                report = publisher.send(ready, progress=advance)
            _print_report(report, cfg.topic(COURT_EVENTS), history)
            if not report.ok:
                sys.exit(EXIT_DELIVERY)
