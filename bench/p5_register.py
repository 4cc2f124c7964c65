"""P5 public register: `hub register run` bootstrapping from offset 0, name searches on a large register, and
how soon a shielding takes an entry off it.

- Bootstrap: a simulated court history (P1's event count) on a fresh court topic, then `hub register run --once`
  into an empty database: N / its wall time, start-up measured apart (the same command on an empty topic), as
  P1 does. Baseline in the same run: `python -m bench.worker decode` on the same topic (the limits' consume +
  `codec.decode_event`, no database). Checked: `public_entries` must hold exactly the entries that
  `hub.domain.register.register` computes from the published events, else the figure is marked WRONG and the
  section fails.
- Name search: synthetic listings bulk-loaded with COPY into a migrated register database (common surnames
  weighted, one or two given-name characters, a tenth organisations; masked IDs by `shown_id`, digests by
  `id_digest`), ANALYZE; then, in its own process (`python -m bench.p5_register search`) on one connection,
  `hub.register.search.search` timed per call over a mix of full names, surnames alone (which reach the count
  cap on a large register), names narrowed by ID number and by court. Baseline in the same process: a plain
  psycopg `select ... where name = %s limit 20` for the same full names.
- Shielding: `hub register run` running; N PUBLIC inclusions published and listed, then a Shielded for each
  at a steady pace; per entry, the first poll (every ~5 ms, as the register's owner) that no longer finds
  its row, minus the Shielded record's broker timestamp (LogAppendTime, from the delivery report).

The figures use this module's own sizes (P5_SIZES, by `--size`): bench.common.Sizes has no P5 fields.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import data
from bench.common import (
    BENCH_DIR,
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
    percentile,
    run_measured,
    run_worker,
    say,
    step,
    wait_until,
)
from bench.ids import resident_id
from bench.p1_bootstrap import _log_span
from hub.config import Settings
from hub.domain.events import CourtEvent, parse_event
from hub.domain.ids import uscc_check_char
from hub.domain.lifecycle import Recorded
from hub.domain.register import id_digest, register, shown_id
from hub.register.search import COLUMNS
from hub.topics import COURT_EVENTS
from producers.publisher import CourtPublisher
from producers.simulator import BRANDS, CITIES, COURTS, GIVEN, GROUNDS, OBLIGATIONS, REGIONS, SURNAMES, TRADES

SERVICE = "register"
SEARCH_TARGET_MS = 50.0
SHIELD_TARGET_MS = 1000.0
SHIELD_RATE = 20.0  # Shielded events per second, steady
POLL_INTERVAL_S = 0.005


@dataclass(frozen=True)
class P5Size:
    search_rows: int  # synthetic public entries for the name searches
    search_queries: int  # timed search() calls (and as many plain lookups)
    shielded: int  # PUBLIC inclusions shielded one by one


P5_SIZES = {"full": P5Size(1_000_000, 2_000, 200), "quick": P5Size(50_000, 300, 30)}
# -- synthetic listings: row i is a pure function of i, so the search process can make its questions ---------

# About a hundred common surnames, weighted roughly like the real ones (王 and 李 many times as common as 汤),
# and about a hundred given-name characters: a full three-character name matches a row or two, a two-character
# one a few dozen (with its longer extensions), a surname alone thousands on a million rows.
_SURNAME_SLOTS = "".join(s * round(1000 / (rank + 10)) for rank, s in enumerate(SURNAMES))
_MORE_GIVEN = "德昊然子梓若雨诗梦思嘉晓春秋海波云峰光辉荣莉萍燕雪梅兵亮阳成林丹洁琳颖倩雯薇瑶璐宁安康乐福"
_GIVEN = "".join(dict.fromkeys(GIVEN + _MORE_GIVEN))
_BASE = dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64: a well-spread 64-bit hash of the row index (cheap, deterministic, no RNG state)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@dataclass(frozen=True)
class Row:
    entry_id: str
    kind: str
    name: str
    id_number: str  # not stored: the register keeps the masked form and the digest
    legal_representative: str | None
    court: tuple[str, str, str]
    case_number: str
    grounds: tuple[str, ...]
    obligation: str
    included_at: dt.datetime

    @property
    def surname(self) -> str:
        return self.name[0]


def _person_name(h: int) -> str:
    given = _GIVEN[(h >> 20) % len(_GIVEN)]
    if (h >> 32) % 100 >= 15:  # 85% have two given-name characters
        given += _GIVEN[(h >> 40) % len(_GIVEN)]
    return _SURNAME_SLOTS[(h >> 8) % len(_SURNAME_SLOTS)] + given


def synthetic(i: int) -> Row:
    h, g = _mix(i), _mix(i ^ 0x5A5A5A5A5A)
    court = COURTS[g % len(COURTS)]
    included = _BASE + dt.timedelta(minutes=(g >> 8) % (700 * 24 * 60))
    grounds = (GROUNDS[(g >> 32) % len(GROUNDS)],)
    if (g >> 36) % 4 == 0:
        grounds = tuple(dict.fromkeys((*grounds, GROUNDS[(g >> 40) % len(GROUNDS)])))
    obligation = f"{OBLIGATIONS[(g >> 44) % len(OBLIGATIONS)]}{(g >> 48) % 500 + 1}万元"
    if h % 10 == 0:  # an organisation: its credit code in full, and its legal representative's name
        digits = f"{i:08d}"
        check = 11 - sum(int(d) * w for d, w in zip(digits, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
        org_code = digits + {10: "X", 11: "0"}.get(check, str(check))
        body = f"91{REGIONS[(h >> 4) % len(REGIONS)]}{org_code}"
        city, brand = CITIES[(h >> 8) % len(CITIES)], BRANDS[(h >> 16) % len(BRANDS)]
        name = f"{city}{brand}{TRADES[(h >> 24) % len(TRADES)]}有限公司"
        kind, id_number, representative = "ORG", body + uscc_check_char(body), _person_name(h >> 8)
    else:
        kind, id_number, name, representative = "PERSON", resident_id(i), _person_name(h), None
    case_number = f"({included.year}){court[2]}执{i + 1}号"
    return Row(f"EP5-{i:08d}", kind, name, id_number, representative, court, case_number, grounds, obligation, included)


def _copy_line(row: Row) -> str:
    fields = (
        row.entry_id,
        row.kind,
        row.name,
        shown_id(row.kind, row.id_number),
        id_digest(row.id_number),
        row.legal_representative if row.legal_representative is not None else "\\N",
        row.court[0],
        row.court[1],
        row.case_number,
        "{" + ",".join(row.grounds) + "}",
        row.obligation,
        row.included_at.isoformat(),
    )
    return "\t".join(fields) + "\n"


def load_listings(settings: Settings, rows: int, chunk: int = 50_000) -> dict[str, Any]:
    """`rows` public entries as the register's owner, after the register's own migrations; then ANALYZE."""
    from hub.register.service import open_database

    open_database(settings).dispose()  # create and migrate: the schema is the product's
    started = time.perf_counter()
    with psycopg.connect(libpq_url(settings, SERVICE)) as conn, conn.cursor() as cur:
        with cur.copy(f"copy public_entries ({', '.join(COLUMNS)}) from stdin") as copy:
            for start in range(0, rows, chunk):
                copy.write("".join(_copy_line(synthetic(i)) for i in range(start, min(start + chunk, rows))))
        conn.commit()
        loaded = time.perf_counter() - started
        conn.execute("analyze public_entries")
        conn.commit()
        count = conn.execute("select count(*) from public_entries").fetchone()[0]
        size = conn.execute("select pg_total_relation_size('public_entries')").fetchone()[0]
    return {"rows": count, "copy_s": loaded, "analyze_s": time.perf_counter() - started - loaded, "bytes": size}


# -- the search process -----------------------------------------------------------------------------------


def _questions(rows: int, count: int, seed: int) -> list[tuple[str, Any, Row]]:
    """(kind, Query, the row it was made from): 70% full names, 15% surnames alone (of persons), 10% a name
    narrowed by its ID number, 5% by its court."""
    from hub.register.search import Query

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        draw = rng.random()
        row = synthetic(rng.randrange(rows))
        if draw < 0.70:
            out.append(("full", Query(name=row.name), row))
        elif draw < 0.85:
            while row.kind != "PERSON":
                row = synthetic(rng.randrange(rows))
            out.append(("surname", Query(name=row.surname), row))
        elif draw < 0.95:
            out.append(("id", Query(name=row.name, id_number=row.id_number), row))
        else:
            out.append(("court", Query(name=row.name, court_code=row.court[0]), row))
    return out


def _stats(ns: list[int]) -> dict[str, Any]:
    ordered = sorted(ns)
    return {
        "calls": len(ordered),
        "p50_ms": percentile(ordered, 50) / 1e6,
        "p99_ms": percentile(ordered, 99) / 1e6,
        "max_ms": ordered[-1] / 1e6 if ordered else None,
        "mean_ms": sum(ordered) / len(ordered) / 1e6 if ordered else None,
    }


def search_worker(rows: int, queries: int, seed: int, warmup: int = 50) -> dict[str, Any]:
    """Time search() per call on one connection (autocommit, as a page view would run), then the plain lookup."""
    from hub.config import get_settings
    from hub.register import search
    from hub.register.service import open_database

    settings = get_settings()
    engine = open_database(settings)
    timings: dict[str, list[int]] = {"full": [], "surname": [], "id": [], "court": []}
    totals: dict[str, list[int]] = {k: [] for k in timings}
    capped: dict[str, int] = dict.fromkeys(timings, 0)
    wrong: list[str] = []
    questions = _questions(rows, queries, seed)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for _kind, query, _row in _questions(rows, warmup, seed + 1):
            search.search(conn, query)
        loop_started = time.perf_counter()
        for kind, query, row in questions:
            before = time.perf_counter_ns()
            page = search.search(conn, query)
            timings[kind].append(time.perf_counter_ns() - before)
            totals[kind].append(page.total)
            capped[kind] += page.capped
            names_ok = all(listing.name.startswith(query.name) for listing in page.listings)
            found = [listing.entry_id for listing in page.listings]
            if not page.listings or not names_ok or (kind == "id" and row.entry_id not in found):
                wrong.append(f"{kind} {query.name}: total {page.total}, first {found[:3]}")
        loop_s = time.perf_counter() - loop_started
    engine.dispose()
    plain_names = [query.name for kind, query, _row in questions if kind == "full"]
    plain: list[int] = []
    plain_found = 0
    sql = f"select {', '.join(COLUMNS)} from public_entries where name = %s limit 20"
    with psycopg.connect(libpq_url(settings, SERVICE), autocommit=True) as conn:
        for _kind, query, _row in _questions(rows, warmup, seed + 1):
            conn.execute(sql, (query.name,)).fetchall()
        for name in plain_names:
            before = time.perf_counter_ns()
            found_rows = conn.execute(sql, (name,)).fetchall()
            plain.append(time.perf_counter_ns() - before)
            plain_found += bool(found_rows)
    return {
        "rows": rows,
        "queries": len(questions),
        "loop_s": loop_s,
        "warmup_queries": warmup,
        "by_kind": {
            kind: {
                **_stats(ns),
                "capped": capped[kind],
                "total_median": sorted(totals[kind])[len(totals[kind]) // 2] if totals[kind] else None,
            }
            for kind, ns in timings.items()
        },
        "all": _stats([n for ns in timings.values() for n in ns]),
        "plain": {**_stats(plain), "found": plain_found},
        "wrong": len(wrong),
        "wrong_examples": wrong[:5],
    }


def _run_search_process(settings: Settings, p5: P5Size, logs: Path) -> tuple[dict[str, Any], int]:
    """`python -m bench.p5_register search` in the namespace, like bench.common.run_worker does bench.worker."""
    log = logs / "p5-search.log"
    argv = [sys.executable, "-m", "bench.p5_register", "search", "--rows", str(p5.search_rows)]
    argv += ["--queries", str(p5.search_queries)]
    finished = Measured(argv, hub_env(settings), log, cwd=BENCH_DIR.parent).wait(900)
    if finished.returncode != 0:
        raise RuntimeError(f"the search process exited {finished.returncode}; end of {log}:\n{finished.tail()}")
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{") and '"bench_worker"' in line:
            return json.loads(line), finished.peak_kb
    raise RuntimeError(f"the search process printed no result; end of {log}:\n{finished.tail()}")


# -- bootstrap ----------------------------------------------------------------------------------------------


def _public_entries(settings: Settings) -> set[str]:
    with psycopg.connect(libpq_url(settings, SERVICE)) as conn:
        return {r[0] for r in conn.execute("select entry_id from public_entries")}


def _offsets_covered(settings: Settings) -> int:
    with psycopg.connect(libpq_url(settings, SERVICE)) as conn:
        return int(
            conn.execute(
                "select coalesce(sum(next_offset), 0) from consumer_offsets where topic = %s",
                (settings.topic(COURT_EVENTS),),
            ).fetchone()[0]
        )


def bootstrap(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path) -> str | None:
    """The bootstrap rows; returns what was wrong with the register's contents, if anything."""
    n = sizes.p1_events
    empty = namespaces.make("p5e")
    settings = namespaces.make("p5")
    recorded: list[Recorded] = []

    def kept() -> Iterator[CourtEvent]:
        now = dt.datetime.now(dt.UTC)
        for position, event in enumerate(data.court_events(n, seed=505)):
            recorded.append(Recorded(event, now, position, historical=True))
            yield event

    with step(f"P5: simulating and publishing {n:,} court events"):
        publish_s = data.publish(settings, kept(), n, "P5")
    with step("P5: the register the published history makes (hub.domain.register.register)"):
        expected = set(register(recorded))
        recorded.clear()
    argv = [str(HUB), "register", "run", "--once"]
    with step("P5: start-up overhead: `hub register run --once` on an empty topic"):
        idle = run_measured(argv, hub_env(empty), logs / "p5-empty-run.log", 300)
    if idle.returncode != 0:
        raise RuntimeError(f"the empty run exited {idle.returncode}:\n{idle.tail()}")
    with step(f"P5: `hub register run --once` over {n:,} events into an empty database"):
        done = run_measured(argv, hub_env(settings), logs / "p5-bootstrap.log", max(300.0, n / 200))
    if done.returncode != 0:
        raise RuntimeError(f"the register exited {done.returncode}:\n{done.tail()}")
    covered = _offsets_covered(settings)
    listed = _public_entries(settings)
    with step(f"P5: baseline: consume + decode of the same {n:,} records (bench.worker decode)"):
        plain, plain_rss = run_worker("decode", settings, logs / "p5-decode.log", 600)
    in_process, levels = _log_span(done.log)
    rate = n / done.seconds
    steady = n / (done.seconds - idle.seconds) if done.seconds > idle.seconds else None
    missing, extra = expected - listed, listed - expected
    problem = None
    if covered != n:
        problem = f"the register's stored offsets cover {covered:,} records, expected {n:,}"
    elif missing or extra:
        problem = (
            f"public_entries holds {len(listed):,} entries, the history makes {len(expected):,} "
            f"({len(missing):,} missing, e.g. {sorted(missing)[:2]}; {len(extra):,} extra, e.g. {sorted(extra)[:2]})"
        )
    section.details["bootstrap"] = {
        "events": n,
        "publish_s": publish_s,
        "wall_s": done.seconds,
        "startup_wall_s": idle.seconds,
        "startup_peak_rss_kb": idle.peak_kb,
        "consuming_to_exit_s": in_process,
        "rate_wall": rate,
        "rate_excluding_startup": steady,
        "rate_consuming_to_exit": n / in_process if in_process else None,
        "offsets_covered": covered,
        "public_entries": len(listed),
        "expected_public_entries": len(expected),
        "problem": problem,
        "log_lines_by_level": levels,
        "batch_size": settings.batch_size,
        "plain_consume_decode": {**plain, "peak_rss_kb": plain_rss},
        "cpu_seconds": done.cpu_seconds,
        "startup_cpu_seconds": idle.cpu_seconds,
    }
    say(
        f"P5: {n:,} events in {done.seconds:.1f}s ({rate:,.0f}/s); start-up alone {idle.seconds:.1f}s; "
        f"{len(listed):,} public entries, expected {len(expected):,}"
    )
    checked = f"WRONG: {problem}" if problem else f"{len(listed):,} public entries = the history's"
    section.add(
        "bootstrap_rate",
        f"P5 register bootstrap ({n:,} events)",
        rate,
        "events/s",
        rss_kb=done.peak_kb,
        note=f"wall {done.seconds:.1f}s incl. start-up {idle.seconds:.1f}s"
        + (f"; excl. start-up {steady:,.0f}/s" if steady else "")
        + f"; {checked}",
    )
    section.add(
        "bootstrap_cpu_per_1000",
        "P5 register CPU per 1,000 events",
        done.cpu_per_1000(n, idle),
        "CPU s",
        note=f"user + system of `hub register run --once`, its start-up's {idle.cpu_seconds or 0:.1f} s taken off",
    )
    section.add(
        "plain_consume_decode",
        "P5 baseline: consume + decode, same topic",
        plain["rate"],
        "records/s",
        rss_kb=plain_rss,
        note=f"bench.worker decode: confluent_kafka consume(num_messages={plain['batch_size']}), "
        "codec.decode_event, no database",
    )
    section.add(
        "bootstrap_ratio",
        "P5 bootstrap / consume-and-decode",
        rate / plain["rate"] if plain["rate"] else None,
        "ratio",
        note=f"excl. start-up {steady / plain['rate']:.2f}" if steady and plain["rate"] else "",
    )
    return problem


