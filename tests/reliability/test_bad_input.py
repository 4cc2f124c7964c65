"""Bad input never reaches an agency: a malformed court file is refused line by line with nothing
published, and poison records on the court topic end in hub.dead-letter while every service carries on."""

from __future__ import annotations

import copy
import json
import random
import re
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hub.acl import court_principal
from hub.clients import security
from hub.codec import HEADER_LEN, MAGIC, default_codec
from hub.config import Settings
from hub.domain.events import COURT_EVENT_TYPES, CourtEvent, parse_event
from hub.readback import end_offsets
from hub.topics import COURT_EVENTS, feedback_topic
from producers.parsing import read_events_file
from producers.simulator import SimulationConfig, simulate
from tests.integration.helpers import publish, simulated
from tests.reliability.support import (
    Offsets,
    Progress,
    ServiceProcess,
    assert_agency_matches,
    assert_ledger_holds_each_event_once,
    dead_letters,
    expected_states,
    running,
    wait_until,
)
from tests.support import court_sample, feedback_sample, run_hub
from tests.unit.test_parsing import _get, _set, corruption

pytestmark = pytest.mark.reliability

# -- a malformed court file ----------------------------------------------------------------------------

SOURCE = simulate(SimulationConfig(debtors=80, seed=41, breach_rate=0.0)).events
KNOWN_FIELDS = frozenset().union(*(cls.model_fields for cls in COURT_EVENT_TYPES.values()))
TEXT_FIELDS = ("court_name", "entry_id", "case_number", "debtor.name", "obligation")
ECHOED = ("type", "event_id", "occurred_at")  # fields whose reason quotes the bad value back to the clerk
AWKWARD = ("[/x]", "[bold red]Included[/]", ":x:", "Listed", "", " ", "included", "\t", "列入", "\u2028", "a\nb", "\\")
NEVER_UTF8 = (0xC0, 0xC1, 0xF5, 0xF8, 0xFE, 0xFF)  # bytes that cannot occur anywhere in UTF-8
KINDS = ("field", "odd_value", "nul_in_text", "unknown_field", "not_an_object", "broken_json", "not_utf8", "garbage")
MALFORMED_LINES = 1_000


def _json(record: object) -> bytes:
    """A JSON Lines line as a court system writes it (UTF-8, Chinese as is)."""
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


@st.composite
def malformed_line(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """One bad line of a court file: (what is wrong with it, its bytes, the field its message must name, if any)."""
    kind = draw(st.sampled_from(KINDS))
    if kind == "field":  # the unit tests' corruptions: check digit, UTC offset, unknown enum, missing, wrong type
        what, field, record = draw(corruption())
        # A changed debtor kind makes the ID number's check ambiguous; some field is still named.
        return what, _json(record), None if field == "debtor.kind" else field
    record = copy.deepcopy(draw(st.sampled_from(SOURCE)))
    if kind == "odd_value":  # rich-markup, emoji codes, separators and blanks where a value is quoted back
        field = draw(st.sampled_from(ECHOED))
        record[field] = draw(st.one_of(st.sampled_from(AWKWARD), st.text(max_size=24)))
        return kind, _json(record), field
    if kind == "nul_in_text":  # valid JSON, but no PostgreSQL text column can hold it
        field = draw(st.sampled_from([f for f in TEXT_FIELDS if _get(record, f) is not None]))
        value = _get(record, field)
        at = draw(st.integers(0, len(value)))
        _set(record, field, value[:at] + "\x00" + value[at:])
        return kind, _json(record), field
    if kind == "unknown_field":
        key = draw(st.text(min_size=1, max_size=16).filter(lambda k: k not in KNOWN_FIELDS))
        record[key] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=8)))
        return kind, _json(record), None
    if kind == "not_an_object":
        value = draw(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12), st.lists(st.integers())))
        return kind, _json(value), "(record)"
    if kind == "broken_json":
        text = json.dumps(record, ensure_ascii=False)
        how = draw(st.sampled_from(["truncated", "single_quotes", "trailing_data", "double_comma", "bare_key"]))
        if how == "truncated":
            text = text[: draw(st.integers(1, len(text) - 1))]
        elif how == "single_quotes":
            text = text.replace('"', "'")
        elif how == "trailing_data":
            text += draw(st.sampled_from([" x", "}", ",", " {}", "\t]"]))
        elif how == "double_comma":
            text = text.replace(", ", ",, ", 1)
        else:
            text = text.replace('"event_id"', "event_id", 1)
        return f"{kind}:{how}", text.encode("utf-8"), "(line)"
    if kind == "not_utf8":  # a file saved in a legacy Chinese encoding, or a stray byte
        if draw(st.booleans()):
            data = json.dumps(record, ensure_ascii=False).encode(draw(st.sampled_from(["gbk", "gb18030"])))
        else:
            data = _json(record)
            at = draw(st.integers(0, len(data)))
            data = data[:at] + bytes([draw(st.sampled_from(NEVER_UTF8))]) + data[at:]
        return kind, data, "(line)"
    data = draw(st.binary(min_size=1, max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b))
    assume(data.decode("utf-8", errors="replace").strip())  # a blank line is no record at all
    return kind, data, None


