"""`hub demo`: the walk-through behind `make demo`."""

from __future__ import annotations

import json
from pathlib import Path

from hub.cli.common import console, settings
from hub.codec import default_codec
from hub.readback import end_offsets, read_range
from hub.topics import COURT_EVENTS, create_topics
from producers.parsing import read_events_file
from producers.publisher import CourtPublisher

EXAMPLES = Path(__file__).resolve().parents[2] / "producers" / "examples" / "court-events.jsonl"


def demo() -> None:
    """Publish one event of every court type and read them back decoded from the broker."""
    cfg = settings()
    create_topics(cfg)
    topic = cfg.topic(COURT_EVENTS)
    before = end_offsets(cfg, topic)
    events = read_events_file(EXAMPLES).events
    report = CourtPublisher(cfg).publish(events)
    console.print(f"published {report.published} court events to {topic} ({report.rate:,.0f}/s)")
    if not report.ok:
        raise SystemExit(f"delivery failed: {report.failures}")
    codec = default_codec()
    console.print("read back from the broker, decoded:")
    for record in read_range(cfg, topic, start=before):
        event = codec.decode_event(record.value, family="court")
        line = json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
        console.print(f"[dim]p{record.partition}@{record.offset}[/] {event.event_type:<20} {line}", soft_wrap=True)
