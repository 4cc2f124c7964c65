"""Input files: strict validation, every problem located as FILE:LINE: field: reason."""

import copy
import csv
import datetime as dt
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.events import EventValidationError, parse_event
from producers.parsing import (
    CSV_COLUMNS,
    InputFileError,
    UnknownFormatError,
    csv_row,
    file_format,
    iter_events_file,
    read_events_file,
    write_events_file,
)
from producers.simulator import SimulationConfig, simulate

VALID = simulate(SimulationConfig(debtors=60, seed=99, breach_rate=0.0)).events
TIME_FIELDS = ["occurred_at", "served_at", "received_at", "performed_at", "employer_notified.notified_at"]
ENUM_FIELDS = ["type", "disclosure", "grounds[0]", "outcome", "reason", "debtor.kind"]
OPTIONAL = {"period_months", "employer_notified", "performed_at", "legal_representative"}


def _get(record, path):
    for part in re.findall(r"[^.\[\]]+", path):
        record = record[int(part)] if isinstance(record, list) else record.get(part) if record else None
    return record


def _set(record, path, value):
    parts = re.findall(r"[^.\[\]]+", path)
    for part in parts[:-1]:
        record = record[int(part)] if isinstance(record, list) else record[part]
    last = parts[-1]
    if isinstance(record, list):
        record[int(last)] = value
    else:
        record[last] = value


@st.composite
def corruption(draw):
    record = copy.deepcopy(draw(st.sampled_from(VALID)))
    kind = draw(st.sampled_from(["check_digit", "no_offset", "unknown_enum", "missing", "wrong_type"]))
    if kind == "check_digit":
        field = draw(st.sampled_from(["debtor.id_number", "debtor.legal_representative.id_number"]))
        if _get(record, field) is None:
            field = "debtor.id_number"
        number = _get(record, field)
        replacement = draw(st.sampled_from([c for c in "0123456789" if c != number[-1]]))
        _set(record, field, number[:-1] + replacement)
    elif kind == "no_offset":
        field = draw(st.sampled_from([f for f in TIME_FIELDS if _get(record, f)]))
        _set(record, field, _get(record, field)[:19])
    elif kind == "unknown_enum":
        field = draw(st.sampled_from([f for f in ENUM_FIELDS if _get(record, f)]))
        _set(record, field, draw(st.from_regex(r"\A[A-Z_]{3,12}\Z")).replace("PERSON", "X") + "_NOPE")
    elif kind == "missing":
        optional = OPTIONAL | ({"served_at"} if record["type"] == "Included" else set())
        field = draw(st.sampled_from([k for k in record if k not in optional]))
        del record[field]
    else:
        field = draw(st.sampled_from([k for k in record if k not in ("type",)]))
        current = record[field]
        record[field] = 12345 if isinstance(current, str | dict | list) or current is None else "text"
    return kind, field, record


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corruption())
def test_each_corruption_is_rejected_naming_its_field(case):
    kind, field, record = case
    with pytest.raises(EventValidationError) as info:
        parse_event(record, family="court")
    named = dict(info.value.problems)
    if kind == "unknown_enum" and field == "debtor.kind":
        # A changed kind makes the ID number's check ambiguous; the kind itself is still named.
        assert "debtor.kind" in named
    else:
        assert field in named, (kind, field, info.value.problems)
    assert all(reason for reason in named.values())


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def test_three_bad_lines_among_a_thousand_are_each_named(tmp_path):
    records = simulate(SimulationConfig(debtors=400, seed=1, breach_rate=0.0)).events[:1000]
    assert len(records) == 1000
    records[99]["debtor"]["id_number"] = records[99]["debtor"]["id_number"][:-1] + (
        "0" if records[99]["debtor"]["id_number"][-1] != "0" else "1"
    )
    records[499]["occurred_at"] = records[499]["occurred_at"][:19]
    records[899]["type"] = "Listed"
    path = tmp_path / "court.jsonl"
    _write_jsonl(path, records)
    parsed = read_events_file(path)
    assert len(parsed.events) == 997
    located = {(p.line, p.field) for p in parsed.problems}
    assert located == {(100, "debtor.id_number"), (500, "occurred_at"), (900, "type")}
    assert str(parsed.problems[0]).startswith(f"{path}:100: debtor.id_number: ")


