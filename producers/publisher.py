"""The court publisher: every event on `court.list-events`, keyed by debtor, or a clear account of why not."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from hub.acl import court_principal
from hub.clients import idempotent_producer, produce
from hub.codec import Codec, default_codec, event_headers
from hub.config import Settings
from hub.domain.events import CourtEvent, EventValidationError, dated_in_future
from hub.errors import Unavailable
from hub.topics import COURT_EVENTS


@dataclass(frozen=True)
class Outgoing:
    """An event encoded and ready to send: validation and encoding are done before anything is sent."""

    event_id: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    court_code: str = ""  # whose act it is: the court's own principal publishes it


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

    Embed it in a court case system: `CourtPublisher(get_settings()).publish(events)`. It connects as the
    court's own principal: HUB_KAFKA_USERNAME where set (a court system's own), else, on the local stack,
    `court-<code>` of the first event it sends. One producer sends everything, so that a debtor's events keep
    their order even when a file holds several courts' acts (a simulation, a higher court's export).
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
        self._producer = producer
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
            event.court_code,
        )

    def queued(self) -> int:
        """Records handed to the producer and not yet delivered (they wait while the broker is away)."""
        return len(self._producer) if self._producer is not None else 0

    def producer_for(self, court_code: str) -> Producer:
        """The publisher's producer, made on first use as the principal of `court_code`'s court."""
        if self._producer is None:
            self._producer = idempotent_producer(self.settings, court_principal(court_code))
        return self._producer

    def check_ready(self, court_code: str) -> None:
        """The broker answers and the topic exists, or hub.errors.Unavailable says which is missing: what a
        person handing over a file wants to know before anything is sent (`hub court publish`), rather than
        every record timed out after HUB_DELIVERY_TIMEOUT_MS. A case system embedding the publisher may skip
        it: then records wait in the producer through a broker's restart."""
        producer = self.producer_for(court_code)
        where = self.settings.bootstrap()
        try:
            metadata = producer.list_topics(self.topic, timeout=self.settings.connect_timeout_seconds)
        except KafkaException as exc:
            said = exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else str(exc)
            raise Unavailable(
                f"Kafka at {where} is not answering ({said}); start it with `hub dev up`, or set HUB_KAFKA_BOOTSTRAP; "
                "nothing was published"
            ) from None
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None:
            raise Unavailable(
                f"topic {self.topic} does not exist on Kafka at {where}: create the topics with `hub topics create`; "
                "nothing was published"
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

        producer = None
        for record in records:
            producer = self.producer_for(record.court_code)
            produce(
                producer,
                self.topic,
                key=record.key,
                value=record.value,
                headers=record.headers,
                on_delivery=lambda err, msg, eid=record.event_id: delivered(err, msg, eid),
            )
            producer.poll(0)
        remaining = producer.flush(timeout) if producer is not None else 0
        if remaining:
            report.failures.append(("-", f"{remaining} deliveries unconfirmed after {timeout:.0f}s"))
        report.seconds = time.perf_counter() - started
        return report
