"""`--metrics-port`: every documented metric has a value from the first scrape, and each moves with the traffic; a
port the service cannot listen on is a one-line error."""

from __future__ import annotations

import datetime as dt
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from consumers import load_policy
from hub.acl import court_principal
from hub.clients import security
from hub.config import Settings
from hub.domain.sanctions import replay
from hub.topics import COURT_EVENTS, DEAD_LETTER, feedback_topic
from tests.integration.helpers import WORKERS, free_ports, publish, simulated
from tests.support import hub_env, run_hub

HUB = str(Path(sys.executable).parent / "hub")
AGENCY = "bank"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape_one(port: int) -> Samples | None:
    """Every sample one process serves, or None while nothing listens yet."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def scrape(port: int) -> Samples | None:
    """The service's samples across its workers (worker i serves port+i), as a dashboard sums them: counts and
    per-partition lags (each partition is one worker's) add up; the pending outbox, which every worker counts in
    the one table, is the same in each. None until every worker listens."""
    parts = [scrape_one(port + i) for i in range(WORKERS)]
    if any(part is None for part in parts):
        return None
    total: Samples = {}
    for part in parts:
        for key, v in (part or {}).items():
            total[key] = max(total.get(key, v), v) if key[0] == "hub_outbox_pending" else total.get(key, 0) + v
    return total


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset({"service": AGENCY, **labels}.items())))


def documented(settings: Settings) -> list[tuple[str, dict[str, str]]]:
    """The series an agency has from its start (/tmp/notes-metrics.md), but the lag, which comes with assignment."""
    court = settings.topic(COURT_EVENTS)
    return [
        ("hub_records_consumed_total", {"topic": court}),
        ("hub_dead_lettered_total", {"topic": court}),
        ("hub_effects_applied_total", {}),
        ("hub_duplicates_skipped_total", {}),
        ("hub_outbox_published_total", {"topic": settings.topic(feedback_topic(AGENCY))}),
        ("hub_outbox_published_total", {"topic": settings.topic(DEAD_LETTER)}),
        ("hub_outbox_pending", {}),
        ("hub_batch_duration_seconds_count", {}),
        ("hub_batch_duration_seconds_sum", {}),
        ("hub_batch_duration_seconds_bucket", {"le": "+Inf"}),
        ("hub_record_age_seconds_count", {"topic": court}),
        ("hub_record_age_seconds_sum", {"topic": court}),
        ("hub_record_age_seconds_bucket", {"topic": court, "le": "+Inf"}),
    ]


def lags(samples: Samples, topic: str) -> dict[int, float]:
    out = {}
    for (name, labels), v in samples.items():
        found = dict(labels)
        if name == "hub_consumer_lag" and found.get("service") == AGENCY and found.get("topic") == topic:
            out[int(found["partition"])] = v
    return out


def wait_for(what, timeout: float, describe):
    deadline = time.monotonic() + timeout
    while True:
        result = what()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {describe()}")
        time.sleep(0.2)


def publish_poison(settings: Settings, count: int) -> None:
    """Records no agency can decode, as a broken court system could write them."""
    producer = Producer({**security(settings, court_principal("J0105")), "partitioner": "murmur2_random"})
    for n in range(count):
        producer.produce(settings.topic(COURT_EVENTS), key=f"poison-{n}".encode(), value=b"\x00not avro")
    assert producer.flush(30) == 0


def test_every_metric_has_a_value_from_the_first_scrape_and_moves_with_traffic(hub_settings: Settings, tmp_path):
    """A dashboard or an alert over a series that appears only once something happened sees nothing at first,
    and a rate over it is missing instead of 0."""
    port = free_ports()
    court = hub_settings.topic(COURT_EVENTS)
    events = simulated(150, seed=13)
    expected = replay(load_policy(AGENCY, hub_settings), events, dt.datetime.now(dt.UTC))
    log = tmp_path / "bank.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [HUB, "agency", "run", AGENCY, "--metrics-port", str(port)],
            env=hub_env(hub_settings),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    tail = lambda: log.read_text(errors="replace")[-3000:]  # noqa: E731
    try:
        first = wait_for(
            lambda: proc.poll() is None and scrape(port), 90, lambda: f"no metrics (exit {proc.poll()}):\n{tail()}"
        )
        missing = [(n, labels) for n, labels in documented(hub_settings) if value(first, n, **labels) is None]
        assert not missing, f"not in the first scrape: {missing}"
        assert all(value(first, n, **labels) == 0 for n, labels in documented(hub_settings)), first
        # The lag comes with the assignment: one series per partition, 0 on the empty topic.
        at_start = wait_for(
            lambda: (s := scrape(port)) and len(lags(s, court)) == hub_settings.partitions and s,
            60,
            lambda: f"lag of {sorted(lags(scrape(port) or {}, court))}:\n{tail()}",
        )
        assert set(lags(at_start, court).values()) == {0}

        publish(hub_settings, events)
        publish(hub_settings, events)  # the same event ids again: duplicates, no effect
        poison = 3
        publish_poison(hub_settings, poison)
        total = 2 * len(events) + poison
        feedback = hub_settings.topic(feedback_topic(AGENCY))

        def settled() -> dict | None:
            s = scrape(port)
            done = (
                s
                and value(s, "hub_records_consumed_total", topic=court) == total
                and value(s, "hub_outbox_pending") == 0
                and value(s, "hub_outbox_published_total", topic=feedback) == len(expected.feedback)
                and value(s, "hub_outbox_published_total", topic=hub_settings.topic(DEAD_LETTER)) == poison
                and set(lags(s, court).values()) == {0}
            )
            return s if done else None

        after = wait_for(settled, 120, lambda: f"{ {k: v for k, v in (scrape(port) or {}).items() if 'hub_' in k[0]} }")
        assert value(after, "hub_effects_applied_total") == len(events)
        assert value(after, "hub_duplicates_skipped_total") == len(events)
        assert value(after, "hub_dead_lettered_total", topic=court) == poison
        assert len(lags(after, court)) == hub_settings.partitions
        batches = value(after, "hub_batch_duration_seconds_count")
        assert batches and batches >= 1
        assert (value(after, "hub_batch_duration_seconds_sum") or 0) > 0
        assert value(after, "hub_record_age_seconds_count", topic=court) == total
        assert value(after, "hub_record_age_seconds_bucket", topic=court, le="+Inf") == total
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    assert code == 0, tail()
    # At the end the service says what it did, in one line.
    assert f"{AGENCY}: read {total} events: " in log.read_text(), tail()


def test_a_metrics_port_in_use_or_out_of_range_is_a_one_line_error_without_a_traceback(hub_settings: Settings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_hub(hub_settings, "agency", "run", AGENCY, "--metrics-port", str(port), timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --metrics-port {port}: the port is in use on 127.0.0.1"], result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout

    for bad in ("70000", "0"):  # refused by the option itself or by the engine (ConsumerEngine checks it too)
        result = run_hub(hub_settings, "agency", "run", AGENCY, "--metrics-port", bad, timeout=120)
        assert result.returncode == 2, result.stderr[-3000:]
        assert "--metrics-port" in result.stderr, result.stderr[-3000:]
        assert "Traceback" not in result.stderr + result.stdout