# -- name search --------------------------------------------------------------------------------------------


def name_search(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path) -> str | None:
    p5 = P5_SIZES[sizes.name]
    settings = namespaces.make("p5s", create=False)  # a database only: nothing is published
    with step(f"P5: loading {p5.search_rows:,} public entries (COPY) and ANALYZE"):
        loaded = load_listings(settings, p5.search_rows)
    say(f"P5: public_entries {loaded['rows']:,} rows, {loaded['bytes'] / 2**20:,.0f} MiB with its indexes")
    with step(f"P5: search() x{p5.search_queries:,} and the plain lookup, one connection, own process"):
        answer, rss = _run_search_process(settings, p5, logs)
    section.details["search"] = {"load": loaded, **answer, "peak_rss_kb": rss}
    kinds = answer["by_kind"]
    rows = f"{p5.search_rows:,} entries"
    full, surname, plain = kinds["full"], kinds["surname"], answer["plain"]
    narrowed = (
        f"name+ID p50/p99 {kinds['id']['p50_ms']:.2f}/{kinds['id']['p99_ms']:.2f} ms, "
        f"name+court {kinds['court']['p50_ms']:.2f}/{kinds['court']['p99_ms']:.2f} ms"
    )
    wrong = f"; WRONG answers: {answer['wrong']}" if answer["wrong"] else ""
    section.add(
        "search_full_p50",
        f"P5 full-name search p50 ({rows})",
        full["p50_ms"],
        "ms",
        note=f"{full['calls']:,} calls, median {full['total_median']} matches; {narrowed}",
    )
    section.add(
        "search_full_p99",
        "P5 full-name search p99",
        full["p99_ms"],
        "ms",
        Target("<=", SEARCH_TARGET_MS),
        rss_kb=rss,
        note=f"max {full['max_ms']:.1f} ms; all {answer['queries']:,} searches p99 {answer['all']['p99_ms']:.2f} ms"
        + wrong,
    )
    section.add(
        "search_surname_p50",
        "P5 surname-only search p50",
        surname["p50_ms"],
        "ms",
        note=f"{surname['calls']:,} calls, {surname['capped']:,} over the count cap",
    )
    section.add(
        "search_surname_p99",
        "P5 surname-only search p99",
        surname["p99_ms"],
        "ms",
        Target("<=", SEARCH_TARGET_MS),
        note=f"max {surname['max_ms']:.1f} ms",
    )
    section.add(
        "plain_name_p50",
        "P5 baseline: plain `where name = %s limit 20` p50",
        plain["p50_ms"],
        "ms",
        note=f"psycopg, same {plain['calls']:,} full names, one query each",
    )
    section.add(
        "plain_name_p99",
        "P5 baseline: plain lookup p99",
        plain["p99_ms"],
        "ms",
        note=f"max {plain['max_ms']:.1f} ms; search() p99 / plain p99 {full['p99_ms'] / plain['p99_ms']:.1f}x",
    )
    with step("P5: the same full names through `hub web serve` (GET /v1/register, one keep-alive client)"):
        http = _http_searches(settings, p5, logs)
    section.details["search_http"] = http
    section.add(
        "search_http_p50",
        "P5 name search over HTTPS p50 (JSON API)",
        http["p50_ms"],
        "ms",
        note=f"{http['calls']:,} GET /v1/register?name=..., {http['errors']} errors; "
        f"HTML page p50 {http['page_p50_ms']:.1f} ms",
    )
    section.add(
        "search_http_p99",
        "P5 name search over HTTPS p99 (JSON API)",
        http["p99_ms"],
        "ms",
        Target("<=", SEARCH_TARGET_MS),
        rss_kb=http["peak_rss_kb"],
        note=f"HTML page p99 {http['page_p99_ms']:.1f} ms; client and server share the two cores",
    )
    if http["errors"]:
        return f"{http['errors']} HTTP searches failed: {http['error_examples']}"
    return f"{answer['wrong']} searches answered wrongly: {answer['wrong_examples']}" if answer["wrong"] else None


