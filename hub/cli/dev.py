"""`hub dev up|down|status`: the checkout's local Kafka and PostgreSQL; `hub dev compose-secrets` for
docker-compose.yml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hub import devstack
from hub.cli.common import console, escape, group, settings
from hub.devstack.compose import DEFAULT_FOLDER, make_for

app = group("Start, stop and inspect the local Kafka broker and PostgreSQL cluster.")


def _say(message: str) -> None:
    console.print(message, soft_wrap=True)


@app.command()
def up() -> None:
    """Start both (idempotent) and wait until each answers; data is kept across restarts.

    Kafka listens with SASL_SSL (SCRAM-SHA-512) only; its CA and every principal's password are in <state>/secrets.

    \b
    Example:
      hub dev up
    """
    devstack.up(settings(), say=_say)


@app.command()
def down() -> None:
    """Stop both; data stays in the state folder for the next `up`.

    \b
    Example:
      hub dev down
    """
    devstack.down(settings(), say=_say)


@app.command()
def status(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing; exit 0 only if all answer.")] = False,
) -> None:
    """Print the bootstrap address, the database URLs and whether each answers; exit 1 if any does not.

    \b
    Examples:
      hub dev status
      hub dev status --quiet && echo ready
    """
    components = devstack.status(settings())
    healthy = all(c.answers for c in components)
    if not quiet:
        for c in components:
            state = "[green]answers[/]" if c.answers else "[red]DOWN   [/]"
            where = "local" if c.managed else "external"
            line = f"{c.name:<13} {state}  {escape(c.address)} ({where}) {escape(c.detail)}"
            console.print(line.rstrip(), markup=True)
    raise typer.Exit(0 if healthy else 1)


@app.command("compose-secrets")
def compose_secrets(
    folder: Annotated[
        Path,
        typer.Argument(help="Where docker-compose.yml reads them: keep the default unless you edit its `secrets:`."),
    ] = DEFAULT_FOLDER,
) -> None:
    """Make the CA, the servers' certificates and every principal's and role's password for `docker compose up`.

    Idempotent: existing files are kept, missing ones added (folder 0700, files 0600). Nothing is printed but
    the file names.

    \b
    Example:
      hub dev compose-secrets && docker compose up -d
    """
    outcome = make_for(settings(), folder)
    _say(f"{folder}: made {len(outcome.made)} files, kept {len(outcome.kept)}")
    for name in outcome.made:
        _say(f"  made {name}")
