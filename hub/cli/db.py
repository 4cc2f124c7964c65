"""`hub db migrate`: bring services' databases to the current schema, as their owners."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.agency import service as agency_service
from hub.cli.common import console, error, group, settings
from hub.db import MIGRATION_CHAINS, NOT_AGENCIES, open_owned, services_of
from hub.ledger import service as ledger_service

app = group("Migrate the services' databases (each as its own role).")


@app.command()
def migrate(
    services: Annotated[
        list[str] | None,
        typer.Argument(help="Services to migrate (default: every agency, the ledger, the register, the web server)."),
    ] = None,
) -> None:
    """Run each service's migrations as its owner role and give its checker and the auditor their grants;
    services do this themselves when they start. Never run by a checker.

    \b
    Examples:
      hub db migrate
      hub db migrate bank ledger
    """
    cfg = settings()
    known = services_of(cfg)
    wanted = services or known
    unknown = [s for s in wanted if s not in known]
    if unknown:
        error(f"not a service: {', '.join(unknown)}; services: {', '.join(known)}")
        raise typer.Exit(2)
    for service in wanted:
        if service == "ledger":
            db = ledger_service.open_database(cfg)
        elif service in NOT_AGENCIES:
            db = open_owned(cfg, service, *MIGRATION_CHAINS[service])
        else:
            db = agency_service.open_database(cfg, service)
        db.dispose()
        console.print(f"{service}: migrated (database {cfg.namespace}{service}, as role {service})")
