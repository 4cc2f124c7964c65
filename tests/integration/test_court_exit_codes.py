"""`hub court publish` against the real broker: exit codes a scheduler can trust, and a file's repeats.

0 everything published; 1 invalid input, nothing published (an event id reused with other content, a file
with no events); 4 --skip-invalid published the valid records and rejected some.
"""

import csv
import json

from hub.codec import default_codec
from hub.readback import end_offsets, read_range
from hub.topics import COURT_EVENTS
from producers.parsing import CSV_COLUMNS
from producers.simulator import SimulationConfig, simulate
from tests.support import run_hub


def _lines(records):
    return [json.dumps(r, ensure_ascii=False) for r in records]


def _published(settings) -> int:
    return sum(end_offsets(settings, settings.topic(COURT_EVENTS)).values())


def test_a_line_repeated_verbatim_is_published_once_and_exits_0(hub_settings, tmp_path):
    records = simulate(SimulationConfig(debtors=20, seed=61, breach_rate=0.0)).events
    lines = _lines(records)
    path = tmp_path / "court.jsonl"
    # Line 4 twice more, verbatim: an export that repeated itself.
    path.write_text("\n".join([*lines[:10], lines[3], *lines[10:], lines[3]]) + "\n", encoding="utf-8")

    result = run_hub(hub_settings, "court", "publish", str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 duplicate lines skipped" in result.stdout
    assert f"published {len(records)} events" in result.stdout
    assert _published(hub_settings) == len(records)
    got = [
        default_codec().decode_event(r.value, family="court").event_id
        for r in read_range(hub_settings, hub_settings.topic(COURT_EVENTS))
    ]
    assert sorted(got) == sorted(r["event_id"] for r in records), "every distinct event exactly once"


def test_one_repeated_line_is_reported_in_the_singular(hub_settings, tmp_path):
    records = simulate(SimulationConfig(debtors=5, seed=62, breach_rate=0.0)).events
    lines = _lines(records)
    path = tmp_path / "court.jsonl"
    path.write_text("\n".join([*lines, lines[0]]) + "\n", encoding="utf-8")

    result = run_hub(hub_settings, "court", "publish", "--dry-run", str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 duplicate line skipped" in result.stdout
    assert _published(hub_settings) == 0


def test_an_event_id_reused_with_other_content_exits_1_naming_both_lines_and_publishes_nothing(hub_settings, tmp_path):
    records = simulate(SimulationConfig(debtors=20, seed=63, breach_rate=0.0)).events
    original = next(r for r in records[2:] if r["type"] == "Included")
    first = records.index(original) + 1
    changed = {**original, "obligation": original["obligation"] + "（更正）"}
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(_lines([*records, changed])) + "\n", encoding="utf-8")
    again = len(records) + 1

    result = run_hub(hub_settings, "court", "publish", str(path))

    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        f"{path}:{again}: event_id: {original['event_id']} is used again with different content "
        f"(first on line {first}): an event id names one court act"
    ) in result.stderr
    assert f"1 of {again} records invalid; nothing published" in result.stderr
    assert "published" not in result.stdout
    assert _published(hub_settings) == 0


def test_an_empty_file_exits_1_unless_allowed(hub_settings, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n   \n\n", encoding="utf-8")
    for path in (empty, blank):
        for dry_run in ((), ("--dry-run",)):
            refused = run_hub(hub_settings, "court", "publish", *dry_run, str(path))
            assert refused.returncode == 1, (path, dry_run, refused.stdout + refused.stderr)
            assert "no events in the file" in refused.stderr and "--allow-empty" in refused.stderr

            allowed = run_hub(hub_settings, "court", "publish", *dry_run, "--allow-empty", str(path))
            assert allowed.returncode == 0, (path, dry_run, allowed.stdout + allowed.stderr)
            assert "nothing published" in allowed.stdout
    assert _published(hub_settings) == 0


def test_a_csv_with_only_its_header_exits_1(hub_settings, tmp_path):
    path = tmp_path / "header.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow(CSV_COLUMNS)

    result = run_hub(hub_settings, "court", "publish", str(path))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "no events in the file" in result.stderr
    assert run_hub(hub_settings, "court", "publish", "--allow-empty", str(path)).returncode == 0
    assert _published(hub_settings) == 0


def test_skip_invalid_with_one_bad_record_exits_4_and_publishes_the_others(hub_settings, tmp_path):
    records = simulate(SimulationConfig(debtors=30, seed=64, breach_rate=0.0)).events
    records[5] = {**records[5], "type": "Delisted"}
    path = tmp_path / "court.jsonl"
    path.write_text("\n".join(_lines(records)) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"

    dry = run_hub(hub_settings, "court", "publish", "--dry-run", "--skip-invalid", str(rejects), str(path))
    assert dry.returncode == 4, dry.stdout + dry.stderr
    assert _published(hub_settings) == 0

    result = run_hub(hub_settings, "court", "publish", "--skip-invalid", str(rejects), str(path))

    assert result.returncode == 4, result.stdout + result.stderr
    assert f"{path}:6: type: unknown event type 'Delisted'" in result.stderr
    assert f"published {len(records) - 1} events" in result.stdout
    assert [json.loads(line)["line"] for line in rejects.read_text(encoding="utf-8").splitlines()] == [6]
    assert _published(hub_settings) == len(records) - 1
