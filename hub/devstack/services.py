"""Services `make demo` leaves running for you to explore (the register and the web server): started
detached, each with a pid file and a log under <state>/services/, and stopped by `hub dev down`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hub.config import Settings


def _folder(settings: Settings) -> Path:
    folder = settings.state_dir / "services"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(settings: Settings, name: str) -> dict | None:
    """The record ({"pid", "args", "url"?}) of a service started here that is still alive, else None."""
    path = _folder(settings) / f"{name}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if _alive(record["pid"]) else None


def start(settings: Settings, name: str, args: list[str], url: str | None = None) -> dict:
    """Start `hub ARGS` detached (its own session: it outlives the demo), unless it runs already."""
    found = running(settings, name)
    if found is not None:
        return {**found, "reused": True}
    folder = _folder(settings)
    with open(folder / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "HUB_LOG_FORMAT": "json"},
        )
    record = {"pid": proc.pid, "args": args, "url": url, "log": str(folder / f"{name}.log")}
    (folder / f"{name}.json").write_text(json.dumps(record), encoding="utf-8")
    return {**record, "reused": False}


def stop_all(settings: Settings, say=print) -> None:
    """SIGTERM every service started here, then SIGKILL what has not stopped within 20 seconds."""
    folder = settings.state_dir / "services"
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        name = path.stem
        record = running(settings, name)
        path.unlink(missing_ok=True)
        if record is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(record["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(record["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(record["pid"]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record["pid"], signal.SIGKILL)
        say(f"{name}: stopped")
