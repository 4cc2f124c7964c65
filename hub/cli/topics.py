"""`hub topics create|describe`."""

from __future__ import annotations

import typer

from hub.cli.common import console, settings
from hub.topics import create_topics, describe_topics

app = typer.Typer(help="Create and describe the hub's topics (DESIGN §4).", no_args_is_help=True)


@app.command()
def create() -> None:
    """Create every missing topic (idempotent); existing topics are checked, never altered."""
    for name, outcome in create_topics(settings()).items():
        console.print(f"{name}: {outcome}")


@app.command()
def describe() -> None:
    """Partitions, replication, retention and record counts of every hub topic."""
    for t in describe_topics(settings()):
        if not t.exists:
            console.print(f"{t.name}: missing ({t.purpose}); run `hub topics create`", style="red")
            continue
        settings_text = " ".join(f"{k}={v}" for k, v in sorted(t.config.items()))
        console.print(
            f"{t.name}: {t.partitions} partitions, {t.replication} replica(s), {t.messages} records; "
            f"{settings_text}; {t.purpose}",
            soft_wrap=True,
        )
