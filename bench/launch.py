"""Run one command and write its exit code, wall time, CPU time and peak resident memory to a JSON file.

Why a launcher: Linux keeps, across `execve`, the peak RSS of the address space a child was forked (or
vforked) from, so a child of the harness would report at least the harness's own peak. Started from this
small process instead, the command's `ru_maxrss` (from `wait4`: the largest of the command and the
descendants it waited for) is its own. A command that works in several processes (a process pool) needs
their sum as well, which no kernel counter keeps: a thread samples the RSS of the whole process tree.
SIGTERM and SIGINT are passed on to the command.

Usage: python -S bench/launch.py RESULT.json -- COMMAND [ARGS...]   (standard library only, on purpose)
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _tree(pid: int) -> list[int]:
    """The process and its descendants, through /proc/<pid>/task/<tid>/children."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children") as children:
                    todo.extend(int(c) for c in children.read().split())
        except OSError:
            continue
    return found


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0


class TreeSampler(threading.Thread):
    """Peak of the summed RSS of a process tree, and the most processes seen at once (sampled)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.processes = 0
        self.halt = threading.Event()

    def run(self) -> None:
        interval = 0.02  # fine at first, for short commands; coarser later, to stay out of the way
        while not self.halt.is_set():
            pids = _tree(self.pid)
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(p) for p in pids))
            self.processes = max(self.processes, len(pids))
            self.halt.wait(interval)
            interval = min(interval * 1.5, 0.25)


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    result, argv = sys.argv[1], sys.argv[3:]
    started = time.perf_counter()
    try:
        child = subprocess.Popen(argv)
    except OSError as exc:
        print(f"launch: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: child.send_signal(number))
    with open(result + ".pid", "w") as out:
        out.write(str(child.pid))
    sampler = TreeSampler(child.pid)
    sampler.start()
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    sampler.halt.set()
    child.returncode = code = os.waitstatus_to_exitcode(status)
    report = {
        "returncode": code,
        "seconds": seconds,
        "max_rss_kb": usage.ru_maxrss,
        # user + system CPU of the command and of the descendants it waited for (wait4's rusage)
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "tree_rss_kb": sampler.peak_kb,
        "processes": sampler.processes,
        "pid": child.pid,
    }
    with open(result, "w") as out:
        json.dump(report, out)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
