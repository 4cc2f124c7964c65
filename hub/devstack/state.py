"""The state folder of a checkout's local stack: remembered ports, credentials, a lock, pid checks."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path


class StackError(RuntimeError):
    """The local stack cannot be started or reached; the message says what to do."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Serialise `hub dev` commands of one checkout (e.g. `make test` and `make demo` at once)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "dev.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_or_create_stack(state_dir: Path) -> dict:
    """Ports are chosen once, at first start, and kept: Kafka's metadata log records the controller's."""
    path = state_dir / "stack.json"
    if path.exists():
        return json.loads(path.read_text())
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(free_port())
    kafka_port, controller_port, pg_port = sorted(ports)
    stack = {
        "kafka_port": kafka_port,
        "kafka_controller_port": controller_port,
        "pg_port": pg_port,
        "pg_user": "hub",
        "pg_password": secrets.token_urlsafe(18),
    }
    save_stack(state_dir, stack)
    return stack


def save_stack(state_dir: Path, stack: dict) -> None:
    path = state_dir / "stack.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stack, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def pid_alive(pid: int, marker: str) -> bool:
    """True when `pid` runs and its command line mentions `marker` (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return marker in cmdline


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def terminate(pid: int, marker: str, timeout: float) -> None:
    """SIGTERM, wait for a clean shutdown, SIGKILL if it does not come."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, marker):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while pid_alive(pid, marker):
        time.sleep(0.1)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"
