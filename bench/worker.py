"""In-process measurements, each run as its own subprocess (`python -m bench.worker TASK`) so that its peak
memory is its own and its timings exclude interpreter start-up. Settings come from the HUB_* environment the
harness sets (namespace included). The last line printed is a JSON object with "bench_worker": TASK.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import sys
import time
from typing import Any

from bench.common import percentile
from bench.ids import resident_id


def _rss_kb() -> int:
    """This process's peak RSS so far: VmHWM belongs to the address space made at exec, so unlike ru_maxrss it
    does not include the parent's memory (see bench/launch.py)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _answer(task: str, **figures: Any) -> None:
    print(json.dumps({"bench_worker": task, "vmhwm_kb": _rss_kb(), **figures}), flush=True)


def _court_records(name: str):
    """Every record of the namespace's court topic from offset 0, read as an auditor in batches of
    HUB_BATCH_SIZE (an agency's client settings); gives up after 60 s without a record."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    from hub.clients import consumer as make_consumer
    from hub.config import get_settings
    from hub.readback import end_offsets
    from hub.topics import COURT_EVENTS

    settings = get_settings()
    topic = settings.topic(COURT_EVENTS)
    ends = end_offsets(settings, topic)
    expected = sum(ends.values())
    client = make_consumer(settings, f"{settings.namespace}hub-audit-{name}-{time.monotonic_ns()}", "auditor")
    count = 0
    last_progress = time.perf_counter()
    client.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    try:
        while count < expected:
            batch = client.consume(num_messages=settings.batch_size, timeout=1.0)
            if batch:
                last_progress = time.perf_counter()
            elif time.perf_counter() - last_progress > 60:
                raise TimeoutError(f"read {count:,} of {expected:,} records, then nothing for 60s")
            for message in batch:
                if message.error():
                    continue
                count += 1
                yield message
    finally:
        client.close()


def consume(task: str) -> None:
    """Read the court topic from offset 0 as an agency does (same client settings, same batch size); "avro" also
    decodes each value with fastavro alone (`codec.decode`, the peer's way), "decode" decodes and checks it into
    an event (`codec.decode_event`, the services' way): the ceiling for any consumer service."""
    from hub.codec import default_codec
    from hub.config import get_settings

    codec = default_codec()
    step = {"consume": None, "avro": codec.decode, "decode": lambda value: codec.decode_event(value, "court")}[task]
    count = decoded = 0
    first_at = None
    cpu = time.process_time()
    started = time.perf_counter()
    for message in _court_records("bench"):
        first_at = first_at or time.perf_counter()
        count += 1
        if step is not None:
            step(message.value())
            decoded += 1
    seconds = time.perf_counter() - started
    _answer(
        task,
        records=count,
        decoded=decoded,
        seconds=seconds,
        rate=count / seconds,
        cpu_seconds=time.process_time() - cpu,
        first_batch_s=(first_at or started) - started,
        batch_size=get_settings().batch_size,
    )


def checks(agency: str, subjects: int, calls: int, seconds: float, measures: list[str], seed: int) -> None:
    """Time InterceptionChecker.check one call at a time: half restricted subjects, half unrestricted ones.

    The checker's construction (its start-up, whatever it warms) is timed apart from the calls; the questions
    are made between the timed calls, so they cost neither time nor memory in the figures."""
    try:
        from hub.agency.check import InterceptionChecker  # where the embedded (cached) checker lives
    except ImportError:  # earlier layouts kept it beside the agency service
        from hub.agency.service import InterceptionChecker  # type: ignore[attr-defined,no-redef]
    from hub.config import get_settings

    rng = random.Random(seed)

    def question(i: int) -> tuple[str, str, bool]:
        restricted = i % 2 == 0
        return (
            resident_id(rng.randrange(subjects), restricted=restricted),
            measures[(i // 2) % len(measures)],
            restricted,
        )

    started = time.perf_counter()
    checker = InterceptionChecker(get_settings(), agency)
    construct_s = time.perf_counter() - started
    rss_after_construct = _rss_kb()
    subject, measure, _restricted = question(0)
    first = time.perf_counter_ns()
    checker.check(subject, measure, channel="bench")
    first_call_us = (time.perf_counter_ns() - first) / 1000
    latencies: list[int] = []
    wrong = 0
    blocked = 0
    loop_started = time.perf_counter()
    deadline = loop_started + seconds
    for i in range(1, calls):
        subject, measure, restricted = question(i)
        before = time.perf_counter_ns()
        result = checker.check(subject, measure, channel="bench")
        latencies.append(time.perf_counter_ns() - before)
        is_blocked = result.decision == "BLOCKED"
        blocked += is_blocked
        wrong += is_blocked != restricted
        if i % 256 == 0 and time.perf_counter() > deadline:
            break
    loop_s = time.perf_counter() - loop_started
    closing = time.perf_counter()
    close = getattr(checker, "close", None)  # writes blocks still buffered, where the checker buffers them
    if close is not None:
        close()
    close_s = time.perf_counter() - closing
    latencies.sort()
    _answer(
        "checks",
        construct_s=construct_s,
        rss_after_construct_kb=rss_after_construct,
        first_call_us=first_call_us,
        close_s=close_s,
        calls=len(latencies),
        seconds=loop_s,
        rate=len(latencies) / sum(latencies) * 1e9,
        loop_rate=len(latencies) / loop_s,
        p50_us=percentile(latencies, 50) / 1000,
        p99_us=percentile(latencies, 99) / 1000,
        max_us=latencies[-1] / 1000,
        mean_us=sum(latencies) / len(latencies) / 1000,
        blocked=blocked,
        wrong_answers=wrong,
    )


def replay() -> None:
    """hub.audit.replay.replay over the namespace's topics, timed inside the process."""
    from hub.audit.replay import replay as run_replay
    from hub.config import get_settings

    marks: dict[str, float] = {}

    def progress(_total: int | None, _done: int) -> None:
        marks["read"] = time.perf_counter()  # the last call: every record read (the rest: assembling the result)

    started = time.perf_counter()
    result, history = run_replay(get_settings(), progress=progress)
    seconds = time.perf_counter() - started
    _answer(
        "replay",
        records=history.records,
        undecodable=history.undecodable,
        seconds=seconds,
        rate=history.records / seconds,
        read_s=marks.get("read", started) - started,
        entries=len(result["entries"]),
        digest=result["digest"],
        states_digest=_states_digest({e: v["state"] for e, v in result["entries"].items()}),
    )


def report() -> None:
    """The ledger report from the projection, then from the whole history, at one instant: both timed."""
    from hub.config import get_settings
    from hub.domain.history import digest
    from hub.ledger.report import build_report

    settings = get_settings()
    as_of = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    projected = build_report(settings, as_of)
    seconds = time.perf_counter() - started
    whole = build_report(settings, as_of, projection=False)
    whole_seconds = time.perf_counter() - started - seconds
    _answer(
        "report",
        seconds=seconds,
        whole_seconds=whole_seconds,
        projected=projected.projected,
        same=projected.projected and digest(projected.as_dict()) == digest(whole.as_dict()),
        violations=len(projected.violations),
        entries=sum(projected.entries.values()),
    )


def _states_digest(states: dict[str, str]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(sorted(states.items()), ensure_ascii=False).encode()).hexdigest()


def plain_fold() -> None:
    """The peer of P4: what an engineer would write in a day to rebuild every entry's state from the court topic.
    One process: consume from offset 0, fastavro's decode alone (no model validation), each event once (its
    first record), each entry's acts in legal order (occurred_at, then offset: an entry's records share a
    partition), folded with the shared lifecycle's `step`. Its answer's `states_digest` must equal the hub
    replay's, or the comparison is not of the same work."""
    from hub.codec import default_codec
    from hub.domain.lifecycle import step

    codec = default_codec()
    acts: dict[str, list[tuple[dt.datetime, int, str]]] = {}
    seen: set[str] = set()
    count = 0
    started = time.perf_counter()
    for message in _court_records("peer"):
        count += 1
        _name, record = codec.decode(message.value())
        if record["event_id"] in seen:
            continue
        seen.add(record["event_id"])
        at = dt.datetime.fromisoformat(record["occurred_at"])
        acts.setdefault(record["entry_id"], []).append((at, message.offset(), record["type"]))
    states: dict[str, str] = {}
    for entry_id, entry_acts in acts.items():
        state, pending = None, 0
        for _at, _offset, kind in sorted(entry_acts):
            moved = step(state, kind, pending > 0)
            if moved.refused:
                continue
            pending += (kind == "CorrectionRequested") - (kind == "CorrectionDecided")
            state = moved.state
        if state is not None:
            states[entry_id] = state.value
    seconds = time.perf_counter() - started
    _answer(
        "plain-fold",
        records=count,
        seconds=seconds,
        rate=count / seconds,
        entries=len(states),
        states_digest=_states_digest(states),
    )


def plain_agency(agency: str) -> None:
    """The peer of P1 (bench/peer_agency.py), timed inside the process as well as by the launcher."""
    from bench import peer_agency

    _answer("plain-agency", **peer_agency.run(agency))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    tasks = parser.add_subparsers(dest="task", required=True)
    tasks.add_parser("consume")
    tasks.add_parser("avro")
    tasks.add_parser("decode")
    p = tasks.add_parser("checks")
    p.add_argument("--agency", default="transport")
    p.add_argument("--subjects", type=int, required=True)
    p.add_argument("--calls", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--measures", required=True)
    p.add_argument("--seed", type=int, default=7)
    tasks.add_parser("replay")
    tasks.add_parser("plain-fold")
    tasks.add_parser("report")
    tasks.add_parser("plain-agency").add_argument("--agency", default="bank")
    args = parser.parse_args(argv)
    from hub.config import get_settings
    from hub.log import configure

    configure(get_settings().log_level, "json")
    if args.task in ("consume", "avro", "decode"):
        consume(args.task)
    elif args.task == "checks":
        checks(args.agency, args.subjects, args.calls, args.seconds, args.measures.split(","), args.seed)
    elif args.task == "replay":
        replay()
    elif args.task == "plain-fold":
        plain_fold()
    elif args.task == "report":
        report()
    elif args.task == "plain-agency":
        plain_agency(args.agency)
    else:  # pragma: no cover - argparse refuses it first
        sys.exit(f"unknown task {args.task}")


if __name__ == "__main__":
    main()
