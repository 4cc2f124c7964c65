"""P6 ledger report: `hub ledger report --as-of now` over a ledger of about N events, court acts and the four
agencies' feedback.

The court events are published, the four agencies run over them (`hub agency run NAME --once`, side by side),
and the ledger records everything (`hub ledger run --once`, which brings the report's projection up to date as
it goes and at its end). Then the report is timed as a user runs it, the CLI with interpreter start-up; its
baseline is the same report with the whole history judged at once (`build_report(projection=False)`, what the
report did before the projection), timed in one process at the same instant. Both must agree, breach for
breach and entry state for entry state, or the section fails.

Then the oversight desk on the same ledger: `hub web serve`, an auditor signed in over HTTPS, and each desk
page timed as a browser asks it, the first visit and the median of the next ones (the pages reuse a
judgement of now for a few seconds, hub/web/sources.py), with the server's peak memory.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import data
from bench.common import (
    HUB,
    Measured,
    Namespaces,
    Section,
    Sizes,
    Target,
    free_port,
    healthy,
    hub_env,
    libpq_url,
    run_measured,
    run_worker,
    say,
    step,
    wait_until,
)

AGENCIES = ("bank", "tax", "land", "transport")
FEEDBACK_PER_COURT_EVENT = 2.1  # the simulated histories with the four default policies (measured: bench/README.md)


def run(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path) -> None:
    court_events = round(sizes.p6_events / (1 + FEEDBACK_PER_COURT_EVENT))
    settings = namespaces.make("p6")
    with step(f"P6: simulating and publishing {court_events:,} court events"):
        data.publish(settings, data.court_events(court_events, seed=606), court_events, "P6")
    with step("P6: the four agencies over them, side by side (`hub agency run NAME --once --workers 1`)"):
        agencies = {
            a: Measured(
                [str(HUB), "agency", "run", a, "--once", "--workers", "1"], hub_env(settings), logs / f"p6-{a}.log"
            )
            for a in AGENCIES
        }
        for name, running in agencies.items():
            done = running.wait(max(600.0, court_events / 100))
            if done.returncode != 0:
                raise RuntimeError(f"P6: agency {name} exited {done.returncode}:\n{done.tail()}")
    with step("P6: `hub ledger run --once`: the ledger records it all and projects the report"):
        ledger = run_measured([str(HUB), "ledger", "run", "--once"], hub_env(settings), logs / "p6-ledger.log", 3600)
    if ledger.returncode != 0:
        raise RuntimeError(f"P6: the ledger exited {ledger.returncode}:\n{ledger.tail()}")
    rows, projected = _ledger_rows(settings)
    if projected != rows:
        raise RuntimeError(f"P6: the projection covers {projected:,} of the ledger's {rows:,} rows after its run")
    say(
        f"P6: the ledger holds {rows:,} events ({court_events:,} court), recorded and projected "
        f"in {ledger.seconds:.1f}s"
    )
    with step("P6: `hub ledger report --as-of now --format json`"):
        cli = run_measured(
            [str(HUB), "ledger", "report", "--as-of", "now", "--format", "json"],
            hub_env(settings),
            logs / "p6-report-cli.log",
            600,
        )
    if cli.returncode != 0:
        raise RuntimeError(f"P6: the report exited {cli.returncode}:\n{cli.tail()}")
    with step("P6: the report in one process, from the projection and from the whole history at one instant"):
        answer, rss = run_worker("report", settings, logs / "p6-report.log", 3600)
    section.details.update(
        {
            "court_events": court_events,
            "ledger_rows": rows,
            "ledger_wall_s": ledger.seconds,
            "ledger_cpu_s": ledger.cpu_seconds,
            "cli_wall_s": cli.seconds,
            "cli_peak_rss_kb": cli.peak_kb,
            **answer,
            "peak_rss_kb": rss,
        }
    )
    section.add(
        "cli_seconds",
        f"P6 `hub ledger report --as-of now` ({rows:,} events)",
        cli.seconds,
        "s",
        Target("<=", 5),
        rss_kb=cli.peak_kb,
        note=f"the CLI, start-up included; in-process {answer['seconds']:.2f}s; "
        f"{answer['violations']:,} breaches, {answer['entries']:,} entries",
    )
    section.add(
        "whole_seconds",
        "P6 baseline: the whole history judged at once",
        answer["whole_seconds"],
        "s",
        note="in-process, the same instant; " + ("the same report" if answer["same"] else "WRONG: reports differ"),
    )
    section.add(
        "speedup",
        "P6 whole history / projection",
        answer["whole_seconds"] / answer["seconds"] if answer["seconds"] else None,
        "ratio",
    )
    section.add(
        "ledger_cpu_per_1000",
        "P6 ledger CPU per 1,000 events, recording and projecting",
        (ledger.cpu_seconds or 0) / rows * 1000 if rows else None,
        "CPU s",
        rss_kb=ledger.peak_kb,
        note=f"`hub ledger run --once`: {rows / ledger.seconds:,.0f} events/s, wall {ledger.seconds:.1f}s",
    )
    if not answer["same"]:
        raise RuntimeError("P6: the projection's report and the whole history's differ")
    with step("P6: the oversight desk's pages over HTTPS (`hub web serve`, an auditor signed in)"):
        desk = _desk_pages(settings, logs)
    section.details["desk"] = desk
    for page, (key, label) in DESK_PAGES.items():
        first, later = desk["pages"][page]
        section.add(
            f"desk_{key}",
            f"P6 desk {label}",
            first,
            "s",
            rss_kb=desk["peak_rss_kb"] if page == "/desk" else None,
            note=f"first visit; the next {DESK_REPEATS}: median {later:.3f}s",
        )


DESK_PAGES = {  # path: (figure key, label)
    "/desk": ("overview", "overview (breach count, verify's result)"),
    "/desk/breaches": ("breaches", "breaches as of now"),
    "/desk/charts/breaches.svg": ("breaches_chart", "chart: breaches per week"),
    "/desk/charts/delays.svg": ("delays_chart", "chart: court record to feedback"),
    "/desk/entries/{entry}": ("entry", "an entry's page"),
}
DESK_REPEATS = 5


def _desk_pages(settings, logs: Path) -> dict[str, Any]:
    """`hub web serve` on P6's ledger; an auditor signs in and asks each desk page once, then DESK_REPEATS more
    times. Seconds from sending to the whole body; any answer but 200 fails the section."""
    import re
    import ssl

    import httpx

    from hub.devstack.secrets import ca_file

    password = logs / "p6-desk-password"
    password.write_text("bench-desk-password-p6\n")
    added = run_measured(
        [str(HUB), "web", "accounts", "add", "bench-auditor", "--auditor", "--password-file", str(password)],
        hub_env(settings),
        logs / "p6-desk-account.log",
        120,
    )
    if added.returncode != 0:
        raise RuntimeError(f"P6: the desk account was not made:\n{added.tail()}")
    with psycopg.connect(libpq_url(settings, "ledger")) as conn:
        entry = conn.execute(
            "select entry_id from ledger_events where family = 'feedback' order by seq desc limit 1"
        ).fetchone()[0]
    port = free_port()
    server = Measured([str(HUB), "web", "serve", "--port", str(port)], hub_env(settings), logs / "p6-web.log")
    pages: dict[str, tuple[float, float]] = {}
    try:
        verify = ssl.create_default_context(cafile=ca_file(settings.state_dir))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=verify, timeout=900) as client:
            wait_until(lambda: healthy(client), 120, what="hub web serve to answer /healthz")
            form = client.get("/desk/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            signed = client.post(
                "/desk/login",
                data={"csrf": csrf, "username": "bench-auditor", "password": "bench-desk-password-p6", "next": "/desk"},
            )
            if signed.status_code != 303:
                raise RuntimeError(f"P6: the desk refused the sign-in: {signed.status_code} {signed.text[:300]}")
            for page in DESK_PAGES:
                path = page.format(entry=entry)
                seconds = [_timed(client, path) for _ in range(1 + DESK_REPEATS)]
                pages[page] = (seconds[0], statistics.median(seconds[1:]))
    finally:
        server.terminate()
        finished = server.wait(60)
    return {"entry": entry, "pages": pages, "peak_rss_kb": finished.peak_kb}


def _timed(client, path: str) -> float:
    before = time.perf_counter()
    answer = client.get(path)
    seconds = time.perf_counter() - before
    if answer.status_code != 200:
        raise RuntimeError(f"P6: the desk answered {path} with {answer.status_code}: {answer.text[:300]}")
    return seconds


def _ledger_rows(settings) -> tuple[int, int]:
    with psycopg.connect(libpq_url(settings, "ledger")) as conn:
        rows = conn.execute("select coalesce(max(seq), 0) from ledger_events").fetchone()[0]
        head = conn.execute("select coalesce(max(upto_seq), 0) from report_head").fetchone()[0]
    return int(rows), int(head)
