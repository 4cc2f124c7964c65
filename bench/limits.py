"""The machine's limits, measured in the same run as the hub's figures so that they share its noise:

- Kafka's own ProducerPerformance and ConsumerPerformance (the `kafka-tools` jar) at the hub's record size;
- a Python consumer that only consumes, and one that also decodes and validates each record with the codec
  (the work an agency does per record before touching its database).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from confluent_kafka.admin import NewTopic

from bench import data
from bench.common import Measured, Namespaces, Section, Sizes, Target, java, run_worker, say, step
from hub.clients import admin
from hub.config import PROJECT_ROOT, Settings
from hub.devstack import maven
from hub.topics import EVENT_TOPIC_CONFIG

POM = PROJECT_ROOT / "infra" / "kafka-tools" / "pom.xml"
PRODUCER = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER = "org.apache.kafka.tools.ConsumerPerformance"
TOOLS_HEAP = "-Xmx512m"  # what Kafka's kafka-producer-perf-test.sh gives them

# "1000000 records sent, 312500.0 records/sec (73.81 MB/sec), 250.12 ms avg latency, ..."
_PRODUCER_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rate>[\d.]+) records/sec \((?P<mb>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency"
    r"(?:, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th)?"
)


def tools_libs(state_dir: Path) -> Path:
    libs = state_dir / "kafka-tools" / "libs"
    maven.fetch_jars(POM, libs, "kafka-tools")
    return libs


def tools_version(libs: Path) -> str | None:
    jar = next(libs.glob("kafka-tools-[0-9]*.jar"), None)
    return jar.stem.removeprefix("kafka-tools-") if jar else None


def parse_producer(output: str) -> dict[str, float]:
    """The tool prints interim lines every 5 s and the summary last; the summary has the percentiles."""
    found = [m for m in _PRODUCER_SUMMARY.finditer(output) if m["p50"] is not None]
    if not found:
        raise RuntimeError(f"no ProducerPerformance summary in its output:\n{output[-2000:]}")
    m = found[-1]
    return {
        "records": int(m["records"]),
        "rate": float(m["rate"]),
        "mb_per_s": float(m["mb"]),
        "avg_latency_ms": float(m["avg"]),
        "max_latency_ms": float(m["max"]),
        "p50_latency_ms": float(m["p50"]),
        "p95_latency_ms": float(m["p95"]),
        "p99_latency_ms": float(m["p99"]),
    }


def parse_consumer(output: str) -> dict[str, float]:
    """A CSV header (start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec) and one line of figures."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("start.time") and i + 1 < len(lines):
            names = [n.strip() for n in line.split(",")]
            values = [v.strip() for v in lines[i + 1].split(",")]
            row = dict(zip(names, values, strict=False))
            return {
                "records": int(float(row["data.consumed.in.nMsg"])),
                "mb": float(row["data.consumed.in.MB"]),
                "rate_incl_group_join": float(row["nMsg.sec"]),
                "rebalance_ms": float(row["rebalance.time.ms"]),
                "fetch_ms": float(row["fetch.time.ms"]),
                "rate": float(row["fetch.nMsg.sec"]),
                "mb_per_s": float(row["fetch.MB.sec"]),
            }
    raise RuntimeError(f"no ConsumerPerformance figures in its output:\n{output[-2000:]}")


def _perf_topic(namespaces: Namespaces, settings: Settings) -> str:
    """A dedicated topic shaped like the hub's (same partitions and config), removed with the run."""
    name = settings.topic("bench.kafka-perf")
    topic = NewTopic(name, settings.partitions, settings.replication_factor, config=dict(EVENT_TOPIC_CONFIG))
    client = admin(settings, "admin")  # kept alive until the futures resolve
    for future in client.create_topics([topic], operation_timeout=30).values():
        future.result()
    namespaces.extra_topics.append(name)
    return name


