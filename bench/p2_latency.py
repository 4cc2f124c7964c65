"""P2 end-to-end latency: court events at a steady rate, with the four agencies and the ledger running.

The latency of court event X is the time the ledger stored the last of the four agencies' feedback answering
X, minus X's broker timestamp (LogAppendTime: when the court's publication took effect). Both clocks are
this machine's: the broker stamps records, PostgreSQL stamps the ledger's transactions. The ledger's store
time is its engine's `processed_events.processed_at` (the storing transaction's start), or the transaction's
commit time when the server tracks commit timestamps (`track_commit_timestamp = on`).

Court events answered by every agency are measured: inclusions, and shieldings or revocations of an entry
every agency applied. Events published during a short warm-up, at the same rate, are not counted. Then a
bulk import at a tenfold rate (5,000 events/s) for a short while, measured the same way.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import KafkaError, Message

from bench import data
from bench.common import (
    HUB,
    Measured,
    Namespaces,
    Section,
    Sizes,
    Target,
    hub_env,
    libpq_url,
    percentile,
    say,
    step,
    wait_until,
)
from hub.clients import produce
from hub.config import Settings
from hub.readback import end_offsets
from hub.topics import COURT_EVENTS, feedback_topic
from producers.publisher import CourtPublisher

_LATENCY = """
select c.event_id::text as event_id, c.event_type, c.recorded_at,
       count(distinct f.agency) as agencies, max(pe.processed_at) as stored_at,
       max(f.recorded_at) as last_feedback_at{commit}
from ledger_events c
join ledger_events f on f.family = 'feedback' and f.court_event_id = c.event_id::text
join processed_events pe on pe.event_id = f.event_id
where c.family = 'court'
group by 1, 2, 3
"""


def _start_services(settings: Settings, logs: Path) -> dict[str, Measured]:
    env = hub_env(settings)
    services = {
        # One worker each: five services share this machine's two cores, where a second worker per agency only
        # adds processes contending for them (each agency has a machine of its own in production).
        name: Measured([str(HUB), "agency", "run", name, "--workers", "1"], env, logs / f"p2-{name}.log")
        for name in settings.agencies
    }
    services["ledger"] = Measured([str(HUB), "ledger", "run"], env, logs / "p2-ledger.log")
    return services


def _ready(settings: Settings, services: dict[str, Measured]) -> bool:
    """Every service has its partitions (the ledger those of the court topic and every feedback topic)."""
    for name, service in services.items():
        if not service.running():
            raise RuntimeError(f"{name} exited while starting:\n{service.wait(1).tail()}")
        text = service.log.read_text(errors="replace")
        if "partitions assigned" not in text:
            return False
        if name == "ledger" and not all(settings.topic(feedback_topic(a)) in text for a in settings.agencies):
            return False
    return True


def _paced_publish(settings: Settings, records: list, rate: float, warmup: int) -> dict[str, Any]:
    """Send at a steady rate on the hub's producer: record i goes out at start + i/rate, never in bursts."""
    publisher = CourtPublisher(settings)
    producer = publisher.producer_for("J0105")  # one court's producer paces the whole stream
    failures: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err.str())

    started = time.perf_counter()
    window_started = window_ended = started
    lag_max = 0.0
    for i, record in enumerate(records):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            lag_max = max(lag_max, -delay)
        if i == warmup:
            window_started = time.perf_counter()
        produce(
            producer, publisher.topic, key=record.key, value=record.value, headers=record.headers, on_delivery=delivered
        )
        producer.poll(0)
        window_ended = time.perf_counter()
    remaining = producer.flush(60)
    if failures or remaining:
        raise RuntimeError(f"P2: {len(failures)} deliveries failed, {remaining} unconfirmed: {failures[:3]}")
    measured = len(records) - warmup
    return {
        "published": len(records),
        "warmup_events": warmup,
        "measured_events": measured,
        "window_s": window_ended - window_started,
        "achieved_rate": measured / (window_ended - window_started) if window_ended > window_started else None,
        "max_behind_schedule_s": lag_max,
    }


