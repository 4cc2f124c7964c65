"""`python -m bench.run --size full|quick`: every measurement in one run, one table, bench/results/latest.json.

Each measurement works in its own namespace (topic and database prefix `b<run><tag>_`), removed at the end
even when something fails. A failed measurement is reported and the others still run; the exit code is 1
if any failed. Targets are goals: a missed one is printed, never a failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import limits, p1_bootstrap, p2_latency, p3_checks, p4_replay, p5_register, p6_report
from bench.common import RESULTS_DIR, Measured, Namespaces, Section, Sizes, fmt_number, say
from hub.config import ConfigError, Settings

SECTIONS = ("limits", "p1", "p2", "p3", "p4", "p5", "p6")
TITLES = {
    "limits": "limits on this machine",
    "p1": "P1 agency bootstrap",
    "p2": "P2 end-to-end latency",
    "p3": "P3 interception checks",
    "p4": "P4 audit replay",
    "p5": "P5 public register",
    "p6": "P6 ledger report",
}


def machine(settings: Settings) -> dict[str, Any]:
    """What the figures were measured on; the Kafka version is the broker's own log line."""
    import confluent_kafka
    import fastavro
    import psycopg

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_total_gib": _mem_total_gib(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "confluent_kafka": _version_string(confluent_kafka.version()),
        "librdkafka": confluent_kafka.libversion()[0],
        "fastavro": fastavro.__version__,
        "load_average_at_start": os.getloadavg(),
        "kafka_version": None,
        "kafka_version_line": None,
        "postgresql_version": None,
    }
    if not settings.kafka_bootstrap:
        from hub.devstack.kafka import LocalKafka

        stack = settings.local_stack()
        kafka = LocalKafka(settings.state_dir, stack["kafka_port"], stack["kafka_controller_port"], settings.kafka_heap)
        found = kafka.version_line()
        if found:
            info["kafka_version_line"] = found
            match = re.search(r"Kafka version: (\S+)", found)
            info["kafka_version"] = match.group(1) if match else None
    else:
        info["kafka_version_line"] = f"external broker {settings.kafka_bootstrap}: version not known to the harness"
    try:
        from sqlalchemy.engine import make_url

        url = make_url(settings.admin_database_url()).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=5) as conn:
            info["postgresql_version"] = conn.execute("show server_version").fetchone()[0]
    except Exception as exc:
        info["postgresql_version"] = f"unknown: {exc}"
    return info


def _version_string(version: object) -> str:
    """confluent_kafka.version() is a string in some releases and a (string, int) pair in others."""
    return version[0] if isinstance(version, tuple) else str(version)


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def check_stack(settings: Settings) -> None:
    """Fail at once, with what to do, when there is no broker or database to measure."""
    from hub.devstack import status

    try:
        components = status(settings)
    except ConfigError as exc:
        sys.exit(f"bench: {exc}")
    down = [c.name for c in components if not c.answers and c.name in ("kafka", "postgres")]
    if down:
        sys.exit(f"bench: {', '.join(down)} not answering; start the stack with `hub dev up` (or use `make bench`)")


def run_sections(wanted: list[str], sizes: Sizes, namespaces: Namespaces, logs: Path) -> dict[str, Section]:
    done: dict[str, Section] = {}

    def decode_rate() -> float | None:
        figure = done["limits"].figure("python_decode") if "limits" in done else None
        return figure.value if figure else None

    plan: dict[str, Callable[[Section], Any]] = {
        "limits": lambda s: limits.run(s, namespaces, sizes, logs),
        "p1": lambda s: p1_bootstrap.run(s, namespaces, sizes, logs, decode_rate()),
        "p2": lambda s: p2_latency.run(s, namespaces, sizes, logs),
        "p3": lambda s: p3_checks.run(s, namespaces, sizes, logs),
        "p4": lambda s: p4_replay.run(s, namespaces, sizes, logs),
        "p5": lambda s: p5_register.run(s, namespaces, sizes, logs),
        "p6": lambda s: p6_report.run(s, namespaces, sizes, logs),
    }
    for name in wanted:
        section = Section(name)
        done[name] = section
        say(f"=== {TITLES[name]} ===")
        started = time.perf_counter()
        try:
            plan[name](section)
        except KeyboardInterrupt:
            section.error = "interrupted"
            raise
        except Exception as exc:
            section.error = f"{type(exc).__name__}: {exc}"
            say(f"{TITLES[name]} FAILED: {section.error}")
            traceback.print_exc()
        finally:
            section.seconds = time.perf_counter() - started
            say(f"{TITLES[name]}: {section.seconds:.1f}s")
    return done


