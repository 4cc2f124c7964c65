"""The ceiling of Python HTTPS on this machine: uvicorn serving a raw ASGI callable (no framework) that reads
the request's body and answers a fixed small JSON, on the check service's certificate and uvicorn settings.

P3 loads it with the same `wrk` command as `hub agency serve`, so the check service's figures can be read
against what the HTTP stack alone allows here.

Usage: python -m bench.plain_https --port P [--host 127.0.0.1]   (runs until SIGTERM/SIGINT)
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable

import uvicorn

from hub.config import Settings
from hub.devstack.secrets import check_certificate

BODY = b'{"decision":"ALLOWED","subject":"plain","measure":"plain","entries":[]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict, receive: Callable, send: Callable) -> None:
    if scope["type"] != "http":
        return
    while True:  # read the whole body, as the check service does
        message = await receive()
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


class _Server(uvicorn.Server):
    """Returns after SIGTERM instead of re-raising it, so the exit is 0 (as hub.agency.serve does)."""

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_https", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    cert, key = check_certificate(Settings().state_dir)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    config = uvicorn.Config(  # the check service's settings (hub/agency/serve.py), but for the app
        app,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=30,
        lifespan="off",
    )
    print(f"plain https on https://{args.host}:{sock.getsockname()[1]}", flush=True)
    _Server(config).run(sockets=[sock])
    sock.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
