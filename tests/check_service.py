"""A `hub agency serve NAME` process for the tests, started as an operator would, and clients for it."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hub.config import Settings
from hub.devstack.secrets import ca_file
from tests.support import hub_env, run_hub

HUB = str(Path(sys.executable).parent / "hub")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_key(settings: Settings, agency: str, system: str, *options: str) -> str:
    done = run_hub(settings, "agency", "keys", "add", agency, "--system", system, *options)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class CheckService:
    def __init__(self, settings: Settings, agency: str, log: Path, **env: str):
        self.settings = settings
        self.agency = agency
        self.env = hub_env(settings, **env)
        self.log = log
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> CheckService:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [HUB, "agency", "serve", self.agency, "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                assert self.proc.poll() is None, f"the check service exited:\n{self.tail()}"
                try:
                    if client.get("/readyz").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"not ready within {timeout:.0f}s:\n{self.tail()}"
                time.sleep(0.2)

    def client(self, key: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=ca_file(self.settings.state_dir)),
            headers=headers,
            timeout=30,
            **kwargs,
        )

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.tail()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def discard(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def __enter__(self) -> CheckService:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.discard()
