"""`hub agency serve NAME`: the check service's process: TLS, one socket on a free or given port, uvicorn.

Each instance holds its own index and journal, so several may run behind a load balancer; /readyz tells the
balancer which of them to send traffic to.
"""

from __future__ import annotations

import errno
import socket
import sys
from pathlib import Path

import uvicorn

from hub.agency.api import create_app
from hub.agency.check import InterceptionChecker
from hub.config import ConfigError, Settings
from hub.db import checker_role, wait_for_database
from hub.log import get_logger


class _Server(uvicorn.Server):
    """Returns after SIGTERM/SIGINT instead of re-raising the signal, so the journal is closed and the exit is 0."""

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def run_https(app, sock: socket.socket, cert: Path, key: Path) -> None:
    """Serve `app` over TLS on a bound socket until SIGTERM/SIGINT (bench/plain_https.py's baseline too)."""
    config = uvicorn.Config(
        app,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=30,
        lifespan="off",
    )
    _Server(config).run(sockets=[sock])


def tls_files(settings: Settings, server: str = "check") -> tuple[Path, Path]:
    """The certificate and key of the `check` service or the `web` server: HUB_<SERVER>_TLS_CERT_FILE and
    _KEY_FILE when set, else issued by the local stack's CA."""
    cert, key = getattr(settings, f"{server}_tls_cert_file"), getattr(settings, f"{server}_tls_key_file")
    prefix = f"HUB_{server.upper()}_TLS"
    if cert or key:
        if not (cert and key):
            raise ConfigError(f"set both {prefix}_CERT_FILE and {prefix}_KEY_FILE, or neither")
        for variable, path in ((f"{prefix}_CERT_FILE", cert), (f"{prefix}_KEY_FILE", key)):
            if not path.is_file():
                raise ConfigError(f"{variable} {path}: no such file")
        return cert, key
    from hub.devstack.secrets import check_certificate, web_certificate

    settings.local_stack()  # a clear "no local stack" before any certificate is made
    return (web_certificate if server == "web" else check_certificate)(settings.state_dir)


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        raise ConfigError(f"--port {port} on {host} {why}: choose another, or 0 for any free port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, agency: str, host: str, port: int, announce) -> None:
    """Runs until SIGTERM/SIGINT; then stops taking requests, and writes every block it answered."""
    log = get_logger("hub.serve").bind(service=agency)
    # The event loop keeps the GIL busy; the recorder and follower threads wake from database I/O and would
    # otherwise wait up to the default 5 ms for it, several times per commit, and every block waits on them.
    sys.setswitchinterval(0.0005)
    cert, key = tls_files(settings)
    sock = bind(host, port)
    wait_for_database(settings, agency, forever=True, role=checker_role(agency))
    checker = InterceptionChecker(settings, agency, keys=True)
    try:
        app = create_app(checker, settings.check_max_index_age_seconds, settings.check_rate_per_key)
        bound = sock.getsockname()[1]
        log.info("check service listening", url=f"https://{host}:{bound}", subjects=len(checker.follower.index))
        announce(f"https://{host}:{bound}", len(checker.follower.index))
        run_https(app, sock, cert, key)
    finally:
        checker.close()
        sock.close()