def test_invalid_json_is_reported_and_an_identical_repeat_is_skipped(tmp_path):
    path = tmp_path / "court.jsonl"
    path.write_text(json.dumps(VALID[0]) + "\n{not json\n\n" + json.dumps(VALID[0]) + "\n", encoding="utf-8")
    parsed = read_events_file(path)
    problems = {(p.line, p.field): p.reason for p in parsed.problems}
    assert list(problems) == [(2, "(line)")] and problems[(2, "(line)")].startswith("not valid JSON")
    assert parsed.events == [parse_event(VALID[0])] and parsed.duplicates == 1


def _conflicting(record):
    """The same event id with other content: another obligation, or another case number for a type without one."""
    other = copy.deepcopy(record)
    if "obligation" in other:
        other["obligation"] += "（更正）"
    else:
        other["case_number"] += "之一"
    return other


def test_identical_repeats_are_skipped_counted_and_each_event_kept_once(tmp_path):
    path = tmp_path / "court.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in VALID[:5]]
    # Line 7 repeats line 2 verbatim, line 8 line 4 with its keys reversed and other spacing, line 9 line 5.
    reordered = json.dumps(
        dict(reversed(list(VALID[3].items()))), ensure_ascii=True, indent=None, separators=(" , ", ":")
    )
    path.write_text("\n".join([*lines, "", lines[1], "  " + reordered + "\t", lines[4]]) + "\n", encoding="utf-8")
    parsed = read_events_file(path)
    assert parsed.rejected == [] and parsed.duplicates == 3
    assert parsed.events == [parse_event(r) for r in VALID[:5]], "each event once, where it first came"
    items = list(iter_events_file(path))
    skipped = [(i.line, i.duplicate_of) for i in items if i.duplicate_of is not None]
    assert skipped == [(7, 2), (8, 4), (9, 5)]
    assert all(i.event is None and i.problems == () for i in items if i.duplicate_of is not None)
    assert all(i.duplicate_of is None for i in items if i.event is not None)


def test_an_identical_repeat_is_the_equal_validated_event_not_the_same_text(tmp_path):
    """Equal as the models compare: stripped text, an upper-case UUID, the same instant in another offset."""
    record = next(r for r in VALID if r["type"] == "Included")
    same = copy.deepcopy(record)
    same["event_id"] = same["event_id"].upper()
    same["obligation"] = f"  {same['obligation']} "
    occurred = dt.datetime.fromisoformat(same["occurred_at"]).astimezone(dt.UTC)
    same["occurred_at"] = occurred.isoformat()
    assert parse_event(same) == parse_event(record)
    path = tmp_path / "court.jsonl"
    _write_jsonl(path, [record, same])
    parsed = read_events_file(path)
    assert (len(parsed.events), parsed.duplicates, parsed.rejected) == (1, 1, [])


def test_csv_identical_repeats_are_skipped(tmp_path):
    path = tmp_path / "court.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for record in VALID[:3]:
            writer.writerow(_flatten(record))
        writer.writerow(_flatten(VALID[0]))
        writer.writerow({k: f" {v} " for k, v in _flatten(VALID[2]).items()})  # padded cells: the same event
    parsed = read_events_file(path)
    assert parsed.rejected == [] and parsed.duplicates == 2
    assert parsed.events == [parse_event(r) for r in VALID[:3]]
    assert [(i.line, i.duplicate_of) for i in iter_events_file(path) if i.duplicate_of] == [(5, 2), (6, 4)]


