"""`hub agency run|check`: an agency's service, and its interception check."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

from consumers import PolicyError, load_policy
from hub.agency.check import CheckError, InterceptionChecker
from hub.agency.service import AgencyHandler, open_database
from hub.cli.common import MetricsPort, Once, console, emit, err_console, error, group, settings
from hub.codec import default_codec
from hub.engine import ConsumerEngine

app = group("Run an agency's service, or check a subject against its sanctions.")


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="The agency: bank, tax, land or transport.")],
    once: Once = False,
    metrics_port: MetricsPort = None,
) -> None:
    """Apply and lift sanctions from court.list-events and publish feedback; runs until SIGTERM/SIGINT.

    \b
    Examples:
      hub agency run bank
      hub agency run tax --once
      hub agency run transport --metrics-port 9101
    """
    cfg = settings()
    try:
        policy = load_policy(name, cfg)
    except PolicyError as exc:
        error(exc)
        raise typer.Exit(2) from None
    db = open_database(cfg, name, forever=not once)
    codec = default_codec()
    engine = ConsumerEngine(cfg, AgencyHandler(cfg, policy, codec), db, codec, once=once, metrics_port=metrics_port)
    code = engine.run()
    if once and engine.summary is not None:
        console.print(engine.summary.line())
    raise typer.Exit(code)


@app.command()
def check(
    name: Annotated[str, typer.Argument(help="The agency whose sanctions to check.")],
    subject: Annotated[str, typer.Option("--subject", help="Resident ID number or unified social credit code.")],
    measure: Annotated[str, typer.Option("--measure", help="e.g. AIR_TRAVEL_RESTRICTED.")],
    channel: Annotated[
        str, typer.Option("--channel", help="Where the check happens (recorded when it blocks).")
    ] = "cli",
    output: Annotated[Literal["text", "json"], typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """ALLOWED or BLOCKED (with the blocking entries), from the agency's own records; a block is recorded.

    \b
    Examples:
      hub agency check transport --subject 11010519491231002X --measure AIR_TRAVEL_RESTRICTED
      hub agency check bank --subject 91110000600037341L --measure LOAN_RESTRICTED --format json
    """
    cfg = settings()
    try:
        checker = InterceptionChecker(cfg, name, cached=False)
        result = checker.check(subject, measure, channel)
    except (CheckError, PolicyError) as exc:
        error(exc)
        raise typer.Exit(2) from None
    if result.decision == "BLOCKED":
        err_console.print(
            f"note: interception {result.interception_id} recorded; the {name} service sends it as feedback"
        )
    if output == "json":
        emit(json.dumps(result.as_dict(), ensure_ascii=False))
    elif result.decision == "BLOCKED":
        console.print(f"BLOCKED {result.measure} for {result.subject}: entries {', '.join(result.entries)}")
    else:
        console.print(f"ALLOWED {result.measure} for {result.subject}: no active entry")