def _http_searches(settings: Settings, p5: P5Size, logs: Path) -> dict[str, Any]:
    """`hub web serve` on the loaded register (its rate limit lifted), and one client asking the full names the
    search process asked, first as JSON, then as the HTML page; per request, from sending to the whole body."""
    import ssl

    import httpx

    from hub.devstack.secrets import ca_file

    port = free_port()
    env = hub_env(settings, HUB_WEB_RATE_PER_ADDRESS="1000000")
    server = Measured([str(HUB), "web", "serve", "--port", str(port)], env, logs / "p5-web.log")
    names = [q.name for kind, q, _row in _questions(p5.search_rows, p5.search_queries, 55) if kind == "full"]
    json_ns: list[int] = []
    page_ns: list[int] = []
    errors: list[str] = []
    try:
        verify = ssl.create_default_context(cafile=ca_file(settings.state_dir))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=verify, timeout=30) as client:
            wait_until(lambda: healthy(client), 120, what="hub web serve to answer /healthz")
            for name in names[:50]:  # warm-up
                client.get("/v1/register", params={"name": name})
            for path, out in (("/v1/register", json_ns), ("/", page_ns)):
                for name in names:
                    before = time.perf_counter_ns()
                    answer = client.get(path, params={"name": name})
                    out.append(time.perf_counter_ns() - before)
                    if answer.status_code != 200:
                        errors.append(f"{path} {name}: {answer.status_code}")
    finally:
        server.terminate()
        finished = server.wait(60)
    stats, page = _stats(json_ns), _stats(page_ns)
    return {
        **stats,
        "page_p50_ms": page["p50_ms"],
        "page_p99_ms": page["p99_ms"],
        "errors": len(errors),
        "error_examples": errors[:5],
        "peak_rss_kb": finished.peak_kb,
    }


