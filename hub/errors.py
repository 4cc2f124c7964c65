"""Failures a user is expected to meet, each with the exit code every `hub` command gives it.

Exit codes: 0 done; 1 done, and found something wrong (invalid input, a difference, drift, a server down in
`hub dev status`); 2 a bad argument or setting; 3 a server that does not answer, refuses our credentials, or
lacks a topic or database we need; 4 done in part (`hub court publish --skip-invalid`); 130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_PARTIAL = 4
EXIT_INTERRUPTED = 130


class Unavailable(RuntimeError):
    """A server we need does not answer or refuses us; the message says which, and what to do."""

    exit_code = EXIT_UNAVAILABLE
