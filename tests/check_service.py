"""`hub agency serve NAME` and `hub web serve` processes for the tests, started as an operator would, and
clients for them."""

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
from hub.domain.ids import RESIDENT_LIKE, is_resident_id
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


class HubServer:
    """A `hub ... serve` process on a free port; ready once `ready_path` answers 200."""

    ready_path = "/healthz"

    def __init__(self, settings: Settings, log: Path, **env: str):
        self.settings = settings
        self.env = hub_env(settings, **env)
        self.log = log
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 120):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [HUB, *self.command(), "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                assert self.proc.poll() is None, f"{' '.join(self.command())} exited:\n{self.tail()}"
                try:
                    if client.get(self.ready_path).status_code == 200:
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

    def __enter__(self):
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.discard()


class CheckService(HubServer):
    ready_path = "/readyz"

    def __init__(self, settings: Settings, agency: str, log: Path, **env: str):
        super().__init__(settings, log, **env)
        self.agency = agency

    def command(self) -> list[str]:
        return ["agency", "serve", self.agency]


def full_resident_ids(body: str) -> list[str]:
    """Every valid resident ID number in a response body: there must be none."""
    return [m.group() for m in RESIDENT_LIKE.finditer(body) if is_resident_id(m.group())]


class WebServer(HubServer):
    """`hub web serve`; its clients fail a test on any response that holds a full resident ID number."""

    def command(self) -> list[str]:
        return ["web", "serve"]

    def client(self, key: str | None = None, **kwargs) -> httpx.Client:
        def guard(response: httpx.Response) -> None:
            response.read()
            found = full_resident_ids(response.text)
            assert not found, f"{response.request.url} answered with full resident ID numbers {found}"

        return super().client(key, event_hooks={"response": [guard]}, **kwargs)
