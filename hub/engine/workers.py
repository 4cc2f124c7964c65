"""`--workers N`: N processes of one service that share its partitions as one consumer group.

The command the user started becomes a supervisor that consumes nothing. It starts N children running the same
command with `--workers 1`; each child is a whole service on the engine, and instances sharing a group are safe
because the engine keeps the offsets in the service's database and compares them inside each batch's transaction.
The supervisor passes SIGTERM/SIGINT on, waits for every child, and sums their run summaries into the one line a
single process would have given. A child that fails while the others run (not `--once`) stops them all and the
supervisor exits with its code: whatever restarts the service restarts the whole of it.

Each child dies with the supervisor (PR_SET_PDEATHSIG): a supervisor killed with SIGKILL must not leave workers
consuming behind it. Children learn who they are from HUB_WORKER (set by the supervisor, not a setting): their
index and the pipe that takes their summary, so that their own output carries no partial summary.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hub.config import ConfigError
from hub.engine.engine import RunSummary
from hub.log import get_logger

WORKER_ENV = "HUB_WORKER"
_PR_SET_PDEATHSIG = 1
_COUNTS = ("read", "applied", "lifted", "retained", "failed", "recorded", "dead_lettered", "duplicates", "published")


def instance_id(base: str, index: int) -> str:
    """Worker `index`'s static group membership (HUB_INSTANCE_ID): each needs its own id, or the group fences one
    with the other; the same id on every restart gets each worker its partitions back at once."""
    return f"{base}.w{index}"


def metrics_port(base: int | None, index: int) -> int | None:
    return None if base is None else base + index


@dataclass(frozen=True)
class Worker:
    """This process as one of a supervisor's workers."""

    index: int
    count: int
    summary_fd: int

    def report(self, summary: RunSummary) -> None:
        with open(self.summary_fd, "w", encoding="utf-8") as out:
            json.dump(dataclasses.asdict(summary), out)


def current() -> Worker | None:
    """The worker this process is, if a supervisor started it."""
    raw = os.environ.get(WORKER_ENV)
    if not raw:
        return None
    fields = json.loads(raw)
    return Worker(int(fields["index"]), int(fields["count"]), int(fields["summary_fd"]))


def combined(parts: Sequence[RunSummary]) -> RunSummary:
    """The workers' summaries as one: counts added up, the time of the longest run."""
    total = dataclasses.replace(parts[0])
    for part in parts[1:]:
        for name in _COUNTS:
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.seconds = max(total.seconds, part.seconds)
    return total


def child_argv(argv: Sequence[str], index: int, port: int | None) -> list[str]:
    """The supervisor's own arguments, with `--workers 1` and the worker's metrics port."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--workers", "--metrics-port"):
            skip = True
        elif not arg.startswith(("--workers=", "--metrics-port=")):
            out.append(arg)
    if port is not None:
        out += ["--metrics-port", str(metrics_port(port, index))]
    return [*out, "--workers", "1"]


def check_ports(port: int | None, count: int, free: Callable[[int], None]) -> None:
    """Every worker's metrics port usable, before any worker starts (one error, not one per worker)."""
    if port is None:
        return
    last = port + count - 1
    if last > 65535:
        raise ConfigError(
            f"--metrics-port {port} with --workers {count}: worker {count - 1} would serve port {last}, past 65535"
        )
    for p in range(port, last + 1):
        free(p)


def _die_with_parent() -> Callable[[], None] | None:
    """For preexec_fn: SIGKILL this child when the supervisor dies (Linux), even if it died before the call."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the child only calls it
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, kill)
        if os.getppid() != parent:
            os._exit(1)

    return arm


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by a signal: as a shell reports it


def _read_summary(fd: int) -> RunSummary | None:
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        return RunSummary(**json.loads(b"".join(chunks))) if chunks else None
    except (ValueError, TypeError):
        return None


@dataclass
class _Child:
    index: int
    proc: subprocess.Popen
    summary_fd: int
    code: int | None = None


def supervise(
    argv: Sequence[str],
    count: int,
    *,
    service: str,
    once: bool,
    port: int | None,
    instance: str | None,
) -> tuple[int, RunSummary | None]:
    """Run `count` workers of `hub ARGV` to their end; the exit code (the failed worker's that stopped the others,
    else the worst among them) and their summed summary.

    Called once the database is migrated and the broker answers: until then SIGTERM ends the supervisor at once,
    as it does a single service that waits for a server."""
    log = get_logger("hub.workers").bind(service=service)
    children: list[_Child] = []
    stopping = False
    failed: int | None = None  # the code of the worker whose failure stopped the others

    def stop_all(signum: int) -> None:
        for child in children:
            if child.code is None:
                child.proc.send_signal(signum)

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        if not stopping:
            log.info("stop requested; the workers finish their current batch", signal=signal.Signals(signum).name)
        stopping = True
        stop_all(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    started = time.monotonic()
    arm = _die_with_parent()
    for index in range(count):
        if stopping:
            break
        read_end, write_end = os.pipe()
        env = {**os.environ, WORKER_ENV: json.dumps({"index": index, "count": count, "summary_fd": write_end})}
        if instance is not None:
            env["HUB_INSTANCE_ID"] = instance_id(instance, index)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hub", *child_argv(argv, index, port)],
                env=env,
                stdin=subprocess.DEVNULL,
                pass_fds=(write_end,),
                preexec_fn=arm,  # only prctl and getppid run between fork and exec
            )
        finally:
            os.close(write_end)
        children.append(_Child(index, proc, read_end))
    log.info("workers started", workers=len(children), pids=[c.proc.pid for c in children], once=once)

    by_pid = {c.proc.pid: c for c in children}
    while any(c.code is None for c in children):
        pid, status = os.wait()
        child = by_pid.get(pid)
        if child is None:
            continue
        child.code = child.proc.returncode = _exit_code(status)
        if child.code == 0 or stopping:
            continue
        if once:
            log.error("worker failed; the others go on to the end", worker=child.index, pid=pid, code=child.code)
            continue
        log.error("worker failed; stopping the others", worker=child.index, pid=pid, code=child.code)
        stopping, failed = True, child.code
        stop_all(signal.SIGTERM)

    summaries = [s for s in (_read_summary(c.summary_fd) for c in children) if s is not None]
    codes = [c.code or 0 for c in children]
    total = combined(summaries) if summaries else None
    if total is not None:
        log.info(total.line(), **total.fields(), workers=len(children), reported=len(summaries))
    code = failed if failed is not None else max(codes, default=0)
    log.info("workers stopped", codes=codes, code=code, seconds=round(time.monotonic() - started, 2))
    return code, total
