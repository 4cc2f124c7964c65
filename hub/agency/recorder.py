"""Interception records, made durable before a BLOCKED answer leaves: group commit, or the local journal.

Every block waits on a future. One writer thread takes whatever blocks are waiting and inserts them in one
transaction (a group commit: a thousand concurrent blocks cost one commit, not a thousand); when the database
is away it appends them to the journal instead, fsynced, and keeps doing so until the journal has been
replayed into the database. Insertion ignores an event id already there, so a record replayed after a crash
between commit and emptying the journal is still recorded once, and the agency's service sends it as
InterceptionRecorded feedback once.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import Future

import psycopg

from hub.agency.journal import Journal, read
from hub.agency.store import Interception
from hub.log import get_logger

RETRY_SECONDS = 1.0

_INSERT = (
    "insert into interceptions (event_id, occurred_at, subject_id, measure, channel, entry_ids) "
    "select * from unnest(%s::uuid[], %s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::text[]) "
    "on conflict do nothing"
)


def insert(conn: psycopg.Connection, records: list[Interception]) -> None:
    """One statement for the whole group: on an autocommit connection, one round trip and one WAL flush."""
    conn.execute(
        _INSERT,
        (
            [r[0] for r in records],
            [r[1] for r in records],
            [r[2] for r in records],
            [r[3] for r in records],
            [r[4] for r in records],
            [",".join(r[5]) for r in records],
        ),
    )


class Recorder:
    def __init__(self, url: str, journal: Journal):
        self.url = url
        self._conn: psycopg.Connection | None = None
        self.journal = journal
        self.log = get_logger("hub.recorder").bind(service=journal.agency)
        self._waiting: list[tuple[list[Interception], Future]] = []
        self._cond = threading.Condition()
        self._halt = False
        self._in_flight = 0
        self._orphaned = 0
        self._journaling = any(True for _ in self._orphan_files())  # a dead process left records: replay first
        self._last_try = 0.0
        self.committed = 0
        self._thread = threading.Thread(target=self._run, name="interception-recorder", daemon=True)
        self._thread.start()

    def record(self, records: list[Interception]) -> Future:
        """A future that resolves once every record is in the database or the fsynced journal."""
        done: Future = Future()
        with self._cond:
            if self._halt:
                raise RuntimeError("the interception recorder is closed")
            self._waiting.append((records, done))
            self._in_flight += len(records)
            self._cond.notify()
        return done

    def pending(self) -> int:
        """Records not yet in the database: being written, or journaled and not replayed."""
        return self._in_flight + self.journal.held + self._orphaned

    @property
    def journaling(self) -> bool:
        return self._journaling

    def _orphan_files(self):
        for path, fd in self.journal.orphans():
            os.close(fd)
            yield path

    # -- the writer --------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._halt:
                    timeout = RETRY_SECONDS if self._journaling else None
                    if not self._cond.wait(timeout) and self._journaling:
                        break
                batch, self._waiting = self._waiting, []
                halting = self._halt
            if self._journaling and time.monotonic() - self._last_try >= RETRY_SECONDS:
                self._replay()
            if batch:
                self._write(batch)
            if halting and not self._waiting:
                return

    def _write(self, batch: list[tuple[list[Interception], Future]]) -> None:
        records = [r for records, _ in batch for r in records]
        try:
            if self._journaling:
                self.journal.append(records)
            else:
                try:
                    insert(self._connection(), records)
                    self.committed += len(records)
                except Exception as exc:  # the database is away, or the commit's outcome is unknown
                    self._drop()
                    self.log.warning(
                        "the database did not take interception records: they go to the journal until it does",
                        error=str(exc).splitlines()[0],
                        journal=str(self.journal.path),
                    )
                    self._journaling, self._last_try = True, time.monotonic()
                    self.journal.append(records)
        except Exception as exc:  # neither durable (a full disk?): the callers must not answer BLOCKED
            self.log.error("interception records could not be made durable", error=str(exc), records=len(records))
            for _, done in batch:
                done.set_exception(exc)
            return
        finally:
            with self._cond:
                self._in_flight -= len(records)
        for _, done in batch:
            done.set_result(None)

    def _replay(self) -> None:
        """Insert this journal and every orphaned one, then empty and remove them; stop journaling on success."""
        self._last_try = time.monotonic()
        held = []
        try:
            held = list(self.journal.orphans())
            records = self.journal.pending()
            for path, _fd in held:
                records.extend(read(path))
            self._orphaned = sum(1 for _ in records) - self.journal.held
            conn = self._connection()
            with conn.transaction():
                for start in range(0, len(records), 10_000):
                    insert(conn, records[start : start + 10_000])
            self.journal.empty()
            for path, _fd in held:
                path.unlink(missing_ok=True)
            self._orphaned = 0
            self._journaling = False
            self.committed += len(records)
            self.log.info("journal replayed into the database", records=len(records), files=1 + len(held))
        except Exception as exc:
            self._drop()
            self.log.warning(
                "the database still does not take interception records; they stay in the journal",
                error=str(exc).splitlines()[0][:300],
            )
        finally:
            for _path, fd in held:
                os.close(fd)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3)
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Write what waits (to the database or the journal), then stop; the journal file stays if it holds any."""
        with self._cond:
            self._halt = True
            self._cond.notify()
        self._thread.join()
        if self._journaling:
            self._replay()
        self._drop()
        self.journal.close()
