"""Topic names and their administration (docs/design.md §4). Kafka is the source of truth: nothing expires."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType

from hub.acl import ADMIN, AUDITOR
from hub.clients import admin
from hub.config import Settings

COURT_EVENTS = "court.list-events"
DEAD_LETTER = "hub.dead-letter"
CHECKPOINTS = "ledger.checkpoints"
FEEDBACK_PATTERN = r"^agency\.[a-z][a-z0-9_]*\.feedback$"

# LogAppendTime: the broker, not the writer, stamps each record, so agency deadlines and the auditors'
# record time ("known at") cannot be back-dated by a producer.
EVENT_TOPIC_CONFIG = {
    "cleanup.policy": "delete",
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "message.timestamp.type": "LogAppendTime",
}


def feedback_topic(agency: str) -> str:
    return f"agency.{agency}.feedback"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]
    purpose: str


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Keyed topics share one partition count so a debtor's events meet on the same partition number.

    Checkpoints form one ordered chain per ledger, so they live on a single partition.
    """
    p = settings.partitions
    # acks=all means "every in-sync replica": only with at least two of them does an acknowledged record
    # survive the loss of a broker. Never weaker than the setting asks.
    config = {**EVENT_TOPIC_CONFIG, "min.insync.replicas": str(settings.effective_min_insync_replicas)}
    specs = [
        TopicSpec(settings.topic(COURT_EVENTS), p, config, "court list events, keyed by debtor"),
        *(
            TopicSpec(settings.topic(feedback_topic(a)), p, config, f"{a} feedback, keyed by debtor")
            for a in settings.agencies
        ),
        TopicSpec(settings.topic(DEAD_LETTER), p, config, "undecodable or invalid records"),
        TopicSpec(settings.topic(CHECKPOINTS), 1, config, "ledger hash-chain checkpoints"),
    ]
    return specs


class TopicError(RuntimeError):
    pass


def create_topics(settings: Settings) -> dict[str, str]:
    """Create missing topics; existing ones are checked, never altered. Returns name -> outcome."""
    client = admin(settings, ADMIN)
    specs = topic_specs(settings)
    existing = client.list_topics(timeout=15).topics
    outcome: dict[str, str] = {}
    new = []
    for spec in specs:
        if spec.name in existing:
            have = len(existing[spec.name].partitions)
            if have != spec.partitions:
                raise TopicError(
                    f"topic {spec.name} exists with {have} partitions, expected {spec.partitions}: "
                    "keyed topics must stay co-partitioned; set HUB_PARTITIONS to match"
                )
            outcome[spec.name] = "exists"
        else:
            new.append(NewTopic(spec.name, spec.partitions, settings.replication_factor, config=dict(spec.config)))
    if new:
        for name, future in client.create_topics(new, operation_timeout=30).items():
            try:
                future.result()
                outcome[name] = "created"
            except KafkaException as exc:
                if exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                    outcome[name] = "exists"
                else:
                    raise TopicError(f"creating {name}: {exc.args[0].str()}") from None
        _wait_for_leaders(client, [t.topic for t in new])
    from hub.acl import apply

    apply(settings)  # every party may do its own acts on them, and nothing else
    return outcome


def _wait_for_leaders(client, names: list[str], timeout: float = 30.0) -> None:
    """A created topic is usable once every partition has a leader; callers should not see the gap."""
    deadline = time.monotonic() + timeout
    while True:
        topics = client.list_topics(timeout=10).topics
        waiting = [
            n
            for n in names
            if n not in topics or not topics[n].partitions or any(p.leader < 0 for p in topics[n].partitions.values())
        ]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TopicError(f"partitions without a leader after {timeout:.0f}s: {', '.join(waiting)}")
        time.sleep(0.1)


def delete_topics(settings: Settings, *more: Settings) -> None:
    """Delete these namespaces' topics (test namespaces, when they are torn down), in one request."""
    client = admin(settings, ADMIN)
    existing = client.list_topics(timeout=15).topics
    names = [spec.name for each in (settings, *more) for spec in topic_specs(each) if spec.name in existing]
    if names:
        for future in client.delete_topics(names, operation_timeout=30).values():
            future.result()


@dataclass
class TopicDescription:
    name: str
    exists: bool
    partitions: int
    replication: int
    config: dict[str, str]
    messages: int
    purpose: str


def describe_topics(settings: Settings) -> list[TopicDescription]:
    from hub.readback import reader, watermarks

    client = admin(settings, AUDITOR)
    metadata = client.list_topics(timeout=15).topics
    specs = topic_specs(settings)
    present = [s for s in specs if s.name in metadata]
    configs: dict[str, dict[str, str]] = {}
    if present:
        resources = [ConfigResource(ResourceType.TOPIC, s.name) for s in present]
        for resource, future in client.describe_configs(resources).items():
            entries = future.result()
            configs[resource.name] = {
                k: entries[k].value
                for k in ("cleanup.policy", "retention.ms", "message.timestamp.type", "min.insync.replicas")
            }
    probe = reader(settings)
    out = []
    try:
        for spec in specs:
            topic = metadata.get(spec.name)
            if topic is None:
                out.append(TopicDescription(spec.name, False, 0, 0, {}, 0, spec.purpose))
                continue
            messages = 0
            for pid in topic.partitions:
                low, high = watermarks(probe, spec.name, pid)
                messages += high - low
            replication = len(next(iter(topic.partitions.values())).replicas) if topic.partitions else 0
            out.append(
                TopicDescription(
                    spec.name,
                    True,
                    len(topic.partitions),
                    replication,
                    configs.get(spec.name, {}),
                    messages,
                    spec.purpose,
                )
            )
    finally:
        probe.close()
    return out


def probe_kafka(settings: Settings) -> bool:
    try:
        return bool(admin(settings, AUDITOR).list_topics(timeout=3).brokers)
    except KafkaException:
        return False
