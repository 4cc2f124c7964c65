"""The one codec: Avro single-object encoding against the schema catalogue in `schemas/`.

A record is `C3 01`, the 8-byte little-endian CRC-64-AVRO fingerprint of its writer schema, then the
Avro body. Readers find the writer schema by fingerprint among every version ever kept and resolve it
against the current version, so years-old records stay readable without a registry server.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from hub.domain.events import CourtEvent, Event, FeedbackEvent, dated_in_future, event_to_record
from hub.domain.wire import event_from_record

MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8
CONTENT_TYPE = "application/avro"
_FILE_NAME = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>\d+)\.avsc$")


class CodecError(ValueError):
    """Bytes that cannot be decoded (or a record that cannot be encoded); the message says why."""


class SchemaCatalogueError(RuntimeError):
    """The schema folder itself is inconsistent."""


@dataclass(frozen=True)
class SchemaVersion:
    name: str
    full_name: str
    version: int
    path: Path
    schema: dict
    parsed: Any
    fingerprint: bytes


class Catalogue:
    """Every schema version in a folder, by record name and by fingerprint."""

    def __init__(self, root: Path):
        self.root = root
        self.versions: dict[str, list[SchemaVersion]] = {}
        self.by_fingerprint: dict[bytes, SchemaVersion] = {}
        paths = sorted(root.rglob("*.avsc"))
        if not paths:
            raise SchemaCatalogueError(f"no .avsc files under {root}")
        for path in paths:
            self._load(path)
        for versions in self.versions.values():
            versions.sort(key=lambda v: v.version)

    def _load(self, path: Path) -> None:
        match = _FILE_NAME.match(path.name)
        if not match:
            raise SchemaCatalogueError(f"{path}: schema files are named <Record>.v<N>.avsc")
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            parsed = parse_schema(schema)
        except Exception as exc:
            raise SchemaCatalogueError(f"{path}: not a valid Avro schema: {exc}") from exc
        if schema.get("name") != match["name"]:
            raise SchemaCatalogueError(f"{path}: record name {schema.get('name')!r} differs from file name")
        fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
        full_name = f"{schema.get('namespace')}.{schema['name']}" if schema.get("namespace") else schema["name"]
        version = SchemaVersion(
            name=match["name"],
            full_name=full_name,
            version=int(match["version"]),
            path=path,
            schema=schema,
            parsed=parsed,
            fingerprint=fp,
        )
        existing = self.versions.setdefault(version.name, [])
        if any(v.version == version.version for v in existing):
            raise SchemaCatalogueError(f"{path}: version {version.version} of {version.name} exists twice")
        existing.append(version)
        # Versions that differ only in docs or defaults share a fingerprint; the newest wins.
        prior = self.by_fingerprint.get(fp)
        if prior is None or prior.version < version.version:
            self.by_fingerprint[fp] = version

    def current(self, name: str) -> SchemaVersion:
        return self.version(name)

    def version(self, name: str, number: int | None = None) -> SchemaVersion:
        """A record type's schema: the current one, or version `number` (a writer not yet upgraded)."""
        versions = self.versions.get(name)
        if not versions:
            raise CodecError(f"no schema for record type {name!r} in {self.root}")
        if number is None:
            return versions[-1]
        found = next((v for v in versions if v.version == number), None)
        if found is None:
            raise CodecError(f"no version {number} of {name} in {self.root}")
        return found

    def names(self) -> Iterable[str]:
        return self.versions.keys()


# Fields that exist on the wire only: the codec maps them to and from the events' own fields.
WIRE_ONLY = frozenset({"measure_names", "measure_name"})


def _measures_from_wire(record: dict[str, Any]) -> dict[str, Any]:
    if "measure_names" not in record and "measure_name" not in record:
        return record
    natural = dict(record)
    names = natural.pop("measure_names", None)
    if names:
        natural["measures"] = names
    name = natural.pop("measure_name", None)
    if name:
        natural["measure"] = name
    return natural


