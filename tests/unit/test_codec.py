import json

import pytest

from hub.codec import MAGIC, Catalogue, Codec, CodecError, event_headers
from hub.config import PROJECT_ROOT
from hub.domain.events import EventValidationError, parse_event
from tests.support import every_sample

CODEC = Codec(Catalogue(PROJECT_ROOT / "schemas"))


@pytest.mark.parametrize("record", every_sample(), ids=lambda r: r["type"])
def test_every_event_type_round_trips_json_model_avro_bytes_model(record):
    event = parse_event(json.loads(json.dumps(record, ensure_ascii=False)))
    data = CODEC.encode_event(event)
    assert data[:2] == MAGIC
    assert data[2:10] == CODEC.catalogue.current(record["type"]).fingerprint
    assert CODEC.decode_event(data) == event


def test_fingerprint_is_crc64_avro_little_endian():
    # Avro specification test vector: the schema "int" fingerprints to 0x7275d51a3f395c8f (LE bytes).
    from fastavro import parse_schema
    from fastavro.schema import fingerprint, to_parsing_canonical_form

    assert fingerprint(to_parsing_canonical_form(parse_schema("int")), "CRC-64-AVRO") == "8f5c393f1ad57572"


def test_headers_carry_type_id_and_content_type():
    event = parse_event(every_sample()[1])
    assert dict(event_headers(event)) == {
        "event-type": b"Included",
        "event-id": event.event_id.encode(),
        "content-type": b"application/avro",
    }


def test_bad_magic_bytes_are_named():
    data = CODEC.encode_event(parse_event(every_sample()[0]))
    with pytest.raises(CodecError, match="bad magic bytes 00 01"):
        CODEC.decode(b"\x00\x01" + data[2:])


def test_unknown_fingerprint_is_named():
    data = CODEC.encode_event(parse_event(every_sample()[0]))
    with pytest.raises(CodecError, match="unknown schema fingerprint 0102030405060708"):
        CODEC.decode(MAGIC + bytes(range(1, 9)) + data[10:])


@pytest.mark.parametrize("cut", [3, 12, 40])
def test_truncated_records_are_named(cut):
    data = CODEC.encode_event(parse_event(every_sample()[1]))
    with pytest.raises(CodecError, match="truncated"):
        CODEC.decode(data[:cut])


def test_trailing_bytes_are_rejected():
    data = CODEC.encode_event(parse_event(every_sample()[1]))
    with pytest.raises(CodecError, match="trailing bytes"):
        CODEC.decode(data + b"\x00")


def test_valid_encoding_of_an_invalid_event_fails_validation_not_decoding():
    record = every_sample()[1]
    record["debtor"]["id_number"] = "110105194912310021"
    data = CODEC.encode("Included", record)
    name, _decoded = CODEC.decode(data)
    assert name == "Included"
    with pytest.raises(EventValidationError, match=r"debtor\.id_number"):
        CODEC.decode_event(data)


def test_feedback_record_refused_where_court_events_are_expected():
    data = CODEC.encode_event(parse_event(every_sample()[-1]))
    with pytest.raises(EventValidationError, match="unknown event type 'InterceptionRecorded'"):
        CODEC.decode_event(data, family="court")


def test_a_measure_no_schema_knows_travels_by_name_and_old_records_still_read():
    """A new unit's measure needs no schema change: v2 carries measures by name, and the enum fields that v1
    readers know say OTHER for it; feedback written with v1 reads with its enum measures."""
    from hub.codec import default_codec
    from hub.domain.events import parse_event
    from tests.support import feedback_sample

    codec = default_codec()
    new = parse_event(
        feedback_sample(
            "InterceptionRecorded",
            agency="customs",
            measures=["EXPORT_LICENCE_RESTRICTED"],
            measure="EXPORT_LICENCE_RESTRICTED",
        )
    )
    data = codec.encode_event(new)
    assert codec.decode_event(data, "feedback") == new
    _name, wire = codec.decode(data)
    assert (wire["measures"], wire["measure_names"]) == (["OTHER"], ["EXPORT_LICENCE_RESTRICTED"])
    assert (wire["measure"], wire["measure_name"]) == ("OTHER", "EXPORT_LICENCE_RESTRICTED")

    known = parse_event(feedback_sample("SanctionApplied"))
    v1 = codec.encode("SanctionApplied", {k: v for k, v in known.model_dump(mode="json").items()}, version=1)
    assert v1[2:10] == codec.catalogue.version("SanctionApplied", 1).fingerprint
    assert codec.decode_event(v1, "feedback") == known
    _name, wire = codec.decode(codec.encode_event(known))
    assert wire["measures"] == wire["measure_names"] == known.measures