# -- shielding until gone -----------------------------------------------------------------------------------


def _live_events(count: int) -> tuple[list[CourtEvent], list[CourtEvent]]:
    """`count` PUBLIC inclusions an hour ago, and a Shielded (full performance) for each, a minute ago."""
    now = dt.datetime.now(dt.UTC).astimezone(_BASE.tzinfo)
    included, shielded = [], []
    for i in range(count):
        row = synthetic(10_000_000 + i)
        common = {
            "court_code": row.court[0],
            "court_name": row.court[1],
            "entry_id": f"EP5L-{i:05d}-{uuid.uuid4().hex[:8]}",
            "case_number": row.case_number,
            "debtor": {"kind": "PERSON", "id_number": resident_id(10_000_000 + i), "name": _person_name(_mix(i))},
        }
        included.append(
            parse_event(
                {
                    **common,
                    "event_id": str(uuid.uuid4()),
                    "type": "Included",
                    "occurred_at": (now - dt.timedelta(hours=1)).isoformat(),
                    "grounds": list(row.grounds),
                    "obligation": row.obligation,
                    "period_months": None,
                    "disclosure": "PUBLIC",
                    "employer_notified": None,
                }
            )
        )
        shielded.append(
            parse_event(
                {
                    **common,
                    "event_id": str(uuid.uuid4()),
                    "type": "Shielded",
                    "occurred_at": (now - dt.timedelta(minutes=1)).isoformat(),
                    "reason": "FULL_PERFORMANCE",
                    "performed_at": (now - dt.timedelta(minutes=2)).isoformat(),
                }
            )
        )
    return included, shielded  # type: ignore[return-value]


