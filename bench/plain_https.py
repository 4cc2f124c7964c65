"""The ceiling of Python HTTPS on this machine: uvicorn serving a raw ASGI callable (no framework) that reads
the request's body and answers a fixed small JSON, on the check service's certificate and uvicorn settings.

P3 loads it with the same `wrk` command as `hub agency serve`, so the check service's figures can be read
against what the HTTP stack alone allows here.

Usage: python -m bench.plain_https --port P [--host 127.0.0.1]   (runs until SIGTERM/SIGINT)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from hub.agency.serve import bind, run_https
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_https", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    cert, key = check_certificate(Settings().state_dir)
    sock = bind(args.host, args.port)
    print(f"plain https on https://{args.host}:{sock.getsockname()[1]}", flush=True)
    run_https(app, sock, cert, key)  # the check service's own server settings
    sock.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
