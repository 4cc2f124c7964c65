"""The agency's restrictions and API keys, followed from its database by notification.

The agency's commits send a NOTIFY (a trigger, migration agency_0005); the follower LISTENs on its own
connection and, on each notification, reads the entries changed since the last look (their change numbers,
hub.agency.store.committed_changes) and replaces those subjects in the index. So a lift reaches a ticket
office a few milliseconds after the agency commits it. A heartbeat asks again every `heartbeat` seconds
when nothing was heard, so a lost notification costs at most that, and `as_of` (the last time the index was
known to match the database) stays honest: during a database outage checks go on from the last index and
say how old it is. Retentions need no event: every restriction carries its end.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterable, Iterator

import psycopg

from hub.agency.index import RestrictionIndex, Row
from hub.agency.keys import ApiKey, KeyRing
from hub.agency.store import CHANGES_LOCK
from hub.log import get_logger

# Unordered: the index sorts its keys itself, faster than the server would.
_LOAD = (
    "copy (select subject_id, entry_id, extract(epoch from until), string_agg(measure, ',') from restrictions "
    "group by subject_id, entry_id, until) to stdout"
)
_CHANGED = (
    "select subject_id, entry_id, extract(epoch from until), string_agg(measure, ',') from restrictions "
    "where subject_id in (select subject_id from entries where change_seq > %(seen)s and change_seq <= %(upto)s) "
    "group by subject_id, entry_id, until"
)
_CHANGED_SUBJECTS = "select distinct subject_id from entries where change_seq > %(seen)s and change_seq <= %(upto)s"
# Changed subjects live in the index's overlay (about 95 bytes each) until they are merged into its arrays.
COMPACT_AFTER = 200_000
_KEYS = "select key_id, system, secret_sha256, rate_per_second, created_at, revoked_at from api_keys"


def _rows(raw: Iterable[tuple]) -> Iterator[Row]:
    for subject, entry_id, until, measures in raw:
        yield subject, entry_id, None if until is None else float(until), measures.split(",")


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A load makes millions of short-lived rows, none in a cycle: with the cyclic garbage collector running,
    its passes over the growing heap took three quarters of a 1,000,000-subject load."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Follower:
    def __init__(self, url: str, measures: tuple[str, ...], *, heartbeat: float = 1.0, keys: bool = False):
        self.url = url
        self.measures = measures
        self.heartbeat = heartbeat
        self.with_keys = keys
        self.index = RestrictionIndex(measures)
        self.keys = KeyRing()
        self.as_of: float | None = None  # epoch seconds: the index holds every change committed before this
        self.loaded = False
        self.load_seconds = 0.0
        self._seen = 0
        self._lock = threading.Lock()  # one refresh at a time, so an older read never overwrites a newer one
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.log = get_logger("hub.follow")

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        conn.execute("listen hub_entries")
        if self.with_keys:
            conn.execute("listen hub_api_keys")
        return conn

    # -- reading ---------------------------------------------------------------------------------

    def _upto(self, conn: psycopg.Connection) -> int:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (CHANGES_LOCK,))
            return conn.execute("select coalesce(max(change_seq), 0) from entries").fetchone()[0]

    def _load(self, conn: psycopg.Connection) -> None:
        started, began = time.time(), time.perf_counter()
        upto = self._upto(conn)
        with conn.cursor() as cur, cur.copy(_LOAD) as copy, _collector_paused():
            index = RestrictionIndex.build(self.measures, _rows(copy.rows()))
        self.index, self._seen, self.as_of, self.loaded = index, upto, started, True
        self.load_seconds = time.perf_counter() - began
        self.log.info("interception index loaded", subjects=len(index), seconds=round(self.load_seconds, 3))

    def _refresh(self, conn: psycopg.Connection) -> int:
        started = time.time()
        upto = self._upto(conn)
        changed = 0
        if upto > self._seen:
            window = {"seen": self._seen, "upto": upto}
            with conn.transaction():
                subjects = [r[0] for r in conn.execute(_CHANGED_SUBJECTS, window)]
                fresh: dict[str, list[Row]] = {s: [] for s in subjects}
                for row in _rows(conn.execute(_CHANGED, window)):
                    fresh.setdefault(row[0], []).append(row)
            index = self.index
            for subject, rows in fresh.items():
                index.replace(subject, rows)
            if index.overlay_size > COMPACT_AFTER:
                self.index = index.compacted()  # seconds at the national list's size; checks go on meanwhile
            self._seen, changed = upto, len(fresh)
        self.as_of = started
        return changed

    def _reload_keys(self, conn: psycopg.Connection) -> None:
        self.keys = KeyRing([ApiKey(*row) for row in conn.execute(_KEYS)])

    # -- running ---------------------------------------------------------------------------------

    def load(self) -> None:
        """The first load, in the caller's thread (errors are the caller's to report)."""
        with self._connect() as conn, self._lock:
            self._load(conn)
            if self.with_keys:
                self._reload_keys(conn)

    def refresh(self) -> int:
        """Catch up now, on a connection of its own; returns how many subjects changed."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn, self._lock:
            return self._refresh(conn)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="index-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        away_since: float | None = None
        backoff = 0.5
        while not self._halt.is_set():
            try:
                with self._connect() as conn:
                    with self._lock:
                        self._refresh(conn) if self.loaded else self._load(conn)
                        if self.with_keys:
                            self._reload_keys(conn)
                    if away_since is not None:
                        self.log.info("database back: index caught up", away_seconds=round(time.time() - away_since, 1))
                        away_since, backoff = None, 0.5
                    self._follow(conn)
            except psycopg.Error as exc:
                if away_since is None:
                    away_since = time.time()
                    self.log.warning(
                        "database away: answering from the last index until it returns",
                        error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                        index_as_of=self.as_of,
                    )
                self._halt.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _follow(self, conn: psycopg.Connection) -> None:
        last = time.monotonic()
        while not self._halt.is_set():
            heard = {n.channel for n in conn.notifies(timeout=min(0.5, self.heartbeat), stop_after=1)}
            if heard or time.monotonic() - last >= self.heartbeat:
                with self._lock:
                    if "hub_api_keys" in heard:
                        self._reload_keys(conn)
                    if "hub_entries" in heard or not heard:
                        self._refresh(conn)
                last = time.monotonic()

    def close(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
