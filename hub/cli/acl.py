"""`hub acl apply|describe`: who may do what on Kafka, as infra/kafka/acls.toml declares it."""

from __future__ import annotations

import typer

from hub import acl
from hub.cli.common import console, err_console, group, kafka_settings

app = group("Apply and show the Kafka ACLs declared in infra/kafka/acls.toml.")


@app.command()
def apply() -> None:
    """Make the ACLs on the hub's topics and groups exactly the declared ones (idempotent; run as admin).

    \b
    Example:
      hub acl apply
    """
    cfg = kafka_settings(acl.ADMIN)
    result = acl.apply(cfg)
    for grant in result.missing:
        console.print(f"granted  {grant}")
    for grant in result.extra:
        console.print(f"revoked  {grant}")
    console.print(f"{len(acl.grants(cfg))} grants declared; {len(result.missing)} added, {len(result.extra)} removed")


@app.command()
def describe() -> None:
    """Print the ACLs in force and any drift from the declaration; exit 1 if there is drift.

    \b
    Example:
      hub acl describe
    """
    cfg = kafka_settings(acl.ADMIN)
    found = acl.drift(cfg)
    for grant in found.in_force:
        console.print(f"in force {grant}")
    for grant in found.missing:
        err_console.print(f"MISSING  {grant} (declared, not in force: run `hub acl apply`)")
    for grant in found.extra:
        err_console.print(f"EXTRA    {grant} (in force, not declared)")
    if found.missing or found.extra:
        raise typer.Exit(1)
    console.print(f"no drift: {len(found.in_force)} ACLs in force, as declared in {acl.ACL_FILE.name}")