def _progress(settings: Settings) -> tuple[bool, int]:
    """(caught up?, records handled so far). Caught up: every agency has applied the whole court topic and
    relayed its outbox, and the ledger has stored the whole court topic and every feedback topic."""
    court = settings.topic(COURT_EVENTS)
    ends = {court: sum(end_offsets(settings, court).values())}
    done = True
    handled = 0
    for agency in settings.agencies:
        with psycopg.connect(libpq_url(settings, agency)) as conn:
            applied = conn.execute(
                "select coalesce(sum(next_offset), 0) from consumer_offsets where topic = %s", (court,)
            ).fetchone()[0]
            unsent = conn.execute("select count(*) from outbox").fetchone()[0]
        done = done and applied >= ends[court] and not unsent
        handled += applied - unsent
        topic = settings.topic(feedback_topic(agency))
        ends[topic] = sum(end_offsets(settings, topic).values())
    with psycopg.connect(libpq_url(settings, "ledger")) as conn:
        stored = dict(conn.execute("select topic, sum(next_offset) from consumer_offsets group by topic").fetchall())
    handled += sum(stored.values())
    return done and all(stored.get(topic, 0) >= end for topic, end in ends.items()), handled


def _wait_caught_up(settings: Settings, services: dict[str, Measured], stall: float = 120.0) -> float:
    """Wait while the services make progress; fail at once if one exits, or after `stall` seconds without any."""
    started = last_change = time.monotonic()
    last = -1
    while True:
        for name, service in services.items():
            if not service.running():
                raise RuntimeError(
                    f"P2: {name} exited while catching up; end of {service.log}:\n{service.wait(1).tail()}"
                )
        done, handled = _progress(settings)
        if done:
            return time.monotonic() - started
        if handled != last:
            last, last_change = handled, time.monotonic()
        elif time.monotonic() - last_change > stall:
            raise TimeoutError(f"P2: the agencies and the ledger made no progress for {stall:.0f}s (see their logs)")
        time.sleep(0.5)


def _latencies(settings: Settings, measured_ids: set[str]) -> dict[str, Any]:
    with psycopg.connect(libpq_url(settings, "ledger")) as conn:
        commit_ts = conn.execute("show track_commit_timestamp").fetchone()[0] == "on"
        commit = ", max(pg_xact_commit_timestamp(f.xmin)) as committed_at" if commit_ts else ""
        rows = conn.execute(_LATENCY.format(commit=commit)).fetchall()
        court = dict(
            conn.execute("select event_id::text, event_type from ledger_events where family = 'court'").fetchall()
        )
    agencies = len(settings.agencies)
    latencies = []
    agency_hop = []  # court record's broker time -> the last agency's feedback broker time
    ledger_hop = []  # that feedback's broker time -> the ledger storing it
    incomplete_inclusions = 0
    answered = set()
    for row in rows:
        event_id, event_type, published_at, count, stored_at, last_feedback_at = row[:6]
        if event_id not in measured_ids:
            continue
        answered.add(event_id)
        if count < agencies:
            incomplete_inclusions += event_type == "Included"
            continue
        done = row[6] if commit_ts else stored_at
        latencies.append((done - published_at).total_seconds() * 1000)
        agency_hop.append((last_feedback_at - published_at).total_seconds() * 1000)
        ledger_hop.append((done - last_feedback_at).total_seconds() * 1000)
    agency_hop.sort()
    ledger_hop.sort()
    missing_in_ledger = sum(1 for e in measured_ids if e not in court)
    unanswered_inclusions = sum(
        1 for e, t in court.items() if e in measured_ids and t == "Included" and e not in answered
    )
    latencies.sort()
    return {
        "clock": "commit timestamp" if commit_ts else "processed_events.processed_at (transaction start)",
        "events_measured": len(latencies),
        "court_events_missing_in_ledger": missing_in_ledger,
        "inclusions_without_all_feedback": incomplete_inclusions + unanswered_inclusions,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
        "min_ms": latencies[0] if latencies else None,
        "mean_ms": sum(latencies) / len(latencies) if latencies else None,
        "agencies_hop_ms": {"p50": percentile(agency_hop, 50), "p99": percentile(agency_hop, 99)},
        "ledger_hop_ms": {"p50": percentile(ledger_hop, 50), "p99": percentile(ledger_hop, 99)},
    }


def _hops(figures: dict[str, Any]) -> str:
    """Where a phase's latency went: to the last agency's feedback, then to the ledger."""
    agencies, ledger = figures["agencies_hop_ms"], figures["ledger_hop_ms"]
    return (
        f"to last feedback p50/p99 {agencies['p50']:.0f}/{agencies['p99']:.0f} ms, "
        f"then ledger {ledger['p50']:.0f}/{ledger['p99']:.0f} ms"
    )


