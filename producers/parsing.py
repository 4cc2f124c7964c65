"""Court input files (JSON Lines or CSV) into validated events, with every problem located.

A court clerk must be able to fix a file from the messages alone, so each problem names the file, the
line, the field and the reason, in the form `FILE:LINE: field: reason`.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.domain.events import CourtEvent, EventValidationError, dated_in_future, parse_event

# CSV columns: nested debtor fields are flattened with dots; `grounds` holds ;-separated values.
CSV_COLUMNS = (
    "event_id", "type", "occurred_at", "court_code", "court_name", "entry_id", "case_number",
    "debtor.kind", "debtor.id_number", "debtor.name",
    "debtor.legal_representative.id_number", "debtor.legal_representative.name",
    "served_at", "grounds", "obligation", "period_months", "disclosure",
    "employer_notified.unit", "employer_notified.notified_at",
    "received_at", "outcome", "reason", "performed_at",
)  # fmt: skip
_CSV_INTEGERS = {"period_months"}
_CSV_LISTS = {"grounds"}


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class ParsedLine:
    """One input line: either a valid event or the problems that keep it out."""

    line: int
    raw: str
    event: CourtEvent | None
    problems: tuple[Problem, ...] = ()


@dataclass
class ParsedFile:
    path: str
    events: list[CourtEvent] = field(default_factory=list)
    rejected: list[ParsedLine] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        return [p for r in self.rejected for p in r.problems]


class InputFileError(RuntimeError):
    """The file as a whole cannot be read (missing, unknown format, bad CSV header)."""


# Files are read with errors="surrogateescape": a byte that is not UTF-8 (a file saved as GBK, a stray byte)
# becomes one of these code points, so the line is reported instead of the whole read failing.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _undecodable(text: str) -> str | None:
    """Where the first byte that is not UTF-8 is (`byte 0xd5 at column 12`); None when every byte is."""
    found = _NOT_UTF8.search(text)
    if found is None:
        return None
    return f"byte 0x{ord(found.group()) - 0xDC00:02x} at column {found.start() + 1}"


def _readable(text: str) -> str:
    """The line as text that can be written out again (each byte that is not UTF-8 shown as U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _records_jsonl(path: Path) -> Iterator[tuple[int, str, Any]]:
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text:
                continue
            undecodable = _undecodable(text)
            if undecodable is not None:
                yield number, _readable(text), _Unparsable(f"not valid UTF-8: {undecodable}; save the file as UTF-8")
                continue
            try:
                yield number, text, json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, text, _Unparsable(f"not valid JSON: {exc.msg} at column {exc.colno}")


class _Unparsable:
    def __init__(self, reason: str):
        self.reason = reason


def _unflatten(row: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for column, cell in row.items():
        if cell is None or cell.strip() == "":
            continue
        value: Any = cell.strip()
        if column in _CSV_INTEGERS:
            # Not a number: left as text, so the model reports the wrong type against the field.
            with contextlib.suppress(ValueError):
                value = int(value)
        elif column in _CSV_LISTS:
            value = [part.strip() for part in value.split(";") if part.strip()]
        target = record
        *parents, leaf = column.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return record


def _records_csv(path: Path) -> Iterator[tuple[int, str, Any]]:
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle)
        unknown = [c for c in reader.fieldnames or () if c not in CSV_COLUMNS]
        if not reader.fieldnames:
            raise InputFileError(f"{path}: empty CSV file (expected a header row)")
        if _undecodable(",".join(reader.fieldnames)) is not None:
            raise InputFileError(f"{path}:1: the header row is not valid UTF-8; save the file as UTF-8")
        if unknown:
            raise InputFileError(
                f"{path}:1: unknown CSV column(s) {', '.join(unknown)}; allowed: {', '.join(CSV_COLUMNS)}"
            )
        for row in reader:
            if None in row:
                yield reader.line_num, "", _Unparsable("more cells than header columns")
                continue
            raw = ",".join(row[c] or "" for c in reader.fieldnames)
            undecodable = next((c for c in reader.fieldnames if _undecodable(row[c] or "") is not None), None)
            if undecodable is not None:
                reason = f"the {undecodable} cell is not valid UTF-8; save the file as UTF-8"
                yield reader.line_num, _readable(raw), _Unparsable(reason)
                continue
            yield reader.line_num, raw, _unflatten(row)


def iter_events_file(
    path: Path | str, published_at: dt.datetime | None = None, tolerance: dt.timedelta = dt.timedelta(minutes=5)
) -> Iterator[ParsedLine]:
    """Validate line by line, streaming, and never stop at the first problem: one run lists them all.

    With `published_at`, an event that states a time later than that (beyond `tolerance`) is refused too.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        records = _records_jsonl(path)
    elif suffix == ".csv":
        records = _records_csv(path)
    else:
        raise InputFileError(f"{path}: unknown input format {suffix!r}; use .jsonl or .csv")
    seen: dict[str, int] = {}
    for number, raw, record in records:
        if isinstance(record, _Unparsable):
            yield ParsedLine(number, raw, None, (Problem(str(path), number, "(line)", record.reason),))
            continue
        try:
            event = parse_event(record, family="court")
        except EventValidationError as exc:
            yield ParsedLine(number, raw, None, tuple(Problem(str(path), number, f, r) for f, r in exc.problems))
            continue
        future = dated_in_future(event, published_at, tolerance) if published_at is not None else None
        if future is not None:
            yield ParsedLine(number, raw, None, (Problem(str(path), number, *future),))
            continue
        first = seen.setdefault(event.event_id, number)
        if first != number:
            yield ParsedLine(number, raw, None, (Problem(str(path), number, "event_id", f"duplicate of line {first}"),))
            continue
        yield ParsedLine(number, raw, event)


def read_events_file(path: Path | str) -> ParsedFile:
    """The whole file in memory: for small files (examples, tests)."""
    parsed = ParsedFile(str(path))
    for item in iter_events_file(path):
        if item.event is not None:
            parsed.events.append(item.event)
        else:
            parsed.rejected.append(item)
    return parsed
