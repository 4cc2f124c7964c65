"""Memory and speed of the interception index (hub.agency.index) on synthetic rows, without the stack.

`python -m bench.index_memory --subjects 1000000` prints one JSON line. The target is at most 120 bytes a
restricted subject, so that 15 million fit one modest process, and a build from 1,000,000 rows well under 3 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time

from bench.ids import resident_id
from hub.agency.index import RestrictionIndex, Row

MEASURES = ("AIR_TRAVEL_RESTRICTED", "RAIL_TRAVEL_RESTRICTED")
SHARED = 0.15  # entries naming two subjects (a debtor and its legal representative)
WITH_UNTIL = 0.10  # restrictions that end before their entry does (retentions)
LOOKUPS = 200_000
CHOICES = ([MEASURES[0]], [MEASURES[1]], list(MEASURES))


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def synthetic_rows(subjects: int, now: float, *, shuffled: bool = False, seed: int = 1) -> list[Row]:
    """One row per subject, sorted by subject in byte order as the loader reads them (unless `shuffled`).

    Each row gets fresh objects in row order, as from a database cursor: reusing the objects made while
    generating, scattered across the heap in another order, would time the machine's cache misses instead.
    """
    rng = random.Random(seed)
    entry_of: list[int] = []  # by subject number
    names_of: list[list[str]] = []  # by entry
    until_of: list[float | None] = []
    while len(entry_of) < subjects:
        entry_of += [len(names_of)] * (2 if rng.random() < SHARED else 1)
        names_of.append(CHOICES[rng.randrange(len(CHOICES))])
        until_of.append(now + rng.uniform(3600, 365 * 86400) if rng.random() < WITH_UNTIL else None)
    ids = [resident_id(i) for i in range(subjects)]
    order = sorted(range(subjects), key=ids.__getitem__)  # ASCII, so str order is byte order
    if shuffled:
        rng.shuffle(order)
    rows: list[Row] = []
    for i in order:
        entry = entry_of[i]
        rows.append((ids[i].encode().decode(), entry_id(entry), until_of[entry], list(names_of[entry])))
    return rows


def entry_id(number: int) -> str:
    return f"E2026-J0105-{(number * 0x9E3779B1 + 0x5BD1E995) % 16**10:010x}"  # distinct and random-looking


def measure(subjects: int, *, shuffled: bool = False) -> dict:
    """Build an index of `subjects` restricted subjects and return its figures; `shuffled` times the sorting path."""
    now = time.time()
    rows = synthetic_rows(subjects, now, shuffled=shuffled)
    # the loader streams rows from the database; a million tuples held here would only slow the collector down
    gc.collect()
    gc.freeze()
    before = rss_bytes()
    started = time.perf_counter()
    index = RestrictionIndex.build(MEASURES, rows)
    build_seconds = time.perf_counter() - started
    after = rss_bytes()
    assert len(index) == subjects, (len(index), subjects)

    rng = random.Random(3)
    probes = [rows[rng.randrange(len(rows))][0] for _ in range(LOOKUPS // 2)]
    probes += [resident_id(rng.randrange(subjects), restricted=False) for _ in range(LOOKUPS - len(probes))]
    rng.shuffle(probes)
    del rows
    gc.unfreeze()
    blocking, measure_name = index.blocking, MEASURES[0]
    started = time.perf_counter()
    for subject in probes:
        blocking(subject, measure_name, now)
    lookup_seconds = time.perf_counter() - started
    return {
        "subjects": subjects,
        "build_seconds": round(build_seconds, 3),
        "bytes_per_subject": round(index.nbytes / subjects, 1),
        "rss_bytes_per_subject": round((after - before) / subjects, 1),
        "lookups_per_second": round(LOOKUPS / lookup_seconds),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.index_memory", description=__doc__)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--shuffled", action="store_true", help="feed the rows unsorted (the builder sorts them)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.subjects, shuffled=args.shuffled)))


if __name__ == "__main__":
    main()
