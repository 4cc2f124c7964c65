"""Court input files (JSON Lines or CSV) into validated events, with every problem located.

A court clerk must be able to fix a file from the messages alone, so each problem names the file, the
line, the field and the reason, in the form `FILE:LINE: field: reason`.

A line that repeats an earlier line's event exactly (same event id, equal validated event: formatting,
whitespace and key order do not matter) is skipped, not refused: a case system that exports one act twice
publishes it once. The same event id with other content is refused, naming both lines.

The same module writes both formats (`write_events_file`, for `hub court simulate --out`), from the one
list of CSV columns below, so that whatever the hub writes, `hub court publish` reads back.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
_CSV_LIST_SEPARATOR = ";"

# A court file's format is named by its extension, for reading and for writing alike.
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv",)
ACCEPTED_SUFFIXES = ".jsonl, .ndjson or .json (JSON Lines), .csv (CSV)"
FileFormat = Literal["jsonl", "csv"]


class UnknownFormatError(ValueError):
    """A file name whose extension names no court file format."""


def file_format(path: Path | str) -> FileFormat:
    """The format a court file's extension names; UnknownFormatError, naming the accepted ones, otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix in JSON_LINES_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    what = f"unknown format {suffix!r}" if suffix else "no extension"
    raise UnknownFormatError(f"{path}: {what}; the extension names the format: {ACCEPTED_SUFFIXES}")


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
    """One input line: a valid event, the problems that keep it out, or an identical repeat of an earlier
    line's event, skipped: then `duplicate_of` is that line's number, `event` None and `problems` empty."""

    line: int
    raw: str
    event: CourtEvent | None
    problems: tuple[Problem, ...] = ()
    duplicate_of: int | None = None


@dataclass
class ParsedFile:
    path: str
    events: list[CourtEvent] = field(default_factory=list)
    rejected: list[ParsedLine] = field(default_factory=list)
    duplicates: int = 0  # lines skipped as identical repeats of an earlier line

    @property
    def problems(self) -> list[Problem]:
        return [p for r in self.rejected for p in r.problems]

    @property
    def empty(self) -> bool:
        """No record at all: an empty file, only blank lines, or a CSV with only its header."""
        return not self.events and not self.rejected and not self.duplicates


class InputFileError(RuntimeError):
    """The file as a whole cannot be read (missing, unreadable, unknown format, bad CSV header)."""


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
            value = [part.strip() for part in value.split(_CSV_LIST_SEPARATOR) if part.strip()]
        target = record
        *parents, leaf = column.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return record


def _records_csv(path: Path) -> Iterator[tuple[int, str, Any]]:
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            fieldnames = reader.fieldnames
        except csv.Error as exc:
            raise InputFileError(f"{path}:1: the header row is not valid CSV: {exc}") from None
        if not fieldnames or not any(c.strip() for c in fieldnames):
            if any(any(cell.strip() for cell in row) for row in reader.reader):
                raise InputFileError(f"{path}:1: no header row; the first line of a CSV file must name its columns")
            return  # nothing but blank lines: no records
        if _undecodable(",".join(fieldnames)) is not None:
            raise InputFileError(f"{path}:1: the header row is not valid UTF-8; save the file as UTF-8")
        unknown = [c for c in fieldnames if c not in CSV_COLUMNS]
        if unknown:
            raise InputFileError(
                f"{path}:1: unknown CSV column(s) {', '.join(unknown)}; allowed: {', '.join(CSV_COLUMNS)}"
            )
        for row in _csv_rows(path, reader):
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


