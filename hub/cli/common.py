"""Shared CLI plumbing: consoles and the settings object."""

from __future__ import annotations

from rich.console import Console

from hub.config import Settings, get_settings
from hub.log import configure

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def settings() -> Settings:
    current = get_settings()
    configure(current.log_level, current.log_format)
    return current