def _java_client_config(settings: Settings, path: Path) -> Path:
    """Kafka's Java tools connect like every hub client: SASL_SSL with SCRAM, trusting the local CA only. They run
    as admin on a topic of their own (a benchmark tool, not a service)."""
    password = settings.kafka_password("admin")
    lines = [
        f"security.protocol={settings.kafka_security_protocol}",
        f"sasl.mechanism={settings.kafka_sasl_mechanism}",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="admin" password="{password}";',
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={settings.kafka_ca_path()}",
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def kafka_tools(section: Section, namespaces: Namespaces, settings: Settings, sizes: Sizes, size: int, logs: Path):
    libs = tools_libs(settings.state_dir)
    section.details["kafka_tools_version"] = tools_version(libs)
    topic = _perf_topic(namespaces, settings)
    n = sizes.limits_records
    bootstrap = settings.bootstrap()
    base = [java(), TOOLS_HEAP, "-Dlog4j2.level=WARN", "-cp", f"{libs}/*"]
    props = ["acks=all"]
    client_config = _java_client_config(settings, logs / "kafka-perf-client.properties")
    with step(f"limits: Kafka ProducerPerformance, {n:,} records of {size} bytes"):
        argv = [*base, PRODUCER, "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(n)]
        argv += ["--record-size", str(size), "--throughput", "-1", "--command-config", str(client_config)]
        argv += ["--command-property", *props]
        finished = Measured(argv, dict(os.environ), logs / "kafka-producer-perf.log").wait(600)
        if finished.returncode != 0:
            raise RuntimeError(f"ProducerPerformance exited {finished.returncode}:\n{finished.tail()}")
        produced = parse_producer(finished.log.read_text(errors="replace"))
    section.details["kafka_producer"] = {
        **produced,
        "props": props,
        "record_size": size,
        "topic_partitions": settings.partitions,
    }
    section.add(
        "kafka_producer",
        "Kafka ProducerPerformance",
        produced["rate"],
        "records/s",
        rss_kb=finished.peak_kb,
        note=f"{produced['mb_per_s']:.1f} MB/s, {size} B records, acks=all, p99 {produced['p99_latency_ms']:.0f} ms",
    )
    with step(f"limits: Kafka ConsumerPerformance, {n:,} records"):
        argv = [*base, CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(n)]
        argv += ["--timeout", "60000", "--group", f"{settings.namespace}bench-perf"]
        argv += ["--command-config", str(client_config)]
        finished = Measured(argv, dict(os.environ), logs / "kafka-consumer-perf.log").wait(600)
        if finished.returncode != 0:
            raise RuntimeError(f"ConsumerPerformance exited {finished.returncode}:\n{finished.tail()}")
        consumed = parse_consumer(finished.log.read_text(errors="replace"))
    section.details["kafka_consumer"] = consumed
    section.add(
        "kafka_consumer",
        "Kafka ConsumerPerformance",
        consumed["rate"],
        "records/s",
        rss_kb=finished.peak_kb,
        note=f"{consumed['mb_per_s']:.1f} MB/s (fetch time; group join {consumed['rebalance_ms']:.0f} ms excluded)",
    )


def python_consumers(section: Section, settings: Settings, sizes: Sizes, sample: list, logs: Path) -> None:
    n = sizes.limits_records
    with step(f"limits: filling the court topic with {n:,} hub records"):
        seconds = data.fill_cycling(settings, sample, n)
    section.details["fill"] = {"records": n, "seconds": seconds, "distinct_records": len(sample)}
    labels = {
        "consume": "Python consume only",
        "avro": "Python consume + fastavro (peer)",
        "decode": "Python consume + decode",
    }
    notes = {"avro": ", codec.decode(value): fastavro alone", "decode": ", codec.decode_event(value, 'court')"}
    for task, label in labels.items():
        with step(f"limits: {label}, {n:,} records"):
            answer, rss = run_worker(task, settings, logs / f"limits-{task}.log", 600)
        section.details[f"python_{task}"] = answer
        if answer["records"] != n:
            raise RuntimeError(f"{label}: read {answer['records']:,} records, expected {n:,}")
        section.add(
            f"python_{task}",
            label,
            answer["rate"],
            "records/s",
            Target(">=", 60_000) if task == "decode" else None,
            rss_kb=rss,
            note=f"confluent_kafka consume(num_messages={answer['batch_size']})" + notes.get(task, ""),
        )
        section.add(
            f"python_{task}_cpu",
            f"{label}: CPU per 1,000 records",
            answer["cpu_seconds"] / n * 1000,
            "CPU s",
            note="the worker's own user + system time",
        )
    peer = section.figure("python_avro")
    section.add(
        "decode_vs_peer",
        "consume + decode / consume + fastavro",
        answer["rate"] / peer.value if peer and peer.value else None,
        "ratio",
        note="what the checks and the models cost over fastavro alone",
    )


def run(section: Section, namespaces: Namespaces, sizes: Sizes, logs: Path) -> dict[str, Any]:
    settings = namespaces.make("lim")
    with step("limits: simulating a sample of court events for the record size"):
        sample = data.prepared_sample(settings, min(20_000, sizes.limits_records), seed=11)
        data.codec_check(sample)
    size = data.mean_record_size(sample)
    section.details["record_size_bytes"] = size
    section.details["record_size_note"] = "mean Avro value (single-object encoding) of simulated court events"
    say(f"limits: the hub's mean court event is {size} bytes")
    try:
        kafka_tools(section, namespaces, settings, sizes, size, logs)
    except Exception as exc:  # the Python limits stand on their own; say what failed and go on
        section.details["kafka_tools_error"] = str(exc)
        say(f"limits: Kafka perf tools failed: {exc}")
    python_consumers(section, settings, sizes, sample, logs)
    if "kafka_tools_error" in section.details:
        raise RuntimeError(f"Kafka perf tools: {section.details['kafka_tools_error']}")
    return section.details
