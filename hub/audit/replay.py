"""`hub audit replay`: what was in force, and what the hub knew, rebuilt from the topics alone (DESIGN §9)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.clients import admin
from hub.codec import Codec, CodecError, default_codec
from hub.config import Settings
from hub.domain.events import EventValidationError
from hub.domain.history import Recorded, agency_sanctions, digest, entry_states
from hub.ledger.service import feedback_subscription
from hub.readback import end_offsets, read_range
from hub.topics import CHECKPOINTS, COURT_EVENTS


@dataclass
class TopicHistory:
    """Everything decodable on the hub's topics, with broker timestamps; what was not decodable, counted."""

    court: list[Recorded] = field(default_factory=list)
    feedback: list[Recorded] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    undecodable: int = 0
    records: int = 0

    @property
    def latest(self) -> dt.datetime | None:
        return max((r.recorded_at for r in (*self.court, *self.feedback)), default=None)


def feedback_topics(settings: Settings) -> list[str]:
    pattern = re.compile(feedback_subscription(settings))
    return sorted(t for t in admin(settings).list_topics(timeout=15).topics if pattern.match(t))


def read_history(
    settings: Settings, codec: Codec | None = None, progress: Callable[[int | None, int], None] | None = None
) -> TopicHistory:
    """Read every topic from offset 0 to its current end. `progress(total, done)` is told as it goes."""
    codec = codec or default_codec()
    sources = [(settings.topic(COURT_EVENTS), "court")] + [(t, "feedback") for t in feedback_topics(settings)]
    ends = {topic: end_offsets(settings, topic) for topic, _family in sources}
    total = sum(sum(e.values()) for e in ends.values())
    history = TopicHistory()
    position = 0
    for topic, family in sources:
        target = history.court if family == "court" else history.feedback
        for record in read_range(settings, topic, end=ends[topic]):
            history.records += 1
            position += 1
            if progress and position % 5000 == 0:
                progress(total, position)
            try:
                event = codec.decode_event(record.value, family)
            except (CodecError, EventValidationError):
                history.undecodable += 1
                continue
            target.append(Recorded(event, dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC), position))
    if progress:
        progress(total, position)
    for record in read_range(settings, settings.topic(CHECKPOINTS)):
        try:
            name, checkpoint = codec.decode(record.value)
        except CodecError:
            history.undecodable += 1
            continue
        if name == "Checkpoint":
            history.checkpoints.append(checkpoint)
    return history


def reconstruct(history: TopicHistory, as_of: dt.datetime, known_at: dt.datetime) -> dict[str, Any]:
    """The canonical result and its SHA-256 digest: the same topics and times give the same digest."""
    result: dict[str, Any] = {
        "as_of": as_of.astimezone(dt.UTC).isoformat(),
        "known_at": known_at.astimezone(dt.UTC).isoformat(),
        "entries": entry_states(history.court, as_of, known_at),
        "sanctions": agency_sanctions(history.feedback, as_of, known_at),
    }
    result["digest"] = digest(result)
    return result


def replay(
    settings: Settings,
    as_of: dt.datetime | None = None,
    known_at: dt.datetime | None = None,
    progress: Callable[[int | None, int], None] | None = None,
) -> tuple[dict[str, Any], TopicHistory]:
    """Defaults: known_at is the time of the latest record on the topics, as_of is known_at, so that
    replaying unchanged topics twice gives the same digest."""
    history = read_history(settings, progress=progress)
    known_at = known_at or history.latest or dt.datetime.fromtimestamp(0, dt.UTC)
    return reconstruct(history, as_of or known_at, known_at), history