def test_a_thousand_malformed_lines_are_each_refused_with_a_message_and_nothing_is_published(
    hub_settings: Settings, tmp_path: Path
):
    """A clerk fixes a file from the messages alone: each bad line named, none mangled, nothing half-published."""
    cases: list[tuple[str, bytes, str | None]] = []
    single = tmp_path / "one.jsonl"

    @hypothesis_settings(
        max_examples=1_500,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(malformed_line())
    def each_line_alone_is_rejected_naming_a_field(case: tuple[str, bytes, str | None]) -> None:
        kind, line, field = case
        single.write_bytes(line + b"\n")
        parsed = read_events_file(single)
        assert parsed.events == [] and [r.line for r in parsed.rejected] == [1], (kind, line)
        problems = parsed.problems
        assert problems and all(p.field and p.reason for p in problems), (kind, line, problems)
        assert all(str(p).isprintable() for p in problems), f"a message a clerk cannot read: {problems}"
        if field is not None:
            assert field in {p.field for p in problems}, (kind, line, problems)
        if kind == "unknown_field":
            assert "unknown field" in {p.reason for p in problems}, (kind, line, problems)
        cases.append(case)

    each_line_alone_is_rejected_naming_a_field()
    lines = list(dict.fromkeys(line for _kind, line, _field in cases))
    assert len(lines) >= MALFORMED_LINES, f"only {len(lines)} distinct malformed lines generated"

    # One file: the malformed lines, a valid event after every fourth, and a few blank lines.
    valid = iter(simulate(SimulationConfig(debtors=200, seed=42, breach_rate=0.0)).events)
    path = tmp_path / "court.jsonl"
    bad_lines: list[int] = []
    body: list[bytes] = []
    for i, line in enumerate(lines):
        body.append(line)
        bad_lines.append(len(body))
        if i % 4 == 3:
            body.append(_json(next(valid)))
        if i % 97 == 0:
            body.append(b"   ")
    path.write_bytes(b"\n".join(body) + b"\n")
    records = len(body) - sum(1 for b in body if not b.strip())
    topic = hub_settings.topic(COURT_EVENTS)
    before = end_offsets(hub_settings, topic)

    result = run_hub(hub_settings, "court", "publish", str(path))

    assert result.returncode == 1, result.stderr[-3000:]
    printed = [line for line in result.stderr.split("\n") if line.startswith(f"{path}:")]
    assert printed == [str(p) for p in read_events_file(path).problems], "the CLI altered or dropped a message"
    pattern = re.compile(rf"^{re.escape(str(path))}:(\d+): (\S.*?): (\S.*)$")
    assert all(pattern.match(line) for line in printed), [line for line in printed if not pattern.match(line)][:5]
    assert sorted({int(pattern.match(line)[1]) for line in printed}) == bad_lines  # every bad line, no good one
    assert f"{len(bad_lines)} of {records} records invalid; nothing published" in result.stderr
    assert "published" not in result.stdout
    assert end_offsets(hub_settings, topic) == before


# -- poison on the court topic ---------------------------------------------------------------------------


def poison_records(rng: random.Random, good: list[CourtEvent]) -> list[tuple[bytes | None, bytes | None, list]]:
    """(key, value, headers) of records no service can take, of every kind a broken producer could write."""
    codec = default_codec()
    keys = [e.debtor.id_number.encode() for e in good]
    valid = [codec.encode_event(e) for e in good]

    def invalid_event(change) -> bytes:
        record = court_sample("Included")
        change(record)
        return codec.encode("Included", record)

    def nul_in(field: str):
        return lambda r: r.update({field: r[field][:2] + "\x00" + r[field][2:]})

    def bad_check_digit(r):
        r["debtor"] = dict(r["debtor"], id_number=r["debtor"]["id_number"][:17] + "3")

    makers = {
        "random bytes": lambda: bytes([0x00]) + rng.randbytes(rng.randint(0, 200)),
        "empty": lambda: b"",
        "tombstone": lambda: None,
        "bad magic": lambda: b"\xc3\x02" + rng.choice(valid)[2:],
        "unknown fingerprint": lambda: MAGIC + rng.randbytes(8) + rng.choice(valid)[HEADER_LEN:],
        "truncated header": lambda: rng.choice(valid)[: rng.randint(1, HEADER_LEN - 1)],
        "truncated body": lambda: (v := rng.choice(valid))[: rng.randint(HEADER_LEN, len(v) - 1)],
        "trailing bytes": lambda: rng.choice(valid) + rng.randbytes(rng.randint(1, 12)),
        "bad check digit": lambda: invalid_event(bad_check_digit),
        "time without offset": lambda: invalid_event(lambda r: r.update(occurred_at=r["occurred_at"][:19])),
        "unknown type": lambda: invalid_event(lambda r: r.update(type="Delisted")),
        "NUL in a name": lambda: invalid_event(nul_in(rng.choice(["court_name", "entry_id", "obligation"]))),
        "feedback on the court topic": lambda: codec.encode_event(parse_event(feedback_sample("SanctionApplied"))),
        "checkpoint on the court topic": lambda: codec.encode(
            "Checkpoint", {"ledger": "x", "row_count": 1, "head_hash": "0" * 64, "created_at": "2026-01-01T00:00:00Z"}
        ),
    }
    out = []
    for kind, make in makers.items():
        for i in range(8):
            headers = [("poison-kind", kind.encode())]
            if i % 4 == 0:
                headers.append(("note", b"nul \x00 and \xff\xfe bytes"))  # header values are bytes, not text
            out.append((rng.choice([*keys, None]), make(), headers))
    rng.shuffle(out)
    return out


def test_poison_records_among_good_events_all_land_in_the_dead_letter_topic_and_no_service_crashes(
    hub_settings: Settings, tmp_path: Path
):
    """One broken producer must not stop the agencies: its records are set aside, with their bytes, and work goes on."""
    good = simulated(400, seed=61)
    rng = random.Random(61)
    poison = poison_records(rng, good)
    assert len(poison) >= 100
    topic = hub_settings.topic(COURT_EVENTS)
    services = {
        s: ServiceProcess(hub_settings, s, tmp_path, HUB_BATCH_SIZE="25", HUB_INSTANCE_ID=f"{s}-1")
        for s in ("bank", "ledger")
    }
    producer = Producer({**security(hub_settings, court_principal("J0105")), "partitioner": "murmur2_random"})
    positions: dict[tuple[int, int], tuple[bytes | None, bytes | None]] = {}

    def delivered(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        positions[(msg.partition(), msg.offset())] = (msg.key(), msg.value())

    progress, offsets = Progress(hub_settings), Offsets(hub_settings)
    try:
        with running(services.values()):
            for service in services.values():
                service.start()
            for n in range(4):  # good events and poison, interleaved, while both services run
                publish(hub_settings, good[n * len(good) // 4 : (n + 1) * len(good) // 4])
                for key, value, headers in poison[n * len(poison) // 4 : (n + 1) * len(poison) // 4]:
                    producer.produce(topic, key=key, value=value, headers=headers, on_delivery=delivered)
                assert producer.flush(30) == 0
                time.sleep(0.5)
            assert len(positions) == len(poison)
            total = len(good) + len(poison)
            wait_until(
                lambda: progress.applied("bank") == total and progress.unsent("bank") == 0,
                300,
                lambda: f"bank at {progress.applied('bank')} of {total}:\n{services['bank'].tail()}",
            )
            ledger_input = [topic, hub_settings.topic(feedback_topic("bank"))]
            wait_until(
                lambda: progress.applied("ledger") == offsets.total(ledger_input),
                300,
                lambda: f"ledger at {progress.applied('ledger')} of {offsets.total(ledger_input)}",
            )
            for name, service in services.items():
                assert service.stop() == 0, f"{name} did not stop cleanly:\n{service.tail()}"
        for name, service in services.items():
            assert service.run_once() == 0, f"{name} --once failed:\n{service.tail()}"
    finally:
        progress.close()
        offsets.close()

    dead = dead_letters(hub_settings)
    for name in services:
        mine = [r for r in dead if dict(r.headers).get("dlq-service") == name.encode()]
        where = [
            (int(dict(r.headers)["dlq-source-partition"]), int(dict(r.headers)["dlq-source-offset"])) for r in mine
        ]
        assert sorted(where) == sorted(positions), f"{name}: dead letters at other positions than the poison"
        for r in mine:
            headers = dict(r.headers)
            key, value = positions[(int(headers["dlq-source-partition"]), int(headers["dlq-source-offset"]))]
            assert (r.key, r.value or b"") == (key, value or b""), "the original key and bytes are kept"
            assert headers["dlq-source-topic"].decode() == topic
            assert headers["dlq-error-kind"] in (b"decode", b"validation") and headers["dlq-reason"]
            assert headers["poison-kind"], "the original headers are kept"
    assert len(dead) == len(services) * len(poison)
    expected = expected_states(hub_settings, good, ["bank"])
    assert_agency_matches(hub_settings, "bank", expected["bank"], len(good))
    assert_ledger_holds_each_event_once(hub_settings, ["bank"])
