"""The court publisher: every event on `court.list-events`, keyed by debtor, or a clear account of why not."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message, Producer

from hub.clients import idempotent_producer, produce
from hub.codec import Codec, default_codec, event_headers
from hub.config import Settings
from hub.domain.events import CourtEvent, EventValidationError, dated_in_future
from hub.topics import COURT_EVENTS


@dataclass(frozen=True)
class Outgoing:
    """An event encoded and ready to send: validation and encoding are done before anything is sent."""

    event_id: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class PublishReport:
    published: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


class CourtPublisher:
    """Idempotent, acks=all, keyed by the debtor's ID number so that one debtor's events stay in order.

    Embed it in a court case system: `CourtPublisher(get_settings()).publish(events)`.
    """

    def __init__(
        self,
        settings: Settings,
        codec: Codec | None = None,
        producer: Producer | None = None,
        *,
        history: bool = False,
    ):
        """`history=True` loads past events as a historical import: marked so, and exempt from the ledger's
        publication-time rules (loading years of records is not publishing them late)."""
        self.settings = settings
        self.codec = codec or default_codec()
        self.topic = settings.topic(COURT_EVENTS)
        self.producer = producer or idempotent_producer(settings)
        self.history = history
        self.tolerance = dt.timedelta(seconds=settings.clock_tolerance_seconds)

    def prepare(self, event: CourtEvent) -> Outgoing:
        """Encode an event for sending; raises EventValidationError for one dated after now (beyond the clock
        tolerance), which every service would dead-letter."""
        future = dated_in_future(event, dt.datetime.now(dt.UTC), self.tolerance)
        if future is not None:
            raise EventValidationError([future])
        return Outgoing(
            event.event_id,
            event.debtor.id_number.encode(),
            self.codec.encode_event(event),
            event_headers(event, self.history),
        )

    def publish(
        self, events: Iterable[CourtEvent], progress: Callable[[int], None] | None = None, timeout: float = 120.0
    ) -> PublishReport:
        return self.send((self.prepare(e) for e in events), progress, timeout)

    def send(
        self, records: Iterable[Outgoing], progress: Callable[[int], None] | None = None, timeout: float = 120.0
    ) -> PublishReport:
        """Send every record and wait for every delivery report; failures are returned, never swallowed."""
        report = PublishReport()
        started = time.perf_counter()

        def delivered(err: KafkaError | None, _msg: Message, event_id: str) -> None:
            if err is None:
                report.published += 1
                if progress:
                    progress(1)
            else:
                report.failures.append((event_id, err.str()))

        for record in records:
            produce(
                self.producer,
                self.topic,
                key=record.key,
                value=record.value,
                headers=record.headers,
                on_delivery=lambda err, msg, eid=record.event_id: delivered(err, msg, eid),
            )
            self.producer.poll(0)
        remaining = self.producer.flush(timeout)
        if remaining:
            report.failures.append(("-", f"{remaining} deliveries unconfirmed after {timeout:.0f}s"))
        report.seconds = time.perf_counter() - started
        return report
