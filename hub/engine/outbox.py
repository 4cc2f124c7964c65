"""The transactional outbox: effects and the messages they cause are committed together, and a relay
delivers the messages afterwards with the idempotent producer.

One relay delivers at a time (an advisory lock held through its transaction): the workers of a service
and a one-off `hub agency check` share one outbox, and two relays sending side by side could put an
entry's lift on the topic before its application, which every reader folds in topic order. Rows are
deleted only after their delivery report, so a crash between delivery and deletion re-sends a row with
the same event id, which readers deduplicate. Every row in the table is pending.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Producer
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from hub.clients import is_fatal, produce
from hub.db import copy_rows
from hub.engine import metrics
from hub.log import get_logger

RELAY_LOCK = 0x6875_6252  # per database: one relay delivers a given outbox at a time


@dataclass(frozen=True)
class OutboxMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, str]]
    event_id: str | None


def add(conn: Connection, messages: Iterable[OutboxMessage]) -> int:
    """COPY the batch in, in order (the relay sends by id)."""
    rows = [(m.topic, m.key, m.value, json.dumps(m.headers), m.event_id) for m in messages]
    if rows:
        copy_rows(conn, "outbox", ("topic", "key", "value", "headers", "event_id"), rows)
    return len(rows)


def _worn_out(error: KafkaError) -> bool:
    """A fatal error, or records that timed out: after a broker restart an idempotent producer can stay unable to
    deliver while a new one delivers at once. Rows stay pending either way; a record that did arrive twice
    carries the same event id, which consumers deduplicate."""
    return is_fatal(error) or error.code() == KafkaError._MSG_TIMED_OUT


class OutboxRelay:
    def __init__(
        self,
        db: Engine,
        producer: Producer,
        service: str,
        batch: int = 5000,
        delivery_timeout: float = 130.0,
        renew: Callable[[], Producer] | None = None,
    ):
        self.db = db
        self.producer = producer
        self.renew = renew
        self.service = service
        self.batch = batch
        self.delivery_timeout = delivery_timeout
        self.log = get_logger("hub.outbox").bind(service=service)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.sent: Counter[str] = Counter()  # rows delivered by this relay, per topic (the run summary)

    def publish_pending(self) -> int:
        """Deliver one batch of unsent rows, oldest first; returns how many were delivered (0 as well while
        another relay is delivering: its next batch takes ours)."""
        with self.db.begin() as conn:
            if not conn.execute(text("select pg_try_advisory_xact_lock(:key)"), {"key": RELAY_LOCK}).scalar_one():
                return 0
            rows = conn.execute(
                text("select id, topic, key, value, headers from outbox order by id limit :limit"),
                {"limit": self.batch},
            ).all()
            if not rows:
                return 0
            delivered: list[int] = []
            errors: list[tuple[int, KafkaError]] = []

            def report(err: KafkaError | None, _msg, row_id: int) -> None:
                (errors.append((row_id, err)) if err else delivered.append(row_id))

            for row in rows:
                produce(
                    self.producer,
                    row.topic,
                    key=row.key,
                    value=row.value,
                    headers=[(k, v.encode()) for k, v in row.headers],
                    on_delivery=lambda err, msg, rid=row.id: report(err, msg, rid),
                )
            self.producer.flush(self.delivery_timeout)
            if delivered:
                conn.execute(text("delete from outbox where id = any(:ids)"), {"ids": delivered})
                sent = set(delivered)
                for topic, count in Counter(r.topic for r in rows if r.id in sent).items():
                    metrics.FEEDBACK_PUBLISHED.labels(self.service, topic).inc(count)
                    self.sent[topic] += count
            if errors:
                self.failures += 1
                self.log.error(
                    "outbox delivery failed; rows stay pending and are retried",
                    failed=len(errors),
                    first_error=errors[0][1].str(),
                    first_row=errors[0][0],
                )
                if self.renew is not None and any(_worn_out(err) for _, err in errors):
                    self.log.warning("the producer is replaced by a new one", error=errors[0][1].str())
                    self.producer = self.renew()
        return len(delivered)

    def pending(self) -> int:
        with self.db.connect() as conn:
            count = conn.execute(text("select count(*) from outbox")).scalar_one()
        metrics.OUTBOX_PENDING.labels(self.service).set(count)
        return count

    def drain(self, timeout: float) -> bool:
        """Deliver until nothing is pending; False if rows are still pending after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.publish_pending() == 0:
                    if self.pending() == 0:
                        return True
                    time.sleep(0.2)  # another relay holds the outbox
            except DBAPIError as exc:
                self.log.warning("outbox drain waiting for the database", error=str(exc.orig))
                time.sleep(1.0)
            if self.failures:
                time.sleep(1.0)
        return self.pending() == 0

    # -- background delivery while a service runs ------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"outbox-relay-{self.service}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                sent = self.publish_pending()
                backoff = 0.5
            except Exception as exc:  # the relay thread must never end silently while the service consumes on
                if isinstance(exc, DBAPIError):
                    self.log.warning("outbox relay waiting for the database", error=str(exc.orig), retry_in=backoff)
                else:
                    self.failures += 1
                    self.log.exception("outbox relay failed; retrying", error=str(exc), retry_in=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if sent == 0:
                self._wake.wait(1.0)
                self._wake.clear()
