"""`hub demo`: the whole pipeline end to end, as `make demo` runs it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections import Counter
from typing import Annotated

import typer

from hub.acl import ADMIN
from hub.agency.check import InterceptionChecker
from hub.audit.verify import record_result, verify
from hub.cli.common import console, err_console, escape, kafka_settings
from hub.domain.events import parse_event
from hub.domain.rules import RULES
from hub.ledger.report import build_report
from hub.topics import create_topics
from producers.publisher import CourtPublisher
from producers.simulator import SimulationConfig, simulate


def _step(text: str) -> None:
    console.print(f"\n[bold cyan]==>[/] [bold]{escape(text)}[/]", markup=True)


def _run_services(names: list[list[str]]) -> None:
    """Run services with --once side by side and wait for all; any failure stops the demo."""
    started = time.perf_counter()
    procs = [
        (
            name,
            subprocess.Popen(
                [sys.executable, "-m", "hub", *name, "--once"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for name in names
    ]
    for name, proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            err_console.print(err[-3000:])
            raise typer.Exit(f"hub {' '.join(name)} --once failed with exit code {proc.returncode}")
        said = out.strip().splitlines()
        console.print(f"  hub {' '.join(name)} --once: {said[-1] if said else 'done'}")
    console.print(f"  ({time.perf_counter() - started:.1f}s)")


def demo(
    debtors: Annotated[int, typer.Option("--debtors", help="How many debtors to simulate.")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Simulation seed.")] = 2016,
    breach_rate: Annotated[float, typer.Option("--breach-rate", help="Share of entries with a court breach.")] = 0.02,
    live: Annotated[int, typer.Option("--live", help="New debtors published live after the history.")] = 20,
) -> None:
    """Simulate and publish a court history, run the four agencies and the ledger, check, report, verify.

    \b
    Examples:
      hub demo
      hub demo --debtors 5000 --seed 7
    """
    cfg = kafka_settings(ADMIN)
    began = time.perf_counter()
    create_topics(cfg)
    state = cfg.state_dir / "demo"
    state.mkdir(parents=True, exist_ok=True)

    _step(f"courts: simulating {debtors} debtors (seed {seed}) and loading their history into court.list-events")
    live_at = dt.datetime.now(dt.UTC)
    simulation = simulate(
        SimulationConfig(
            debtors=debtors,
            seed=seed,
            breach_rate=breach_rate,
            deadlines=cfg.deadlines(),
            live_at=live_at,
            live_debtors=live,
        )
    )
    simulation.write(state / "court-events.jsonl")
    simulation.write_live(state / "live-events.jsonl")
    simulation.write_breaches(state / "injected-breaches.json")
    for records, history in ((simulation.events, True), (simulation.live, False)):
        report = CourtPublisher(cfg, history=history).publish(parse_event(r, "court") for r in records)  # type: ignore[misc]
        if not report.ok:
            raise typer.Exit(f"publishing failed: {report.failures[:3]}")
        if history:
            console.print(
                f"  published {report.published} past events as a historical import ({report.rate:,.0f}/s); "
                f"file: {state / 'court-events.jsonl'}"
            )
        else:
            console.print(
                f"  then {report.published} live events, some of them late; file: {state / 'live-events.jsonl'}"
            )
    console.print(f"  {len(simulation.breaches)} court breaches injected: {state / 'injected-breaches.json'}")

    _step("agencies: bank, tax, land and transport apply and lift sanctions; the public register follows")
    _run_services([*(["agency", "run", a] for a in cfg.agencies), ["register", "run"]])

    _step("interception checks (自动拦截)")
    _checks(cfg, simulation.events + simulation.live)

    _step("ledger: recording every event in the hash chain")
    _run_services([["ledger", "run"]])

    _step("compliance report")
    result = build_report(cfg)
    summary = result.as_dict()["summary"]
    console.print("  entries: " + ", ".join(f"{k} {v}" for k, v in summary["entries"].items()))
    console.print(f"  violations: {len(result.violations)}")
    for rule in RULES:
        if rule in summary["violations_by_rule"]:
            console.print(f"    {rule:<36} {summary['violations_by_rule'][rule]}")
    found = {(v.rule, v.entry_id) for v in result.violations}
    injected = {(b["rule"], b["entry_id"]) for b in simulation.breaches}
    if found == injected:
        console.print(f"  [green]the report names exactly the {len(injected)} injected breaches[/]", markup=True)
    else:
        console.print(
            f"  [yellow]report and injected breaches differ: {len(injected - found)} not reported, "
            f"{len(found - injected)} reported but not injected (other data on this stack?)[/]",
            markup=True,
        )
    console.print("  full report: hub ledger report [--format json|csv]")

    _step("audit: replay the topics and verify the ledger and every agency against them")
    verification = verify(cfg)
    for note in verification.notes:
        console.print(f"  {note}")
    for difference in verification.differences:
        err_console.print(f"  [red]DIFFERENCE[/] {escape(str(difference))}", markup=True)
    if not verification.ok:
        raise typer.Exit("audit verify: FAILED")
    console.print("  [green]audit verify: PASSED[/]", markup=True)
    unrecorded = record_result(cfg, verification)
    if unrecorded:
        console.print(f"  note: {unrecorded}")

    _step("the public register and the oversight desk keep running for you")
    _web(cfg)
    console.print(f"\ndemo finished in {time.perf_counter() - began:.0f}s")


def _checks(cfg, events: list[dict]) -> None:
    last: dict[str, dict] = {}
    kinds: dict[str, str] = {}
    reps: dict[str, str] = {}
    for record in events:
        debtor = record["debtor"]
        last.setdefault(debtor["id_number"], {})[record["entry_id"]] = record["type"]
        kinds[debtor["id_number"]] = debtor["kind"]
        if debtor["kind"] == "ORG":
            reps[debtor["id_number"]] = debtor["legal_representative"]["id_number"]
    persons = [d for d in last if kinds[d] == "PERSON"]
    listed = next(d for d in persons if all(t == "Included" for t in last[d].values()))
    paid = next(d for d in persons if list(last[d].values()) == ["Shielded"] and d not in reps.values())
    org = next(d for d in last if kinds[d] == "ORG" and all(t == "Included" for t in last[d].values()))
    transport = InterceptionChecker(cfg, "transport", cached=False)
    bank = InterceptionChecker(cfg, "bank", cached=False)
    for label, checker, subject, measure in [
        ("listed person, flight", transport, listed, "AIR_TRAVEL_RESTRICTED"),
        ("person who paid (entry shielded), train", transport, paid, "HIGH_SPEED_RAIL_RESTRICTED"),
        ("listed company's legal representative, train", transport, reps[org], "HIGH_SPEED_RAIL_RESTRICTED"),
        ("listed company, bond issue", bank, org, "BOND_ISSUANCE_RESTRICTED"),
    ]:
        result = checker.check(subject, measure, channel="demo")
        colour = "red" if result.decision == "BLOCKED" else "green"
        entries = f" by {', '.join(result.entries)}" if result.entries else ""
        console.print(
            f"  {label}: [{colour}]{result.decision}[/] {measure} for {subject}{escape(entries)}", markup=True
        )
    _run_services([["agency", "run", "transport"], ["agency", "run", "bank"]])  # blocks recorded become feedback
    counts = Counter(kinds.values())
    console.print(f"  ({counts['PERSON']} persons and {counts['ORG']} organisations simulated)")


def _web(cfg) -> None:
    """`hub register run` and `hub web serve`, detached (hub.devstack.services; `hub dev down` stops them), and
    two desk accounts whose passwords are kept in a private file of the stack's state."""
    import secrets
    import socket

    from sqlalchemy import text

    from hub.devstack import services
    from hub.register.service import open_database as register_database
    from hub.web.accounts import Accounts, open_database

    db = open_database(cfg)
    accounts = Accounts.for_settings(cfg, db)
    file = cfg.state_dir / "demo" / "desk-accounts.txt"
    kept = (
        dict(line.split(" ", 1) for line in file.read_text(encoding="utf-8").splitlines() if " " in line)
        if file.exists()
        else {}
    )
    for username, kind, court in (("demo-auditor", "auditor", None), ("demo-j0105", "court", "J0105")):
        if accounts.get(username) is None:
            kept[username] = kept.get(username) or secrets.token_urlsafe(12)
            accounts.add(username, kind, court, kept[username])
    file.touch(mode=0o600)
    file.write_text("".join(f"{user} {password}\n" for user, password in kept.items()), encoding="utf-8")
    db.dispose()
    services.start(cfg, "register", ["register", "run"])
    web = services.running(cfg, "web")
    if web is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        web = services.start(cfg, "web", ["web", "serve", "--port", str(port)], url=f"https://127.0.0.1:{port}")
    url = web["url"]
    register_db = register_database(cfg)
    with register_db.connect() as conn:
        name = conn.execute(text("select name from public_entries order by entry_id limit 1")).scalar()
    register_db.dispose()
    console.print(f"  public register: {url}/  (JSON: {url}/v1/register?name=...)")
    if name:
        console.print(f"    a listed name to try: {name}")
    console.print(f"  oversight desk:  {url}/desk  accounts and passwords: {file}")
    console.print(f"  the browser must trust the local CA: {cfg.state_dir / 'secrets' / 'ca.pem'}")
    console.print(f"  logs: {cfg.state_dir / 'services'}; `hub dev down` stops them with the stack")
