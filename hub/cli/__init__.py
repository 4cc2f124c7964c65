"""`hub`: the one command line of the hub; each subcommand group lives in its own module.

Every expected failure ends in one or two lines and an exit code of hub.errors (hub.cli.failures says which);
`hub --debug ...` (or HUB_LOG_LEVEL=DEBUG) also prints the traceback."""

from __future__ import annotations

import os
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from hub.cli import acl, agency, audit, court, db, demo, dev, ledger, register, topics, web
from hub.cli.common import CONTEXT, error
from hub.cli.failures import explain
from hub.errors import EXIT_INTERRUPTED

app = typer.Typer(
    name="hub",
    help="Credit-sanction sharing hub: courts publish the dishonest-debtor list, agencies apply and lift "
    "sanctions, the ledger names every breach, auditors replay. Start with `hub dev up` and `hub demo`; "
    "see README.md and docs/design.md.",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=CONTEXT,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(dev.app, name="dev")
app.add_typer(topics.app, name="topics")
app.add_typer(acl.app, name="acl")
app.add_typer(court.app, name="court")
app.add_typer(agency.app, name="agency")
app.add_typer(db.app, name="db")
app.add_typer(ledger.app, name="ledger")
app.add_typer(audit.app, name="audit")
app.add_typer(register.app, name="register")
app.add_typer(web.app, name="web")
app.command("demo")(demo.demo)

_debug = False


def _version() -> str:
    try:
        return version("credit-sanction-hub")
    except PackageNotFoundError:
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        print(f"hub {_version()}")
        raise typer.Exit(0)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Print the traceback of a failure too (as HUB_LOG_LEVEL=DEBUG does).")
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True),
    ] = False,
) -> None:
    global _debug
    _debug = debug


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        message, code = explain(exc)
        if _debug or os.environ.get("HUB_LOG_LEVEL", "").upper() == "DEBUG":
            traceback.print_exc()
        error(message)
        sys.exit(code)