def _listed(conn: psycopg.Connection, ids: list[str]) -> set[str]:
    return {r[0] for r in conn.execute("select entry_id from public_entries where entry_id = any(%s)", (ids,))}


def _shield_and_watch(settings: Settings, shielded: list[CourtEvent], service: Measured) -> dict[str, Any]:
    """Publish the shieldings at SHIELD_RATE; poll every POLL_INTERVAL_S for the rows still there."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, KafkaError, Message

    from hub.clients import produce

    publisher = CourtPublisher(settings)
    records = [publisher.prepare(e) for e in shielded]
    entry_of = {e.event_id: e.entry_id for e in shielded}
    producer = publisher.producer_for(records[0].court_code)
    broker_ms: dict[str, int] = {}
    stamp_types: set[int] = set()
    failures: list[str] = []

    def delivered(err: KafkaError | None, msg: Message, entry_id: str) -> None:
        if err is not None:
            failures.append(err.str())
            return
        kind, stamp = msg.timestamp()
        stamp_types.add(kind)
        broker_ms[entry_id] = stamp

    gone_at: dict[str, float] = {}
    watching: list[str] = []
    polls = 0
    sent = 0
    lag_max = 0.0
    deadline = time.monotonic() + len(records) / SHIELD_RATE + 60
    with psycopg.connect(libpq_url(settings, SERVICE), autocommit=True) as conn:
        started = time.perf_counter()
        while sent < len(records) or watching:
            now = time.perf_counter()
            while sent < len(records) and started + sent / SHIELD_RATE <= now:
                lag_max = max(lag_max, now - (started + sent / SHIELD_RATE))
                record = records[sent]
                produce(
                    producer,
                    publisher.topic,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                    on_delivery=lambda err, msg, e=entry_of[record.event_id]: delivered(err, msg, e),
                )
                watching.append(entry_of[record.event_id])
                sent += 1
            producer.poll(0)
            if watching:
                polled_at = time.time()  # the row was still there at the previous poll, gone by this one's start
                present = _listed(conn, watching)
                polls += 1
                for entry_id in watching:
                    if entry_id not in present:
                        gone_at[entry_id] = polled_at
                watching = [e for e in watching if e in present]
            if time.monotonic() > deadline:
                raise TimeoutError(f"P5: {len(watching)} shielded entries still listed 60s after the last publication")
            if not service.running():
                raise RuntimeError(f"P5: the register exited while measuring:\n{service.wait(1).tail()}")
            next_due = started + sent / SHIELD_RATE if sent < len(records) else float("inf")
            time.sleep(max(0.0, min(next_due, time.perf_counter() + POLL_INTERVAL_S) - time.perf_counter()))
        window_s = time.perf_counter() - started
    remaining = producer.flush(30)
    if failures or remaining:
        raise RuntimeError(f"P5: {len(failures)} shieldings not delivered, {remaining} unconfirmed: {failures[:3]}")
    if stamp_types != {TIMESTAMP_LOG_APPEND_TIME}:
        raise RuntimeError(f"P5: delivery reports carry timestamp types {stamp_types}, not the broker's LogAppendTime")
    latencies = sorted((gone_at[e] - broker_ms[e] / 1000) * 1000 for e in gone_at)
    return {
        "shielded": len(records),
        "rate": SHIELD_RATE,
        "window_s": window_s,
        "max_behind_schedule_s": lag_max,
        "polls": polls,
        "poll_interval_s": POLL_INTERVAL_S,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
        "min_ms": latencies[0] if latencies else None,
        "latencies_ms": [round(x, 2) for x in latencies],
    }


def _register_ready(service: Measured) -> bool:
    if not service.running():
        raise RuntimeError(f"the register exited while starting:\n{service.wait(1).tail()}")
    return "partitions assigned" in service.log.read_text(errors="replace")


def shielding(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path) -> None:
    n = P5_SIZES[sizes.name].shielded
    settings = namespaces.make("p5l")
    included, shielded = _live_events(n)
    service = None
    figures: dict[str, Any] = {}
    try:
        with step("P5: starting `hub register run`"):
            service = Measured([str(HUB), SERVICE, "run"], hub_env(settings), logs / "p5-register-live.log")
            wait_until(lambda: _register_ready(service), 180, 0.25, "P5: the register's partition assignment")
        with step(f"P5: publishing {n} PUBLIC inclusions and waiting until all are listed"):
            report = CourtPublisher(settings, history=True).publish(included)
            if not report.ok:
                raise RuntimeError(f"P5: inclusions not delivered: {report.failures[:3]}")
            ids = [e.entry_id for e in included]
            with psycopg.connect(libpq_url(settings, SERVICE), autocommit=True) as conn:
                wait_until(lambda: len(_listed(conn, ids)) == n, 120, 0.05, "P5: every inclusion listed")
        with step(f"P5: {n} shieldings at {SHIELD_RATE:.0f}/s, polling every {POLL_INTERVAL_S * 1000:.0f} ms"):
            figures = _shield_and_watch(settings, shielded, service)
    finally:
        if service is not None:
            service.terminate()
            finished = Measured.wait_all({SERVICE: service}, 60)
            exit_code = finished[SERVICE].returncode if SERVICE in finished else "killed"
            section.details["shielding_service"] = {
                "exit_code": exit_code,
                "peak_rss_kb": finished[SERVICE].peak_kb if SERVICE in finished else None,
            }
            if exit_code != 0:
                say(f"P5: the register did not exit 0 on SIGTERM: {exit_code}")
    section.details["shielding"] = figures
    rss = section.details["shielding_service"]["peak_rss_kb"]
    count = f"{figures['shielded']} shieldings at {SHIELD_RATE:.0f}/s"
    section.add("shield_p50", "P5 shielding → gone p50", figures["p50_ms"], "ms", note=count)
    section.add(
        "shield_p99",
        "P5 shielding → gone p99",
        figures["p99_ms"],
        "ms",
        Target("<=", SHIELD_TARGET_MS),
        rss_kb=rss,
        note=f"broker timestamp → first poll without the row (every {POLL_INTERVAL_S * 1000:.0f} ms)",
    )
    section.add(
        "shield_max",
        "P5 shielding → gone max",
        figures["max_ms"],
        "ms",
        note=f"SIGTERM exit code {section.details['shielding_service']['exit_code']}",
    )


def run(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path) -> None:
    """The three measurements, each on its own namespace; one failing does not stop the others, but fails the
    section at the end (as does a register that holds the wrong entries, or a wrong search answer)."""
    problems = []
    for name, part in (("bootstrap", bootstrap), ("name search", name_search), ("shielding", shielding)):
        try:
            problem = part(section, namespaces, sizes, logs)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            say(f"P5 {name} FAILED: {problem}")
            traceback.print_exc()
        if problem:
            problems.append(f"{name}: {problem}")
    if problems:
        raise RuntimeError("; ".join(problems))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.p5_register")
    tasks = parser.add_subparsers(dest="task", required=True)
    p = tasks.add_parser("search", help="time search() in this process (settings from the HUB_* environment)")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--queries", type=int, required=True)
    p.add_argument("--seed", type=int, default=55)
    args = parser.parse_args(argv)
    from hub.config import get_settings
    from hub.log import configure

    configure(get_settings().log_level, "json")
    answer = search_worker(args.rows, args.queries, args.seed)
    print(json.dumps({"bench_worker": "p5-search", **answer}), flush=True)


if __name__ == "__main__":
    main()
