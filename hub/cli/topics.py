"""`hub topics create|describe`."""

from __future__ import annotations

from hub.acl import ADMIN, AUDITOR
from hub.cli.common import console, group, kafka_settings
from hub.topics import create_topics, describe_topics

app = group("Create and describe the hub's topics (docs/design.md §4).")


@app.command()
def create() -> None:
    """Create every missing topic (idempotent); existing topics are checked, never altered.

    \b
    Example:
      hub topics create
    """
    for name, outcome in create_topics(kafka_settings(ADMIN)).items():
        console.print(f"{name}: {outcome}")


@app.command()
def describe() -> None:
    """Partitions, replication, retention and record counts of every hub topic.

    \b
    Example:
      hub topics describe
    """
    for t in describe_topics(kafka_settings(AUDITOR)):
        if not t.exists:
            console.print(f"{t.name}: missing ({t.purpose}); run `hub topics create`", style="red")
            continue
        settings_text = " ".join(f"{k}={v}" for k, v in sorted(t.config.items()))
        console.print(
            f"{t.name}: {t.partitions} partitions, {t.replication} replica(s), {t.messages} records; "
            f"{settings_text}; {t.purpose}",
            soft_wrap=True,
        )