def _csv_rows(path: Path, reader: csv.DictReader[str]) -> Iterator[dict[str, str]]:
    """The rows; a file the csv module cannot read on (a cell over its size limit) is refused where it stops."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputFileError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None
        yield row


def _fingerprint(event: CourtEvent) -> bytes:
    """A digest two events share exactly when they compare equal, so that a repeat is recognised without
    keeping every event of a large file in memory. Times count as instants, as aware datetimes compare:
    10:00+08:00 and 02:00Z are the same time."""

    def instant(value: object) -> str:
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).isoformat()
        raise TypeError(f"unexpected {type(value).__name__} in an event")

    # model_dump lists the fields in the order the class defines them, so equal events give equal text.
    canonical = json.dumps([type(event).__name__, event.model_dump()], default=instant)
    return hashlib.blake2b(canonical.encode(), digest_size=16).digest()


def iter_events_file(
    path: Path | str, published_at: dt.datetime | None = None, tolerance: dt.timedelta = dt.timedelta(minutes=5)
) -> Iterator[ParsedLine]:
    """Validate line by line, streaming, and never stop at the first problem: one run lists them all.

    With `published_at`, an event that states a time later than that (beyond `tolerance`) is refused too.
    A valid event equal to an earlier line's is yielded with `duplicate_of` set (to publish once); one
    that reuses an earlier line's event id with other content is refused, naming both lines.
    Raises InputFileError when the file as a whole cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    try:
        records = _records_csv(path) if file_format(path) == "csv" else _records_jsonl(path)
    except UnknownFormatError:
        raise InputFileError(f"{path}: unknown input format {path.suffix.lower()!r}; use {ACCEPTED_SUFFIXES}") from None
    seen: dict[str, tuple[int, bytes]] = {}  # event id: the line it was first valid on, and that event's digest
    try:
        for number, raw, record in records:
            if isinstance(record, _Unparsable):
                yield ParsedLine(number, raw, None, (Problem(str(path), number, "(line)", record.reason),))
                continue
            try:
                event = parse_event(record, family="court")
            except EventValidationError as exc:
                problems = tuple(Problem(str(path), number, f, r) for f, r in exc.problems)
                yield ParsedLine(number, raw, None, problems)
                continue
            future = dated_in_future(event, published_at, tolerance) if published_at is not None else None
            if future is not None:
                yield ParsedLine(number, raw, None, (Problem(str(path), number, *future),))
                continue
            digest = _fingerprint(event)
            first, first_digest = seen.setdefault(event.event_id, (number, digest))
            if first == number:
                yield ParsedLine(number, raw, event)
            elif first_digest == digest:
                yield ParsedLine(number, raw, None, duplicate_of=first)
            else:
                reason = (
                    f"{event.event_id} is used again with different content (first on line {first}): "
                    "an event id names one court act"
                )
                yield ParsedLine(number, raw, None, (Problem(str(path), number, "event_id", reason),))
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def read_events_file(path: Path | str) -> ParsedFile:
    """The whole file in memory: for small files (examples, tests)."""
    parsed = ParsedFile(str(path))
    for item in iter_events_file(path):
        if item.event is not None:
            parsed.events.append(item.event)
        elif item.duplicate_of is not None:
            parsed.duplicates += 1
        else:
            parsed.rejected.append(item)
    return parsed


# -- writing ----------------------------------------------------------------------------------------


def csv_row(record: Mapping[str, Any]) -> dict[str, str]:
    """One event record (a line of the JSON Lines format) as a row of CSV_COLUMNS, the inverse of what the
    reader does: nested fields flattened with dots, `grounds` joined with `;`, absent and null fields left
    empty. A field with no column, or a value no cell can hold, is a ValueError (never silently dropped)."""
    row: dict[str, str] = {}

    def put(prefix: str, fields: Mapping[str, Any]) -> None:
        for name, value in fields.items():
            column = prefix + name
            if value is None:
                continue
            if isinstance(value, Mapping):
                put(column + ".", value)
            elif column in _CSV_LISTS:
                items = [str(item) for item in value]
                if any(_CSV_LIST_SEPARATOR in item or not item.strip() for item in items):
                    raise ValueError(f"{column}: an item is empty or contains {_CSV_LIST_SEPARATOR!r}: {items!r}")
                row[column] = _CSV_LIST_SEPARATOR.join(items)
            elif isinstance(value, list | tuple | set | dict):
                raise ValueError(f"{column}: a CSV cell cannot hold {type(value).__name__} {value!r}")
            else:
                row[column] = value.isoformat() if isinstance(value, dt.datetime) else str(value)

    put("", record)
    unknown = [column for column in row if column not in CSV_COLUMNS]
    if unknown:
        raise ValueError(f"no CSV column for {', '.join(unknown)}; the columns are {', '.join(CSV_COLUMNS)}")
    return row


def write_events_file(path: Path | str, records: Iterable[Mapping[str, Any]]) -> int:
    """Write event records in the format the file's extension names (see `file_format`), as
    `hub court publish` reads it; returns how many. UnknownFormatError, before anything is written, for
    an extension that names no format."""
    path = Path(path)
    if file_format(path) == "jsonl":
        count = 0
        with open(path, "w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        return count
    rows = [csv_row(record) for record in records]  # every record checked before the file is touched
    with open(path, "w", encoding="utf-8", newline="") as out:
        # The csv module's default CRLF line ends: a cell holding a line break or a lone CR is quoted.
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
