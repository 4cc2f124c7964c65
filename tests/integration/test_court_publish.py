"""`hub court publish` and `simulate` against the real broker: all or nothing, keyed, in order."""

import json
import re
import time

from hub.codec import default_codec
from hub.readback import end_offsets, read_range
from hub.topics import COURT_EVENTS
from producers.simulator import SimulationConfig, simulate
from tests.support import run_hub


def _write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def test_published_file_arrives_complete_keyed_and_in_order_per_debtor(hub_settings, tmp_path):
    records = simulate(SimulationConfig(debtors=600, seed=7, breach_rate=0.05)).events
    path = tmp_path / "court.jsonl"
    _write(path, records)
    result = run_hub(hub_settings, "court", "publish", str(path))
    assert result.returncode == 0, result.stderr
    assert re.search(
        rf"published {len(records)} events to {re.escape(hub_settings.topic(COURT_EVENTS))}", result.stdout
    )

    codec = default_codec()
    partition_of: dict[str, int] = {}
    consumed: dict[str, list[str]] = {}
    for record in read_range(hub_settings, hub_settings.topic(COURT_EVENTS)):
        event = codec.decode_event(record.value, family="court")
        debtor = event.debtor.id_number
        assert record.key == debtor.encode()
        assert partition_of.setdefault(debtor, record.partition) == record.partition, "one partition per debtor"
        consumed.setdefault(debtor, []).append(event.event_id)
    expected: dict[str, list[str]] = {}
    for r in records:
        expected.setdefault(r["debtor"]["id_number"], []).append(r["event_id"])
    assert consumed == expected


def test_three_bad_lines_publish_nothing_and_are_named(hub_settings, tmp_path):
    records = simulate(SimulationConfig(debtors=400, seed=1, breach_rate=0.0)).events[:1000]
    number = records[9]["debtor"]["id_number"]
    records[9]["debtor"]["id_number"] = number[:-1] + ("0" if number[-1] != "0" else "1")
    records[409]["occurred_at"] = records[409]["occurred_at"][:19]
    records[809]["type"] = "Delisted"
    path = tmp_path / "broken.jsonl"
    _write(path, records)
    topic = hub_settings.topic(COURT_EVENTS)
    before = end_offsets(hub_settings, topic)

    result = run_hub(hub_settings, "court", "publish", str(path))
    assert result.returncode == 1
    assert f"{path}:10: debtor.id_number: " in result.stderr
    assert f"{path}:410: occurred_at: " in result.stderr
    assert f"{path}:810: type: unknown event type 'Delisted'" in result.stderr
    assert "3 of 1000 records invalid; nothing published" in result.stderr
    assert end_offsets(hub_settings, topic) == before


def test_skip_invalid_publishes_the_rest_and_writes_rejects(hub_settings, tmp_path):
    records = simulate(SimulationConfig(debtors=30, seed=2, breach_rate=0.0)).events
    records[3]["disclosure"] = "SECRET"
    records[3]["type"] = "Included"
    path = tmp_path / "court.jsonl"
    rejects = tmp_path / "rejects.jsonl"
    _write(path, records)
    result = run_hub(hub_settings, "court", "publish", str(path), "--skip-invalid", str(rejects))
    assert result.returncode == 4, result.stderr  # published the rest, but not everything: its own exit code
    assert f"published {len(records) - 1} events" in result.stdout
    rejected = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rejected] == [4]
    assert any(p.startswith("disclosure: ") for p in rejected[0]["problems"])
    assert sum(end_offsets(hub_settings, hub_settings.topic(COURT_EVENTS)).values()) == len(records) - 1


def test_dry_run_publishes_nothing(hub_settings, tmp_path):
    path = tmp_path / "court.jsonl"
    _write(path, simulate(SimulationConfig(debtors=10, seed=3)).events)
    result = run_hub(hub_settings, "court", "publish", str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run, nothing published" in result.stdout
    assert sum(end_offsets(hub_settings, hub_settings.topic(COURT_EVENTS)).values()) == 0


def test_a_missing_topic_is_named_before_anything_is_sent(hub_settings, tmp_path):
    path = tmp_path / "court.jsonl"
    _write(path, simulate(SimulationConfig(debtors=3, seed=4)).events)
    # A namespace whose topics were never created (auto-creation is off): said at once, not after timeouts.
    started = time.monotonic()
    result = run_hub(hub_settings, "court", "publish", str(path), HUB_NAMESPACE="nowhere_")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "topic nowhere.court.list-events does not exist" in result.stderr
    assert "hub topics create" in result.stderr and "nothing was published" in result.stderr
    assert "Traceback" not in result.stderr and time.monotonic() - started < 30


def test_simulate_publish_equals_publishing_the_file(hub_settings, tmp_path):
    result = run_hub(hub_settings, "court", "simulate", "--debtors", "50", "--seed", "5", "--publish")
    assert result.returncode == 0, result.stderr
    expected = [r["event_id"] for r in simulate(SimulationConfig(debtors=50, seed=5)).events]
    got = [
        default_codec().decode_event(r.value).event_id
        for r in read_range(hub_settings, hub_settings.topic(COURT_EVENTS))
    ]
    assert sorted(got) == sorted(expected)
