"""The schema catalogue: complete, matching the models, and backward compatible version to version."""

import itertools
import json
import shutil

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from hub.codec import WIRE_ONLY, Catalogue, Codec
from hub.config import PROJECT_ROOT
from hub.domain.events import EVENT_TYPES, parse_event
from tests.support import court_sample

SCHEMAS = PROJECT_ROOT / "schemas"
CATALOGUE = Catalogue(SCHEMAS)


def backward_compatible(reader: dict, writer: dict) -> bool:
    """Can a reader on `reader` read what was written with `writer`?"""
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    return result.compatibility is SchemaCompatibilityType.compatible


def test_every_event_type_has_a_schema_and_the_fields_agree_with_the_model():
    for name, model in EVENT_TYPES.items():
        schema = CATALOGUE.current(name).schema
        assert {f["name"] for f in schema["fields"]} - WIRE_ONLY == set(model.model_fields), name


@pytest.mark.parametrize("name", sorted(CATALOGUE.names()))
def test_each_version_reads_records_of_the_one_before(name):
    versions = CATALOGUE.versions[name]
    assert [v.version for v in versions] == list(range(1, len(versions) + 1)), "versions are numbered 1..n"
    for older, newer in itertools.pairwise(versions):
        assert backward_compatible(newer.schema, older.schema), f"{newer.path.name} cannot read {older.path.name}"
    for older in versions:
        assert backward_compatible(versions[-1].schema, older.schema)


def test_an_old_record_reads_under_a_new_version_and_a_breaking_change_is_caught(tmp_path):
    """Exercise the mechanism on a further evolved copy of the catalogue."""
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    current = CATALOGUE.current("Included")
    old_bytes = Codec(Catalogue(tmp_path / "schemas")).encode_event(parse_event(court_sample("Included")))

    newer = json.loads(json.dumps(current.schema))
    newer["fields"].append({"name": "creditor_count", "type": ["null", "int"], "default": None})
    (tmp_path / "schemas" / "court" / f"Included.v{current.version + 1}.avsc").write_text(json.dumps(newer))
    assert backward_compatible(newer, current.schema)

    new_catalogue = Catalogue(tmp_path / "schemas")
    assert new_catalogue.current("Included").version == current.version + 1
    name, record = Codec(new_catalogue).decode(old_bytes)
    assert name == "Included"
    assert record["creditor_count"] is None
    assert record["entry_id"] == court_sample("Included")["entry_id"]

    breaking = json.loads(json.dumps(current.schema))
    breaking["fields"].append({"name": "creditor_count", "type": "int"})
    assert not backward_compatible(breaking, current.schema)


def test_included_v1_records_read_as_v2_with_served_at_null():
    """The first real evolution: courts that still write v1 stay readable, and mean 'served when decided'."""
    codec = Codec(CATALOGUE)
    assert [v.version for v in CATALOGUE.versions["Included"]] == [1, 2]
    record = court_sample("Included") | {"served_at": "2026-01-21T09:00:00+08:00"}
    event = parse_event(record)
    v1 = codec.encode("Included", record, version=1)
    v2 = codec.encode_event(event)
    assert v1[2:10] == CATALOGUE.version("Included", 1).fingerprint
    assert v2[2:10] == CATALOGUE.version("Included", 2).fingerprint != v1[2:10]
    old = codec.decode_event(v1, "court")
    assert old.served_at is None and old.entry_id == event.entry_id
    assert codec.decode_event(v2, "court") == event
