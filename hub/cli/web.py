"""`hub web serve|accounts`: the public register's pages, the oversight desk, and the desk's accounts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hub.cli.common import console, error, group, settings
from hub.domain.times import show

app = group("The web server: the public register's pages and JSON API, and the oversight desk.")
accounts_app = group("Oversight-desk accounts: auditors, and courts that see their own entries only.")
app.add_typer(accounts_app, name="accounts")


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port; 0 takes any free one.")] = 0,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve over HTTPS the public query page (/), its JSON API (/v1/register) and the desk (/desk).

    Runs until SIGTERM/SIGINT. The register's data comes from `hub register run`, the desk's from the ledger.

    \b
    Examples:
      hub web serve --port 8444
    """
    from hub.web.serve import serve as run_server

    cfg = settings()

    def announce(url: str) -> None:
        console.print(f"public register on {url}/  (JSON: {url}/v1/register?name=...)")
        console.print(f"oversight desk on {url}/desk  (accounts: hub web accounts add)")

    run_server(cfg, host, port, announce)


def _accounts():
    from hub.web.accounts import Accounts, open_database

    cfg = settings()
    return Accounts.for_settings(cfg, open_database(cfg))


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            error(f"--password-file {password_file}: {exc.strerror}")
            raise typer.Exit(2) from None
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@accounts_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="The account's user name (a-z 0-9 _ . -).")],
    auditor: Annotated[bool, typer.Option("--auditor", help="An auditor: sees every court's entries.")] = False,
    court: Annotated[
        str | None, typer.Option("--court", help="A court's account: sees this court's entries only.")
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="Read the password from this file (else asked, or one line of stdin)."),
    ] = None,
) -> None:
    """Create an account; its password is stored as an Argon2id hash only.

    \b
    Examples:
      hub web accounts add wang --auditor
      hub web accounts add j0105-clerk --court J0105 --password-file pw.txt
    """
    from hub.web.accounts import AccountError

    if auditor == bool(court):
        error("give exactly one of --auditor and --court CODE")
        raise typer.Exit(2)
    accounts = _accounts()
    try:
        made = accounts.add(
            username, "auditor" if auditor else "court", court.upper() if court else None, _password(password_file)
        )
    except AccountError as exc:
        error(exc)
        raise typer.Exit(2) from None
    finally:
        accounts.db.dispose()
    console.print(f"account {made.username} created ({made.label})")


@accounts_app.command("disable")
def disable(username: Annotated[str, typer.Argument(help="The account to disable.")]) -> None:
    """Disable an account: it can no longer sign in, and its open sessions end now.

    \b
    Example:
      hub web accounts disable wang
    """
    from hub.web.accounts import AccountError

    accounts = _accounts()
    try:
        done = accounts.disable(username)
    except AccountError as exc:
        error(exc)
        raise typer.Exit(2) from None
    finally:
        accounts.db.dispose()
    console.print(f"account {done.username} disabled; its sessions ended")


@accounts_app.command("list")
def list_accounts() -> None:
    """Every account, with its kind and whether it is disabled."""
    accounts = _accounts()
    try:
        found = accounts.list()
    finally:
        accounts.db.dispose()
    zone = settings().zone
    table = Table("user", "kind", "court", "created", "disabled")
    for a in found:
        table.add_row(
            a.username,
            a.kind,
            a.court_code or "",
            show(a.created_at, zone),
            show(a.disabled_at, zone) if a.disabled_at else "",
        )
    console.print(table)
