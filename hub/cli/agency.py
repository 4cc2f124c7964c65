"""`hub agency run|check|serve|keys`: an agency's service, its interception check, and the check service."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Annotated, Literal

import typer
from sqlalchemy import Connection

from consumers import PolicyError, load_policy
from hub.agency import keys as api_keys
from hub.agency.check import CheckError, InterceptionChecker
from hub.agency.service import AgencyHandler, open_database
from hub.cli.common import (
    DEFAULT_WORKERS,
    Once,
    Workers,
    WorkersMetricsPort,
    console,
    emit,
    err_console,
    error,
    group,
    run_engine,
    settings,
)
from hub.codec import default_codec

app = group("Run an agency's service, check a subject against its sanctions, or serve the check over HTTPS.")
keys_app = group("Issue, list and revoke the API keys of the systems that call an agency's check service.")
app.add_typer(keys_app, name="keys")


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="The agency: bank, tax, land or transport.")],
    once: Once = False,
    metrics_port: WorkersMetricsPort = None,
    workers: Workers = DEFAULT_WORKERS,
) -> None:
    """Apply and lift sanctions from court.list-events and publish feedback; runs until SIGTERM/SIGINT.

    With several workers (one per CPU by default) each is a process of its own; they share the partitions, SIGTERM
    or SIGINT stops them all, and a worker that fails stops the others and gives the run its exit code.

    \b
    Examples:
      hub agency run bank
      hub agency run tax --once
      hub agency run bank --once --workers 4
      hub agency run transport --metrics-port 9101
    """
    cfg = settings()
    try:
        policy = load_policy(name, cfg)
    except PolicyError as exc:
        error(exc)
        raise typer.Exit(2) from None
    codec = default_codec()
    run_engine(
        cfg,
        AgencyHandler(cfg, policy, codec),
        lambda: open_database(cfg, name, forever=not once),
        codec,
        once,
        metrics_port,
        workers,
    )


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


def _policy(cfg, name: str):
    try:
        return load_policy(name, cfg)
    except PolicyError as exc:
        error(exc)
        raise typer.Exit(2) from None


@app.command()
def serve(
    name: Annotated[str, typer.Argument(help="The agency whose sanctions to serve.")],
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port; 0 takes any free one.")] = 0,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the interception check over HTTPS (POST /v1/checks, /v1/checks/batch, GET /v1/subjects/ID).

    Answers from an index of the agency's restrictions that follows its commits; each BLOCKED answer is
    recorded (in the database, or the local journal while it is away) before it is sent. Callers need an API
    key (`hub agency keys add`). Runs until SIGTERM/SIGINT.

    \b
    Examples:
      hub agency serve transport --port 8443
      hub agency serve bank
    """
    from hub.agency.serve import serve as run_service

    cfg = settings()
    policy = _policy(cfg, name)

    def announce(url: str, subjects: int) -> None:
        console.print(f"{policy.name} check service on {url} ({subjects} restricted subjects)")
        console.print(f"its OpenAPI document: {url}/openapi.json")

    run_service(cfg, policy.name, host, port, announce)


@contextlib.contextmanager
def _keys(cfg, agency: str) -> Iterator[Connection]:
    """The agency's database as its owner (migrated if need be), in one transaction; a refused key is exit 2."""
    db = open_database(cfg, agency)
    try:
        with db.begin() as conn:
            yield conn
    except api_keys.ApiKeyError as exc:
        error(exc)
        raise typer.Exit(2) from None
    finally:
        db.dispose()


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="The agency.")],
    system: Annotated[str, typer.Option("--system", help="The calling system, recorded as the channel of its blocks.")],
    rate: Annotated[
        float | None, typer.Option("--rate", help="Questions per second (default HUB_CHECK_RATE_PER_KEY).")
    ] = None,
) -> None:
    """Issue a key for one calling system; the key is printed once and only its SHA-256 is kept.

    \b
    Examples:
      hub agency keys add transport --system railway-12306
      hub agency keys add bank --system loan-desk --rate 200
    """
    cfg = settings()
    policy = _policy(cfg, name)
    with _keys(cfg, policy.name) as conn:
        key, secret = api_keys.add(conn, system, rate)
    err_console.print(f"key {key.key_id} for {key.system}; it is shown once, keep it secret:")
    emit(secret)


@keys_app.command("list")
def keys_list(name: Annotated[str, typer.Argument(help="The agency.")]) -> None:
    """Every key: its id, system, rate, when made and when revoked (no secret is ever shown again).

    \b
    Examples:
      hub agency keys list transport
    """
    cfg = settings()
    policy = _policy(cfg, name)
    with _keys(cfg, policy.name) as conn:
        listed = api_keys.listed(conn)
    if not listed:
        console.print(f"no keys: `hub agency keys add {policy.name} --system NAME` issues one")
    for k in listed:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M:%S%z}" if k.revoked_at else "active"
        rate = f"{k.rate_per_second:g}/s" if k.rate_per_second else "default rate"
        console.print(f"{k.key_id}  {k.system}  {rate}  made {k.created_at:%Y-%m-%d %H:%M:%S%z}  {state}")


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The agency.")],
    key_id: Annotated[str, typer.Argument(help="The key id (as `keys list` shows it), or the whole key.")],
) -> None:
    """Revoke a key: running check services refuse it within a second.

    \b
    Examples:
      hub agency keys revoke transport 3f9a0c2b71de
    """
    cfg = settings()
    policy = _policy(cfg, name)
    with _keys(cfg, policy.name) as conn:
        key = api_keys.revoke(conn, key_id)
    console.print(f"key {key.key_id} of {key.system} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S%z}")
