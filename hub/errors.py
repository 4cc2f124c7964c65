"""Failures a user is expected to meet, each with the exit code every `hub` command gives it.

Exit codes: 0 done; 1 done, and found something wrong (invalid input, a difference, drift, a server down in
`hub dev status`); 2 a bad argument or setting; 3 a server that does not answer, refuses our credentials, or
lacks a topic or database we need; 4 done in part (`hub court publish --skip-invalid`); 130 interrupted.
"""

from __future__ import annotations

import time
from typing import Any

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_PARTIAL = 4
EXIT_INTERRUPTED = 130


class Unavailable(RuntimeError):
    """A server we need does not answer or refuses us; the message says which, and what to do."""

    exit_code = EXIT_UNAVAILABLE


class Patience:
    """How long to keep asking a server that does not answer: for ever (a started service: `timeout` None) or
    until a deadline (a `--once` run, a one-off command), with a back-off of 0.5 s doubling to 30 s."""

    def __init__(self, timeout: float | None):
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.backoff = 0.5

    def remaining(self) -> float | None:
        """Seconds left, None when there is no deadline."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def exhausted(self) -> bool:
        left = self.remaining()
        return left is not None and left < 0.1

    def wait(self, log: Any, message: str, **fields: object) -> None:
        """Say that we wait, and why, then sleep the next back-off (never past the deadline)."""
        left = self.remaining()
        pause = round(self.backoff if left is None else min(self.backoff, left), 1)
        log.warning(f"{message}; retrying in {pause:g}s", retry_in=pause, **fields)
        time.sleep(pause)
        self.backoff = min(self.backoff * 2, 30.0)


def what_to_do(variable: str, configured: bool) -> str:
    """The advice for a server that does not answer: ours to start, or the one the setting names."""
    if configured:
        return f"check that it runs and that {variable} points at it"
    return f"start it with `hub dev up`, or set {variable}"
