"""P1 agency bootstrap: one agency service applies N court events from offset 0 into an empty database.

The figure is what an operator sees: N / the wall time of `hub agency run bank --once`, from process start to
exit. Its start-up cost (interpreter, imports, creating and migrating the database, joining the group, the
final drain) is measured apart by the same command on an empty topic, and the service's own log gives the
time from "consuming" to its last line.

The peer (bench/peer_agency.py: a plain at-least-once agency, `python -m bench.worker plain-agency`) then
bootstraps the same agency from the same topic into a database of its own, measured the same way (wall time
from process start to exit, its start-up measured on the empty topic). Its feedback topic and restrictions
must equal the hub's, or the section fails.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import psycopg

from bench import data, peer_agency
from bench.common import (
    HUB,
    Namespaces,
    Section,
    Sizes,
    Target,
    hub_env,
    libpq_url,
    run_measured,
    run_worker,
    say,
    step,
)
from hub.config import Settings
from hub.topics import COURT_EVENTS, feedback_topic

AGENCY = "bank"


def _log_span(log: Path) -> tuple[float | None, dict[str, int]]:
    """Seconds from the service's "consuming" line to its last line, and how many lines of each level."""
    start = end = None
    levels: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
            stamp = dt.datetime.fromisoformat(entry["timestamp"])
        except (ValueError, KeyError):
            continue
        levels[entry.get("level", "?")] = levels.get(entry.get("level", "?"), 0) + 1
        if start is None and entry.get("event") == "consuming":
            start = stamp
        end = stamp
    return ((end - start).total_seconds() if start and end else None), levels


