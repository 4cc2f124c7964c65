"""`hub court publish|simulate`: what a court's case system uses to hand events to the hub.

`hub court publish` exits with one of the codes below (EXIT_CODES, also shown by its --help), so that a
scheduler can tell a published file from a refused one, a failed delivery and a partial publication.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from hub import errors
from hub.cli.common import console, err_console, error, escape, group, progress_bar, settings
from hub.domain.events import parse_event
from hub.topics import COURT_EVENTS
from producers.parsing import (
    ACCEPTED_SUFFIXES,
    InputFileError,
    ParsedLine,
    UnknownFormatError,
    file_format,
    iter_events_file,
)
from producers.publisher import CourtPublisher, Outgoing, PublishReport
from producers.simulator import SimulationConfig, simulate

# Exit codes of `hub court publish`:
EXIT_OK = errors.EXIT_OK  # everything published (--dry-run: everything valid); an empty file with --allow-empty
EXIT_INVALID = (
    errors.EXIT_FOUND
)  # invalid input, nothing published (also an unreadable file, bad CSV header, empty file)
EXIT_USAGE = errors.EXIT_USAGE  # typer's own code for a usage error; `hub` exits with it on a configuration error too
EXIT_DELIVERY = errors.EXIT_UNAVAILABLE  # a delivery failed
EXIT_PARTIAL = errors.EXIT_PARTIAL  # --skip-invalid published the valid records but rejected some
EXIT_CODES = (
    (EXIT_OK, "everything published (with --dry-run: everything valid); an empty file with --allow-empty"),
    (
        EXIT_INVALID,
        "invalid input, nothing published: an invalid record, an event id reused with other content, "
        "a file that cannot be read, a bad CSV header, or a file with no events (without --allow-empty)",
    ),
    (EXIT_USAGE, "usage or configuration error (bad options, bad HUB_ settings)"),
    (EXIT_DELIVERY, "Kafka not answering or refusing us, the topic missing, or a delivery failed"),
    (EXIT_PARTIAL, "--skip-invalid: the valid records published (with --dry-run: valid), some rejected"),
)

app = group("Publish court list events (validated first) and simulate court histories.")

# Paragraphs are rewrapped to the terminal; a paragraph after "\b" keeps its line breaks.
PUBLISH_HELP = "\n\n".join(
    (
        "Validate every record, then publish all of them to court.list-events, or nothing at all.",
        "Problems are printed as FILE:LINE: field: reason. An event dated after now (beyond "
        "HUB_CLOCK_TOLERANCE_SECONDS) is refused. A line identical to an earlier one (the same event, however "
        "formatted) is skipped and its event published once; an event id used again with other content is "
        "invalid. A file with no events (empty, blank lines only, or a CSV header only) is refused unless "
        "--allow-empty.",
        "\b\nExit codes:\n" + "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES),
        "\b\nExamples:\n  hub court publish --dry-run producers/examples/court-events.jsonl\n"
        "  hub court publish producers/examples/court-events.jsonl\n"
        "  hub court publish --history --skip-invalid rejects.jsonl old-records.csv",
    )
)


@app.command(help=PUBLISH_HELP)
def publish(
    file: Annotated[Path, typer.Argument(help="JSON Lines (.jsonl) or CSV (.csv) court events (docs/design.md §5).")],
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
    allow_empty: Annotated[
        bool,
        typer.Option("--allow-empty", help="A file with no events is not an error: nothing is published, exit 0."),
    ] = False,
) -> None:
    cfg = settings()
    publisher = None if dry_run else CourtPublisher(cfg, history=history)
    ready: list[Outgoing] = []
    valid = 0
    rejected: list[ParsedLine] = []
    duplicates = 0
    now = dt.datetime.now(dt.UTC)
    tolerance = dt.timedelta(seconds=cfg.clock_tolerance_seconds)
    try:
        for item in iter_events_file(file, now, tolerance):
            if item.duplicate_of is not None:
                duplicates += 1
            elif item.event is None:
                rejected.append(item)
            else:
                valid += 1
                if publisher is not None:
                    ready.append(publisher.prepare(item.event))
    except InputFileError as exc:
        error(exc)
        raise typer.Exit(EXIT_INVALID) from None
    if valid + len(rejected) + duplicates == 0:
        if not allow_empty:
            error(
                f"{file}: no events in the file (it is empty, has only blank lines, or is a CSV header only); "
                "nothing published (use --allow-empty if an empty file is expected)"
            )
            raise typer.Exit(EXIT_INVALID)
        console.print(f"{file}: no events in the file; nothing published")
        return
    for item in rejected:
        for problem in item.problems:
            err_console.print(str(problem))
    total = valid + len(rejected) + duplicates
    if rejected and skip_invalid is None:
        err_console.print(
            f"{len(rejected)} of {total} records invalid; nothing published "
            "(fix them, or use --skip-invalid REJECTS to publish the rest)"
        )
        raise typer.Exit(EXIT_INVALID)
    if rejected and skip_invalid is not None:
        _write_rejects(skip_invalid, rejected)
        err_console.print(f"{len(rejected)} invalid records written to {skip_invalid}")
    if duplicates:
        console.print(f"{duplicates} duplicate line{'s' if duplicates != 1 else ''} skipped")
    done = EXIT_PARTIAL if rejected else EXIT_OK
    if publisher is None:
        console.print(f"{file}: {valid} valid, {len(rejected)} invalid; dry run, nothing published")
        raise typer.Exit(done)
    if ready:
        publisher.check_ready(ready[0].court_code)
    with progress_bar("publishing", len(ready)) as advance:
        report = publisher.send(ready, progress=advance)
    _print_report(report, cfg.topic(COURT_EVENTS), history)
    if not report.ok:
        raise typer.Exit(EXIT_DELIVERY)
    raise typer.Exit(done)


def _write_rejects(path: Path, rejected: list[ParsedLine]) -> None:
    try:
        with open(path, "w", encoding="utf-8") as out:
            for item in rejected:
                reasons = [f"{p.field}: {p.reason}" for p in item.problems]
                out.write(json.dumps({"line": item.line, "problems": reasons, "raw": item.raw}, ensure_ascii=False))
                out.write("\n")
    except OSError as exc:
        error(f"cannot write the rejects file {path}: {exc.strerror or exc}; nothing published")
        raise typer.Exit(EXIT_USAGE) from None


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
        Path | None,
        typer.Option(
            "--out",
            help=f"Write the history (for `publish --history`) in the format its extension names: {ACCEPTED_SUFFIXES}.",
        ),
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
    live_out: Annotated[
        Path | None,
        typer.Option(
            "--live-out", help=f"Write the live events, in the format its extension names: {ACCEPTED_SUFFIXES}."
        ),
    ] = None,
    do_publish: Annotated[
        bool,
        typer.Option("--publish", help="Publish the history as a historical import, then the live events."),
    ] = False,
    breaches_out: Annotated[
        Path | None, typer.Option("--breaches-out", help="Write the injected breaches (rule, party, entry_id) as JSON.")
    ] = None,
) -> None:
    """Generate a deterministic, realistic court history with a controllable share of breaches.

    \b
    Examples:
      hub court simulate --debtors 1000 --seed 1 --out history.jsonl --breaches-out breaches.json
      hub court simulate --debtors 1000 --seed 1 --out history.csv
      hub court simulate --debtors 1000 --seed 1 --live 20 --publish
    """
    if out is None and not do_publish:
        error("give --out FILE, --publish, or both")
        raise typer.Exit(EXIT_USAGE)
    if live_out is not None and not live:
        error("--live-out needs --live N")
        raise typer.Exit(EXIT_USAGE)
    for option, path in (("--out", out), ("--live-out", live_out)):
        if path is None:
            continue
        try:
            file_format(path)  # before the work: the extension names the format written
        except UnknownFormatError as exc:
            error(f"{option} {exc}")
            raise typer.Exit(EXIT_USAGE) from None
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
        _write_simulated(out, lambda: result.write(out))
        console.print(f"wrote {len(result.events)} events for {debtors} debtors to {out}")
    if live_out is not None:
        _write_simulated(live_out, lambda: result.write_live(live_out))
        console.print(f"wrote {len(result.live)} live events to {live_out}")
    if breaches_out is not None:
        _write_simulated(breaches_out, lambda: result.write_breaches(breaches_out))
        console.print(f"wrote {len(result.breaches)} injected breaches to {breaches_out}")
    if do_publish:
        cfg = settings()
        for records, history in ((result.events, True), (result.live, False)):
            if not records:
                continue
            publisher = CourtPublisher(cfg, history=history)
            ready = [publisher.prepare(parse_event(record, family="court")) for record in records]
            if ready:
                publisher.check_ready(ready[0].court_code)
            with progress_bar("publishing", len(ready)) as advance:
                report = publisher.send(ready, progress=advance)
            _print_report(report, cfg.topic(COURT_EVENTS), history)
            if not report.ok:
                sys.exit(EXIT_DELIVERY)


def _write_simulated(path: Path, write: Callable[[], None]) -> None:
    try:
        write()
    except OSError as exc:
        error(f"cannot write {path}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_USAGE) from None