def test_an_event_id_used_again_with_other_content_names_both_lines(tmp_path):
    path = tmp_path / "c.jsonl"
    other = _conflicting(VALID[2])
    # Line 7 reuses line 3's id with other content; line 8 repeats line 3 exactly, so it is only skipped.
    _write_jsonl(path, [*VALID[:6], other, VALID[2]])
    parsed = read_events_file(path)
    assert [str(p) for p in parsed.problems] == [
        f"{path}:7: event_id: {VALID[2]['event_id']} is used again with different content (first on line 3): "
        "an event id names one court act"
    ]
    assert [r.line for r in parsed.rejected] == [7] and parsed.duplicates == 1
    assert parsed.events == [parse_event(r) for r in VALID[:6]], "the first stays; the other is refused"


def test_csv_event_id_used_again_with_other_content(tmp_path):
    path = tmp_path / "c.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerow(_flatten(VALID[0]))
        writer.writerow(_flatten(VALID[1]))
        writer.writerow(_flatten(_conflicting(VALID[0])))
    [problem] = read_events_file(path).problems
    assert (problem.line, problem.field) == (4, "event_id")
    assert "used again with different content (first on line 2)" in problem.reason


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n  \n\t\n\n"),
        ("empty.csv", ""),
        ("blank.csv", "\n \n"),
        ("header.csv", ",".join(CSV_COLUMNS) + "\n"),
        ("header-and-blank-lines.csv", ",".join(CSV_COLUMNS) + "\r\n\r\n\r\n"),
    ],
)
def test_a_file_with_no_events_is_empty_not_an_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    parsed = read_events_file(path)
    assert parsed.empty and (parsed.events, parsed.rejected, parsed.duplicates) == ([], [], 0)
    assert list(iter_events_file(path)) == []


def test_a_file_with_records_is_not_empty(tmp_path):
    path = tmp_path / "court.jsonl"
    path.write_text("{not json\n", encoding="utf-8")
    assert not read_events_file(path).empty


def test_a_csv_whose_header_is_not_on_the_first_line_is_refused(tmp_path):
    path = tmp_path / "late-header.csv"
    path.write_text("\n" + ",".join(CSV_COLUMNS) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"late-header.csv:1: no header row"):
        read_events_file(path)


def test_a_file_that_cannot_be_read_is_an_input_file_error(tmp_path):
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(InputFileError, match=r"folder\.jsonl: cannot be read"):
        read_events_file(tmp_path / "folder.jsonl")


def _flatten(record):
    row = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for sub, subvalue in _flatten(value).items():
                row[f"{key}.{sub}"] = subvalue
        elif isinstance(value, list):
            row[key] = ";".join(value)
        elif value is not None:
            row[key] = str(value)
    return row


def test_csv_with_flattened_columns_gives_the_same_events(tmp_path):
    path = tmp_path / "court.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for record in VALID:
            writer.writerow(_flatten(record))
    parsed = read_events_file(path)
    assert parsed.rejected == []
    assert parsed.events == [parse_event(r) for r in VALID]


