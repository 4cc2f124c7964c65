"""`hub`: the one command line of the hub; each subcommand group lives in its own module.

Every expected failure ends in one or two lines and an exit code of hub.errors (hub.cli.failures says which);
`hub --debug ...` (or HUB_LOG_LEVEL=DEBUG) also prints the traceback."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from hub.cli.common import CONTEXT, error
from hub.cli.failures import explain
from hub.errors import EXIT_INTERRUPTED

# Each group's module is imported only when its group is run: every `hub` process (a service, a one-off check,
# each test's subprocess) would otherwise pay for all of them (the simulator, numpy, the web stack).
GROUPS = ("dev", "topics", "acl", "court", "agency", "db", "ledger", "audit", "register", "web")


def build(argv: list[str] | None = None) -> typer.Typer:
    """The command line with the groups `argv` may reach: the one it names, or all (help, no arguments)."""
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
    app.callback()(_options)
    named = next((a for a in argv or () if not a.startswith("-")), None)
    for group in (named,) if named in GROUPS else GROUPS:
        module = importlib.import_module(f"hub.cli.{group}")
        app.add_typer(module.app, name=group)
    if named not in GROUPS:
        from hub.cli.demo import demo

        app.command("demo")(demo)
    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # every group, as the README's checks read them
        return build()
    raise AttributeError(name)


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
        build(sys.argv[1:])()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        message, code = explain(exc)
        if _debug or os.environ.get("HUB_LOG_LEVEL", "").upper() == "DEBUG":
            traceback.print_exc()
        error(message)
        sys.exit(code)
