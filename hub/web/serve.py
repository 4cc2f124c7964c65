"""`hub web serve`'s process: TLS on one socket (the check service's runner, hub/agency/serve.py), uvicorn."""

from __future__ import annotations

from collections.abc import Callable

from hub.agency.serve import bind, run_https, tls_files
from hub.config import Settings
from hub.db import WEB, wait_for_database
from hub.log import get_logger
from hub.web.accounts import Accounts, open_database
from hub.web.app import create_app
from hub.web.sources import Sources


def serve(settings: Settings, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Runs until SIGTERM/SIGINT. Its own database is migrated first; the register's and the ledger's are read
    when pages ask (a page says so while one is not there yet)."""
    log = get_logger("hub.web")
    cert, key = tls_files(settings, "web")
    sock = bind(host, port)
    web_db = open_database(settings, forever=True)
    wait_for_database(settings, WEB, forever=True)
    sources = Sources(settings)
    try:
        app = create_app(settings, sources, Accounts.for_settings(settings, web_db))
        url = f"https://{host}:{sock.getsockname()[1]}"
        log.info("web server listening", url=url)
        announce(url)
        run_https(app, sock, cert, key)
    finally:
        sources.close()
        web_db.dispose()
        sock.close()
