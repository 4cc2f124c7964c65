"""`hub register run`: the public register's read model."""

from __future__ import annotations

from hub.cli.common import DEFAULT_WORKERS, Once, Workers, WorkersMetricsPort, group, run_engine, settings
from hub.codec import default_codec
from hub.register.service import RegisterHandler, open_database

app = group("The public register: the PUBLIC entries in force, for free public query (hub web serve shows them).")


@app.command()
def run(
    once: Once = False,
    metrics_port: WorkersMetricsPort = None,
    workers: Workers = DEFAULT_WORKERS,
) -> None:
    """Keep the register's database equal to the court history: PUBLIC entries that are ACTIVE, IDs masked.

    \b
    Examples:
      hub register run
      hub register run --once
      hub register run --once --workers 1
    """
    cfg = settings()
    run_engine(
        cfg,
        RegisterHandler(cfg),
        lambda: open_database(cfg, forever=not once),
        default_codec(),
        once,
        metrics_port,
        workers,
    )