def _workers(log: Path) -> int:
    """The processes the run consumed in: its supervisor's "workers started" line (`--workers`, by default one
    per CPU), or one."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"workers started"' in line:
            try:
                return int(json.loads(line)["workers"])
            except (ValueError, KeyError):
                break
    return 1


def _applied(settings: Settings) -> tuple[int, int]:
    """(court records the agency's stored offsets cover, distinct events it recorded as processed)."""
    with psycopg.connect(libpq_url(settings, AGENCY)) as conn:
        offsets = conn.execute(
            "select coalesce(sum(next_offset), 0) from consumer_offsets where topic = %s",
            (settings.topic(COURT_EVENTS),),
        ).fetchone()[0]
        processed = conn.execute("select count(*) from processed_events").fetchone()[0]
    return int(offsets), int(processed)


def run(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path, decode_rate: float | None) -> None:
    n = sizes.p1_events
    empty = namespaces.make("p1e")
    settings = namespaces.make("p1")
    with step(f"P1: simulating and publishing {n:,} court events"):
        publish_s = data.publish(settings, data.court_events(n, seed=101), n, "P1")
    argv = [str(HUB), "agency", "run", AGENCY, "--once"]
    with step(f"P1: start-up overhead: `hub agency run {AGENCY} --once` on an empty topic"):
        idle = run_measured(argv, hub_env(empty), logs / "p1-empty-run.log", 300)
    if idle.returncode != 0:
        raise RuntimeError(f"the empty run exited {idle.returncode}:\n{idle.tail()}")
    with step(f"P1: `hub agency run {AGENCY} --once` over {n:,} events into an empty database"):
        done = run_measured(argv, hub_env(settings), logs / "p1-bootstrap.log", max(300.0, n / 200))
    if done.returncode != 0:
        raise RuntimeError(f"the agency exited {done.returncode}:\n{done.tail()}")
    covered, processed = _applied(settings)
    if covered != n:
        raise RuntimeError(f"the agency's stored offsets cover {covered:,} records, expected {n:,}")
    in_process, levels = _log_span(done.log)
    workers = _workers(done.log)
    rate = n / done.seconds
    steady = n / (done.seconds - idle.seconds) if done.seconds > idle.seconds else None
    section.details.update(
        {
            "agency": AGENCY,
            "events": n,
            "publish_s": publish_s,
            "wall_s": done.seconds,
            "startup_wall_s": idle.seconds,
            "startup_peak_rss_kb": idle.peak_kb,
            "consuming_to_exit_s": in_process,
            "rate_wall": rate,
            "rate_excluding_startup": steady,
            "rate_consuming_to_exit": n / in_process if in_process else None,
            "processed_events": processed,
            "log_lines_by_level": levels,
            "batch_size": settings.batch_size,
            "cpu_seconds": done.cpu_seconds,
            "startup_cpu_seconds": idle.cpu_seconds,
        }
    )
    say(f"P1: {n:,} events in {done.seconds:.1f}s ({rate:,.0f}/s); start-up alone {idle.seconds:.1f}s")
    section.add(
        "rate",
        f"P1 agency bootstrap ({AGENCY}, {n:,} events)",
        rate,
        "events/s",
        Target(">=", 20_000),
        rss_kb=done.peak_kb,
        note=f"{workers} worker{'s' if workers != 1 else ''}; "
        f"wall {done.seconds:.1f}s incl. start-up {idle.seconds:.1f}s"
        + (f"; excl. start-up {steady:,.0f}/s" if steady else ""),
    )
    section.add(
        "cpu_per_1000",
        "P1 service CPU per 1,000 events",
        done.cpu_per_1000(n, idle),
        "CPU s",
        note=f"user + system of `hub agency run {AGENCY} --once`, its start-up's "
        f"{idle.cpu_seconds or 0:.1f} s taken off",
    )
    section.add(
        "ratio",
        "P1 / consume-and-decode",
        rate / decode_rate if decode_rate else None,
        "ratio",
        Target(">=", 0.5),
        note="" if decode_rate else "no consume-and-decode figure in this run",
    )
    _peer(section, empty, settings, namespaces, logs, n, (rate, steady), done.cpu_per_1000(n, idle))


def _peer(
    section: Section,
    empty: Settings,
    settings: Settings,
    namespaces: Namespaces,
    logs: Path,
    n: int,
    hub_rates: tuple[float, float | None],
    hub_cpu: float | None,
) -> None:
    """The peer measured as the hub was (`hub_rates`: wall, and without start-up), then checked against it."""
    for each in (empty, settings):
        namespaces.extra_topics.append(peer_agency.feedback_topic(each, AGENCY))
        namespaces.extra_databases.append(peer_agency.database(each, AGENCY))
    args = ("--agency", AGENCY)
    with step("P1: the peer's start-up: `python -m bench.worker plain-agency` on an empty topic"):
        idle, _rss = run_worker("plain-agency", empty, logs / "p1-peer-empty.log", 300, *args)
    with step(f"P1: the peer, a plain at-least-once agency, over the same {n:,} events"):
        peer, rss = run_worker("plain-agency", settings, logs / "p1-peer.log", max(300.0, n / 200), *args)
    if peer["records"] != n:
        raise RuntimeError(f"P1: the peer read {peer['records']:,} records, expected {n:,}")
    with step("P1: comparing the peer's feedback and restrictions with the hub's"):
        hub_feedback, hub_records = peer_agency.feedback_set(settings, settings.topic(feedback_topic(AGENCY)))
        peer_feedback, peer_records = peer_agency.feedback_set(settings, peer_agency.feedback_topic(settings, AGENCY))
        hub_restrictions = peer_agency.restriction_set(libpq_url(settings, AGENCY))
        peer_restrictions = peer_agency.restriction_set(
            peer_agency.database_url(settings, peer_agency.database(settings, AGENCY))
        )
    problems = [
        p
        for p in (
            peer_agency.difference("feedback records", hub_feedback, peer_feedback),
            peer_agency.difference("restrictions", hub_restrictions, peer_restrictions),
        )
        if p
    ]
    rate = n / peer["wall_s"]
    steady = n / (peer["wall_s"] - idle["wall_s"]) if peer["wall_s"] > idle["wall_s"] else None
    cpu_s = peer["cpu_seconds"]
    startup_cpu = idle["cpu_seconds"] or 0.0
    cpu = max(cpu_s - startup_cpu, 0.0) / n * 1000 if cpu_s is not None else None
    section.details["peer"] = {
        **peer,
        "peak_rss_kb": rss,
        "startup_wall_s": idle["wall_s"],
        "startup_cpu_seconds": idle["cpu_seconds"],
        "rate_wall": rate,
        "rate_excluding_startup": steady,
        "feedback_records": {"hub": hub_records, "peer": peer_records},
        "feedback_distinct": {"hub": len(hub_feedback), "peer": len(peer_feedback)},
        "restrictions": {"hub": len(hub_restrictions), "peer": len(peer_restrictions)},
        "differences": problems,
    }
    spent = peer["spent_s"]
    top = sorted(spent, key=spent.get, reverse=True)[:3]  # type: ignore[arg-type]
    say(
        f"P1 peer: {n:,} events in {peer['wall_s']:.1f}s ({rate:,.0f}/s); start-up alone {idle['wall_s']:.1f}s; "
        f"most time in {', '.join(f'{k} {spent[k]:.1f}s' for k in top)}"
    )
    verdict = (
        f"the same {len(hub_feedback):,} feedback records and {len(hub_restrictions):,} restrictions as the hub's"
        if not problems
        else "WRONG: feedback or restrictions differ from the hub's"
    )
    section.add(
        "peer_rate",
        "P1 peer: plain agency",
        rate,
        "events/s",
        rss_kb=rss,
        note=f"wall {peer['wall_s']:.1f}s incl. start-up {idle['wall_s']:.1f}s"
        + (f"; excl. start-up {steady:,.0f}/s" if steady else "")
        + f"; {verdict}",
    )
    section.add(
        "peer_cpu_per_1000",
        "P1 peer CPU per 1,000 events",
        cpu,
        "CPU s",
        note=f"user + system of the peer, its start-up's {startup_cpu:.1f} s taken off"
        + (f"; hub / peer {hub_cpu / cpu:.2f}" if hub_cpu and cpu else ""),
    )
    hub_rate, hub_steady = hub_rates
    section.add(
        "peer_ratio",
        "P1 hub / peer",
        hub_rate / rate,
        "ratio",
        Target(">=", 1.0),
        note="events/s, wall" + (f"; excl. start-up {hub_steady / steady:.2f}" if hub_steady and steady else ""),
    )
    if problems:
        raise RuntimeError(f"P1: the peer and the hub's {AGENCY} disagree: {' | '.join(problems)}")