class Codec:
    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue
        self._measure_symbols: dict[str, frozenset[str]] = {}

    def encode(self, name: str, record: dict[str, Any], version: int | None = None) -> bytes:
        """Encode with the current schema, or with an earlier `version` (as a writer not yet upgraded does)."""
        writer = self.catalogue.version(name, version)
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(writer.fingerprint)
        try:
            schemaless_writer(buf, writer.parsed, record)
        except Exception as exc:
            raise CodecError(f"cannot encode {name} with {writer.path.name}: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes | None) -> tuple[str, dict[str, Any]]:
        """Return (record name, record resolved to the current schema version)."""
        if data is None:
            raise CodecError("empty record value (tombstone)")
        if len(data) < HEADER_LEN:
            raise CodecError(f"truncated record: {len(data)} bytes, the single-object header alone is 10")
        if data[:2] != MAGIC:
            raise CodecError(f"bad magic bytes {data[:2].hex(' ')}: expected c3 01 (Avro single-object encoding)")
        writer = self.catalogue.by_fingerprint.get(data[2:HEADER_LEN])
        if writer is None:
            raise CodecError(
                f"unknown schema fingerprint {data[2:HEADER_LEN].hex()}: not in the catalogue {self.catalogue.root}"
            )
        reader = self.catalogue.current(writer.name)
        buf = io.BytesIO(data)
        buf.seek(HEADER_LEN)
        try:
            record = schemaless_reader(buf, writer.parsed, None if reader is writer else reader.parsed)
        except EOFError:
            raise CodecError(
                f"truncated body: {writer.name} v{writer.version} needs more than {len(data)} bytes"
            ) from None
        except Exception as exc:
            raise CodecError(f"corrupt {writer.name} v{writer.version} body: {type(exc).__name__}: {exc}") from None
        if buf.tell() != len(data):
            raise CodecError(f"{len(data) - buf.tell()} trailing bytes after the {writer.name} body")
        return writer.name, record

    def encode_event(self, event: Event) -> bytes:
        record = event_to_record(event)
        if isinstance(event, FeedbackEvent):
            record = self._measures_to_wire(event.event_type, record)
        return self.encode(event.event_type, record)

    def decode_event(self, data: bytes | None, family: str | None = None) -> Event:
        """Decode and check (hub/domain/wire.py); raises CodecError or EventValidationError."""
        _name, record = self.decode(data)
        return event_from_record(_measures_from_wire(record), family)

    def _measures_to_wire(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        """Measures travel by name (`measure_names`, `measure_name`); the enum fields of v1 carry the same names
        where the schema knows them and OTHER where it does not, so v1 readers still read known measures."""
        known = self._known_measures(name)
        wire = dict(record)
        wire["measure_names"] = list(record["measures"])
        wire["measures"] = [m if m in known else "OTHER" for m in record["measures"]]
        if "measure" in record:
            wire["measure_name"] = record["measure"]
            wire["measure"] = record["measure"] if record["measure"] in known else "OTHER"
        return wire

    def _known_measures(self, name: str) -> frozenset[str]:
        cached = self._measure_symbols.get(name)
        if cached is None:
            field = next(f for f in self.catalogue.current(name).schema["fields"] if f["name"] == "measures")
            cached = self._measure_symbols[name] = frozenset(field["type"]["items"]["symbols"]) - {"OTHER"}
        return cached


# A court record loaded as part of a historical import (`hub court publish --history`): the ledger stores the
# mark and exempts the record from publication-time rules, since loading history is not publishing it.
HISTORY_HEADER = ("hub-import", b"history")


def event_headers(event: Event, historical: bool = False) -> list[tuple[str, bytes]]:
    headers = [
        ("event-type", event.event_type.encode()),
        ("event-id", event.event_id.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    return [*headers, HISTORY_HEADER] if historical else headers


def is_historical(headers: Iterable[tuple[str, bytes | None]] | None) -> bool:
    return HISTORY_HEADER in (headers or ())  # one comparison in C per header: every record pays it


def future_dated(event: Event, published_ms: int, tolerance: dt.timedelta) -> str | None:
    """Why a court record cannot take effect: it states a time after its own publication (broker time)."""
    if not isinstance(event, CourtEvent):
        return None
    found = dated_in_future(event, dt.datetime.fromtimestamp(published_ms / 1000, dt.UTC), tolerance)
    return None if found is None else f"{found[0]}: {found[1]}"


@lru_cache(maxsize=4)
def codec_for(schema_dir: Path) -> Codec:
    return Codec(Catalogue(schema_dir))


def default_codec() -> Codec:
    from hub.config import get_settings

    return codec_for(get_settings().schema_dir)
