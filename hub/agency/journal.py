"""A local, append-only journal of interception records the database has not taken yet.

A BLOCKED answer is given only once its record is durable. While the agency's database is away, the
recorder appends the records here and fsyncs before the answer goes out; when the database is back they are
inserted (an event id is inserted once, so replaying twice is harmless) and the journal is emptied. Each
process writes its own file and holds an exclusive lock on it for as long as it lives: a file nobody locks
belongs to a process that died, and whoever starts next replays it. A line cut short by a kill was never
fsynced, so its block was never answered: it is skipped.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from hub.agency.store import Interception
from hub.log import get_logger


def _line(record: Interception) -> bytes:
    event_id, at, subject, measure, channel, entries = record
    doc = {"id": event_id, "at": at.isoformat(), "s": subject, "m": measure, "c": channel, "e": entries}
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _record(line: bytes) -> Interception:
    doc = json.loads(line)
    return doc["id"], dt.datetime.fromisoformat(doc["at"]), doc["s"], doc["m"], doc["c"], list(doc["e"])


def read(path: Path) -> list[Interception]:
    """The complete records of a journal file (a torn last line is left out; a torn line elsewhere is an error)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    if tail:
        get_logger("hub.journal").warning("journal ends in a torn line (never answered): skipped", path=str(path))
    return [_record(line) for line in complete if line]


class Journal:
    """This process's journal file in `folder`, named after the agency; locked from open to close."""

    def __init__(self, folder: Path, agency: str):
        self.folder = folder
        self.agency = agency
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{agency}-{uuid.uuid4().hex[:12]}.journal"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.held = 0

    def append(self, records: Iterable[Interception]) -> None:
        """Durable on return: written and fsynced."""
        data = b"".join(_line(r) for r in records)
        if not data:
            return
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self.held += data.count(b"\n")

    def pending(self) -> list[Interception]:
        return read(self.path)

    def empty(self) -> None:
        """After the database committed what `pending` returned."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self.held = 0

    def orphans(self) -> Iterator[tuple[Path, int]]:
        """Journal files of this agency whose process is gone, each with its lock held: (path, fd)."""
        for path in sorted(self.folder.glob(f"{self.agency}-*.journal")):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            yield path, fd

    def close(self) -> None:
        """Remove the file if it is empty (it is replayed by the next start otherwise), and release the lock."""
        if self._fd < 0:
            return
        if os.fstat(self._fd).st_size == 0:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1