def test_csv_problems_are_located_and_unknown_columns_refused(tmp_path):
    path = tmp_path / "court.csv"
    row = _flatten(VALID[1])
    row["debtor.id_number"] = row["debtor.id_number"][:-1] + ("0" if row["debtor.id_number"][-1] != "0" else "1")
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerow(_flatten(VALID[0]))
        writer.writerow(row)
    assert [(p.line, p.field) for p in read_events_file(path).problems] == [(3, "debtor.id_number")]
    bad = tmp_path / "bad.csv"
    bad.write_text("event_id,colour\n1,red\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"unknown CSV column.*colour"):
        read_events_file(bad)


def test_unknown_format_and_missing_file_are_clear(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        read_events_file(tmp_path / "nope.jsonl")
    (tmp_path / "x.xml").write_text("<x/>")
    with pytest.raises(InputFileError, match="unknown input format"):
        read_events_file(tmp_path / "x.xml")


def test_a_line_that_is_not_utf8_is_reported_not_fatal(tmp_path):
    path = tmp_path / "court.jsonl"
    gbk = json.dumps(VALID[1], ensure_ascii=False).encode("gbk")
    path.write_bytes(json.dumps(VALID[0]).encode() + b"\n" + gbk + b"\n")
    parsed = read_events_file(path)
    assert len(parsed.events) == 1
    [problem] = parsed.problems
    assert (problem.line, problem.field) == (2, "(line)")
    assert problem.reason.startswith("not valid UTF-8: byte 0x") and "save the file as UTF-8" in problem.reason
    assert "\ufffd" in parsed.rejected[0].raw, "the rejected line stays writable to a rejects file"


def test_a_csv_cell_that_is_not_utf8_is_reported_not_fatal(tmp_path):
    path = tmp_path / "court.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerow(_flatten(VALID[0]))
    path.write_bytes(path.read_bytes().replace(VALID[0]["court_name"].encode(), VALID[0]["court_name"].encode("gbk")))
    [problem] = read_events_file(path).problems
    assert (problem.line, problem.field) == (2, "(line)")
    assert problem.reason == "the court_name cell is not valid UTF-8; save the file as UTF-8"


def test_nul_in_text_and_invisible_unknown_field_names_are_refused_on_one_line():
    record = copy.deepcopy(VALID[0])
    record["court_name"] = "北京\x00法院"
    record["\n"] = 1
    with pytest.raises(EventValidationError) as info:
        parse_event(record, family="court")
    named = dict(info.value.problems)
    assert named["court_name"].startswith("contains the NUL character")
    assert named["'\\n'"] == "unknown field"


def test_the_csv_writer_is_the_readers_inverse_even_for_awkward_text(tmp_path):
    """Commas, quotes, line breaks and a lone CR inside a cell, an ORG with its legal representative,
    several grounds, a listing period and an employer notice: written, then read back to the same events."""
    records = copy.deepcopy(VALID)
    included = next(r for r in records if r["type"] == "Included")
    included["obligation"] = '支付货款, "50万元"\n及利息\r按月'
    included["grounds"] = ["CAPABLE_BUT_REFUSES", "EVADES_EXECUTION"]
    included["period_months"] = 36
    included["disclosure"] = "RESTRICTED"
    included["employer_notified"] = {"unit": "某某有限公司, 人事部", "notified_at": included["occurred_at"]}
    assert any(r["debtor"]["kind"] == "ORG" for r in records)
    path = tmp_path / "court.csv"
    assert write_events_file(path, records) == len(records)
    parsed = read_events_file(path)
    assert parsed.rejected == [] and parsed.duplicates == 0
    assert parsed.events == [parse_event(r) for r in records]
    assert csv_row(included)["grounds"] == "CAPABLE_BUT_REFUSES;EVADES_EXECUTION"
    assert "employer_notified" not in csv_row({**included, "employer_notified": None})


def test_the_csv_writer_refuses_what_no_column_can_hold_before_writing(tmp_path):
    path = tmp_path / "court.csv"
    with pytest.raises(ValueError, match=r"no CSV column for colour"):
        write_events_file(path, [*VALID[:3], {**VALID[3], "colour": "red"}])
    with pytest.raises(ValueError, match=r"debtor\.aliases: a CSV cell cannot hold list"):
        csv_row({**VALID[0], "debtor": {**VALID[0]["debtor"], "aliases": ["a", "b"]}})
    with pytest.raises(ValueError, match=r"grounds: an item is empty or contains ';'"):
        csv_row({"grounds": ["CAPABLE_BUT_REFUSES;EVADES_EXECUTION"]})
    assert not path.exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.jsonl", "jsonl"), ("a.json", "jsonl"), ("a.NDJSON", "jsonl"), ("dir.d/a.csv", "csv"), ("a.Csv", "csv")],
)
def test_the_extension_names_the_format(name, expected):
    assert file_format(name) == expected


@pytest.mark.parametrize("name", ["a.txt", "a.tsv", "a", "a.jsonl.gz"])
def test_an_extension_that_names_no_format_is_refused_naming_the_accepted_ones(name):
    with pytest.raises(UnknownFormatError, match=r"\.jsonl, \.ndjson or \.json \(JSON Lines\), \.csv \(CSV\)"):
        file_format(name)