def print_table(sections: dict[str, Section], sizes: Sizes, info: dict[str, Any], seconds: float) -> None:
    console = Console(highlight=False, soft_wrap=False, width=max(160, shutil.get_terminal_size().columns))
    title = (
        f"hub benchmarks ({sizes.name}): {info['cpu_count']} CPUs, {info['memory_total_gib']} GiB, "
        f"Python {info['python']}, Kafka {info['kafka_version'] or '?'}, PostgreSQL {info['postgresql_version']}; "
        f"{seconds / 60:.1f} min"
    )
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("figure", "left"),
        ("value", "right"),
        ("unit", "left"),
        ("target", "left"),
        ("met", "center"),
        ("peak RSS MiB", "right"),
        ("notes", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for name, section in sections.items():
        for figure in section.figures:
            met = None if figure.target is None else figure.target.met(figure.value)
            table.add_row(
                figure.label,
                "-" if figure.value is None else fmt_number(figure.value),
                figure.unit,
                "" if figure.target is None else str(figure.target),
                {None: "", True: "[green]yes[/]", False: "[red]no[/]"}[met],
                "" if figure.rss_kb is None else f"{figure.rss_kb / 1024:,.0f}",
                figure.note,
            )
        if section.error:
            table.add_row(f"[red]{TITLES[name]}: FAILED[/]", "", "", "", "", "", f"[red]{section.error[:300]}[/]")
        table.add_section()
    console.print(table)


def write_results(
    sections: dict[str, Section],
    sizes: Sizes,
    info: dict[str, Any],
    started_at: dt.datetime,
    seconds: float,
    logs: Path,
) -> Path:
    figures = [f.as_dict() for s in sections.values() for f in s.figures]
    result = {
        "run": {
            "size": sizes.name,
            "started_at": started_at.isoformat(),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(),
            "duration_s": round(seconds, 1),
            "sizes": sizes.__dict__,
            "logs": str(logs),
            "argv": sys.argv,
        },
        "machine": {**info, "load_average_at_end": os.getloadavg()},
        "figures": figures,
        "targets": {
            f["key"]: {"target": f"{f['target']['op']} {f['target']['value']}", "value": f["value"], "met": f["met"]}
            for f in figures
            if f["target"] is not None
        },
        "measurements": {
            name: {"duration_s": round(s.seconds, 1), "error": s.error, "details": s.details}
            for name, s in sections.items()
        },
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, default=str) + "\n"
    latest = RESULTS_DIR / "latest.json"
    latest.write_text(text)
    (RESULTS_DIR / f"{sizes.name}-{started_at:%Y%m%dT%H%M%SZ}.json").write_text(text)
    return latest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--size", choices=("full", "quick"), default="quick", help="full: the issue's sizes")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces' topics and databases (debugging)")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown measurement(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    sizes = Sizes.named(args.size)
    base = Settings()
    check_stack(base)
    started_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    logs = base.state_dir / "bench-logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    info = machine(base)
    say(
        f"{sizes.name} run on {info['cpu_count']} CPUs, {info['memory_total_gib']} GiB, Python {info['python']}, "
        f"Kafka {info['kafka_version']}; load average {info['load_average_at_start'][0]:.2f}; logs in {logs}"
    )
    namespaces = Namespaces(base, keep=args.keep)
    try:
        sections = run_sections(wanted, sizes, namespaces, logs)
    finally:
        Measured.stop_all()
        say("removing the run's topics and databases")
        namespaces.cleanup()
    seconds = time.perf_counter() - started
    path = write_results(sections, sizes, info, started_at, seconds, logs)
    print_table(sections, sizes, info, seconds)
    print(f"written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    failed = [TITLES[n] for n, s in sections.items() if s.error]
    if failed:
        print(f"FAILED: {', '.join(failed)} (see above and the logs in {logs})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
