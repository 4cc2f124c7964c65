"""P3 interception checks against an agency database holding N restricted subjects.

The database is made by the agency's own migrations and then bulk-loaded with COPY (synthetic, valid resident
ID numbers; each subject restricted by one applied entry for both transport measures), because replaying
millions of court events through the service would measure P1 again. Then, in a separate process, the Python
`InterceptionChecker.check` is timed call by call (half restricted subjects, half unrestricted), with its
construction timed apart; and `hub agency check` is timed per invocation, as a shell script would call it.
"""

from __future__ import annotations

import io
import json
import statistics
import uuid
from pathlib import Path

import psycopg

from bench.common import HUB, Namespaces, Section, Sizes, Target, hub_env, libpq_url, run_measured, run_worker, step
from bench.ids import resident_id
from consumers import load_policy
from hub.agency.service import open_database
from hub.config import Settings

AGENCY = "transport"
_CHUNK = 50_000


def load_restricted(settings: Settings, subjects: int, measures: tuple[str, ...]) -> dict[str, int]:
    """One APPLIED entry per subject and its restrictions, as the agency's store would have written them."""
    open_database(settings, AGENCY).dispose()  # create and migrate: the schema is the product's
    array = "{" + ",".join(measures) + "}"
    ids = [resident_id(i) for i in range(subjects)]
    with psycopg.connect(libpq_url(settings, AGENCY)) as conn, conn.cursor() as cur:
        with cur.copy(
            "copy entries (entry_id, debtor_id, subject_id, measures, status, included_event_id, retained) from stdin"
        ) as copy:
            for start in range(0, subjects, _CHUNK):
                buf = io.StringIO()
                for i in range(start, min(start + _CHUNK, subjects)):
                    subject = ids[i]
                    buf.write(f"EBENCH-{i:08d}\t{subject}\t{subject}\t{array}\tAPPLIED\t{uuid.UUID(int=i + 1)}\t{{}}\n")
                copy.write(buf.getvalue())
        with cur.copy("copy restrictions (subject_id, measure, entry_id) from stdin") as copy:
            for start in range(0, subjects, _CHUNK):
                buf = io.StringIO()
                for i in range(start, min(start + _CHUNK, subjects)):
                    subject = ids[i]
                    for measure in measures:
                        buf.write(f"{subject}\t{measure}\tEBENCH-{i:08d}\n")
                copy.write(buf.getvalue())
        conn.commit()
        conn.execute("analyze entries")
        conn.execute("analyze restrictions")
        conn.commit()
        entries = conn.execute("select count(*) from entries").fetchone()[0]
        restrictions = conn.execute("select count(*) from restrictions").fetchone()[0]
    return {"entries": entries, "restrictions": restrictions}


def cli_checks(settings: Settings, sizes: Sizes, measures: tuple[str, ...], logs: Path) -> dict:
    """`hub agency check` per call: interpreter, imports, database and (for a block) the feedback's delivery."""
    walls, rss, wrong = [], [], 0
    for i in range(sizes.p3_cli_calls):
        restricted = i % 2 == 0
        subject = resident_id((i * 7919) % sizes.p3_subjects, restricted=restricted)
        argv = [str(HUB), "agency", "check", AGENCY, "--subject", subject, "--measure", measures[i % len(measures)]]
        done = run_measured([*argv, "--format", "json"], hub_env(settings), logs / f"p3-cli-{i}.log", 120)
        if done.returncode != 0:
            raise RuntimeError(f"`hub agency check` exited {done.returncode}:\n{done.tail()}")
        answer = next(
            (json.loads(line) for line in done.log.read_text().splitlines() if line.startswith('{"decision"')), None
        )
        wrong += answer is None or (answer["decision"] == "BLOCKED") != restricted
        walls.append(done.seconds * 1000)
        rss.append(done.peak_kb)
    return {
        "calls": len(walls),
        "mean_ms": statistics.fmean(walls),
        "p50_ms": statistics.median(walls),
        "max_ms": max(walls),
        "peak_rss_kb": max(rss),
        "wrong_answers": wrong,
    }


def run(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path) -> None:
    settings = namespaces.make("p3")  # topics too: a block's feedback is published
    measures = load_policy(AGENCY, settings).person_measures
    n = sizes.p3_subjects
    with step(f"P3: loading {n:,} restricted subjects into the {AGENCY} database"):
        loaded = load_restricted(settings, n, measures)
    section.details.update({"agency": AGENCY, "subjects": n, **loaded})
    # The CLI first: a blocking `hub agency check` delivers the whole pending outbox, and the Python calls
    # leave one InterceptionRecorded row there per block (the agency's service, not running here, relays them).
    with step(f"P3: `hub agency check` x{sizes.p3_cli_calls}"):
        cli = cli_checks(settings, sizes, measures, logs)
    section.details["cli"] = cli
    with step(f"P3: InterceptionChecker.check, up to {sizes.p3_calls:,} calls or {sizes.p3_seconds:.0f}s"):
        args = ["--agency", AGENCY, "--subjects", str(n), "--calls", str(sizes.p3_calls)]
        args += ["--seconds", str(sizes.p3_seconds), "--measures", ",".join(measures)]
        answer, rss = run_worker("checks", settings, logs / "p3-checks.log", 900, *args)
    section.details["python"] = {**answer, "peak_rss_kb": rss}
    if answer["wrong_answers"]:
        section.details["python"]["warning"] = "some checks answered differently from the loaded data"
    calls = f"{answer['calls']:,} calls, half blocked"
    section.add(
        "rate",
        f"P3 check() ({n:,} restricted)",
        answer["rate"],
        "checks/s",
        Target(">=", 50_000),
        rss_kb=rss,
        note=calls,
    )
    section.add("p50", "P3 check() p50", answer["p50_us"], "µs")
    section.add(
        "p99", "P3 check() p99", answer["p99_us"], "µs", Target("<=", 1000), note=f"max {answer['max_us']:,.0f} µs"
    )
    section.add(
        "construct",
        "P3 checker construction",
        answer["construct_s"],
        "s",
        rss_kb=answer["rss_after_construct_kb"],
        note=f"first call {answer['first_call_us']:,.0f} µs; close() {answer.get('close_s', 0):.2f}s",
    )
    section.add("peak_rss", "P3 checker process peak RSS", rss / 1024, "MiB", Target("<=", 1024), rss_kb=rss)
    section.add(
        "cli",
        "P3 `hub agency check` per call",
        cli["mean_ms"],
        "ms",
        rss_kb=cli["peak_rss_kb"],
        note=f"mean of {cli['calls']}; p50 {cli['p50_ms']:.0f} ms, max {cli['max_ms']:.0f} ms",
    )
