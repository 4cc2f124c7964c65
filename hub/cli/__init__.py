"""`hub`: the one command line of the hub; each subcommand group lives in its own module."""

from __future__ import annotations

import sys

import typer

from hub.cli import acl, agency, audit, court, db, demo, dev, ledger, topics
from hub.cli.common import error
from hub.codec import CodecError, SchemaCatalogueError
from hub.config import ConfigError
from hub.db import NotMigrated
from hub.devstack.state import StackError
from hub.topics import TopicError

app = typer.Typer(
    name="hub",
    help="Credit-sanction sharing hub: courts publish the dishonest-debtor list, agencies apply and lift sanctions.",
    no_args_is_help=True,
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
app.command("demo")(demo.demo)

_CLEAR_ERRORS = (ConfigError, StackError, TopicError, CodecError, SchemaCatalogueError, NotMigrated)


def main() -> None:
    try:
        app()
    except _CLEAR_ERRORS as exc:
        error(exc)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