def _phase(
    settings: Settings, records: list, rate: int, seconds: float, warmup_seconds: float, services: dict[str, Measured]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Publish `records` at `rate` (the first `warmup_seconds` of them not counted), wait until every service has
    caught up, and measure the counted ones."""
    warmup = round(rate * warmup_seconds)
    measured_ids = {r.event_id for r in records[warmup:]}
    with step(f"P2: publishing {rate:,}/s for {warmup_seconds:.0f}s warm-up + {seconds:.0f}s"):
        published = _paced_publish(settings, records, rate, warmup)
    say(f"P2: achieved {published['achieved_rate']:.1f} events/s over {published['window_s']:.1f}s")
    with step("P2: waiting for the agencies and the ledger to catch up"):
        published["catch_up_after_last_publish_s"] = _wait_caught_up(settings, services)
    return published, _latencies(settings, measured_ids)


def run(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path) -> None:
    settings = namespaces.make("p2")
    steady = round(sizes.p2_rate * (sizes.p2_warmup_seconds + sizes.p2_seconds))
    bulk = round(sizes.p2_bulk_rate * sizes.p2_bulk_seconds)
    with step(f"P2: simulating {steady + bulk:,} court events"):
        publisher = CourtPublisher(settings)
        records = [publisher.prepare(e) for e in data.court_events(steady + bulk, seed=202)]
    services: dict[str, Measured] = {}
    phases: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    try:
        with step(f"P2: starting {', '.join(settings.agencies)} (one worker each) and the ledger"):
            services = _start_services(settings, logs)
            wait_until(lambda: _ready(settings, services), 180, 0.25, "P2: services' partition assignment")
        phases["steady"] = _phase(
            settings, records[:steady], sizes.p2_rate, sizes.p2_seconds, sizes.p2_warmup_seconds, services
        )
        phases["bulk"] = _phase(settings, records[steady:], sizes.p2_bulk_rate, sizes.p2_bulk_seconds, 0.0, services)
    finally:
        for service in services.values():
            service.terminate()
        finished = Measured.wait_all(services, 90)
    exits = {name: finished[name].returncode if name in finished else "killed" for name in services}
    rss = {name: f.peak_kb for name, f in finished.items()}
    section.details.update(
        {
            "rate": sizes.p2_rate,
            **{name: {**published, **figures} for name, (published, figures) in phases.items()},
            "exit_codes": exits,
            "peak_rss_kb": rss,
        }
    )
    if any(code != 0 for code in exits.values()):
        say(f"P2: a service did not exit 0 on SIGTERM: {exits}")
    mib = ", ".join(f"{name} {kb / 1024:.0f}" for name, kb in rss.items())
    cpu = {name: f.cpu_per_1000(steady + bulk) for name, f in finished.items()}
    section.details["cpu_seconds_per_1000_court_events"] = cpu
    for name, (_published, figures) in phases.items():
        if figures["events_measured"] == 0:
            raise RuntimeError(f"P2 ({name}): no court event got feedback from every agency in the window")
    published, figures = phases["steady"]
    count = f"{figures['events_measured']:,} events at {published['achieved_rate']:.0f}/s; agencies one worker each"
    section.add("p50", "P2 latency p50", figures["p50_ms"], "ms", note=count)
    section.add("p95", "P2 latency p95", figures["p95_ms"], "ms", note=_hops(figures))
    section.add(
        "p99",
        "P2 latency p99",
        figures["p99_ms"],
        "ms",
        Target("<=", 250),
        rss_kb=max(rss.values(), default=None),
        note=f"peak RSS MiB: {mib}",
    )
    section.add("max", "P2 latency max", figures["max_ms"], "ms", note=f"clock: {figures['clock']}")
    section.add(
        "cpu",
        "P2 CPU s per 1,000 court events, all services",
        sum(c for c in cpu.values() if c is not None) if cpu else None,
        "s",
        note=", ".join(f"{name} {c:.3f}" for name, c in cpu.items() if c is not None) + " (start-up included)",
    )
    published, figures = phases["bulk"]
    section.add(
        "bulk_p50",
        "P2 bulk import latency p50",
        figures["p50_ms"],
        "ms",
        note=f"{figures['events_measured']:,} events at {published['achieved_rate']:.0f}/s",
    )
    section.add(
        "bulk_p99",
        "P2 bulk import latency p99",
        figures["p99_ms"],
        "ms",
        Target("<=", 2000),
        note=f"{_hops(figures)}; caught up {published['catch_up_after_last_publish_s']:.0f} s after the last publish",
    )
