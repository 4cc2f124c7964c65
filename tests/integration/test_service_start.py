"""A service whose servers do not answer: `--once` gives up after HUB_CONNECT_TIMEOUT_SECONDS with one line naming
the server and what to do (exit 3); refused credentials say so at once; a started service waits for the broker.

Nothing here stops a server: the unreachable ones are addresses where nothing listens (stopping the session's
own servers is for tests/reliability/test_service_start.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from hub.config import Settings
from hub.devstack.secrets import ca_file, kafka_password
from hub.devstack.state import free_port
from hub.errors import EXIT_UNAVAILABLE
from tests.support import hub_env

HUB = str(Path(sys.executable).parent / "hub")
TIMEOUT = 3  # HUB_CONNECT_TIMEOUT_SECONDS in these tests
MARGIN = 15  # starting Python and importing, opening the database


def once(settings: Settings, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    began = time.monotonic()
    result = subprocess.run(
        [HUB, "agency", "run", "bank", "--once"],
        env=hub_env(settings, HUB_CONNECT_TIMEOUT_SECONDS=str(TIMEOUT), **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, time.monotonic() - began


def the_error(result: subprocess.CompletedProcess) -> str:
    """The one error line; no traceback anywhere."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def kafka_elsewhere(settings: Settings, tmp_path: Path, bootstrap: str, password: str | None = None) -> dict[str, str]:
    """Settings for a broker at `bootstrap`, with the bank's credentials (or `password`) and the local CA."""
    secret = tmp_path / "kafka-password"
    secret.write_text(password if password is not None else kafka_password(settings.state_dir, "agency-bank"))
    return {
        "HUB_KAFKA_BOOTSTRAP": bootstrap,
        "HUB_KAFKA_PASSWORD_FILE": str(secret),
        "HUB_KAFKA_CA_FILE": str(ca_file(settings.state_dir)),
    }


def test_once_with_postgresql_not_answering_gives_up_after_the_connect_timeout_in_one_line(hub_settings: Settings):
    port = free_port()
    result, took = once(hub_settings, HUB_DATABASE_URL=f"postgresql://bank:unused@127.0.0.1:{port}/{{service}}")
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr[-3000:]
    assert TIMEOUT <= took < TIMEOUT + MARGIN, took
    assert the_error(result) == (
        f"error: PostgreSQL at 127.0.0.1:{port} is not answering (connection refused); check that it runs and that "
        "HUB_DATABASE_URL points at it"
    )
    waits = [json.loads(line) for line in result.stderr.splitlines() if "waiting for PostgreSQL" in line]
    assert waits and waits[0]["retry_in"] == 0.5 and waits[0]["reason"] == "connection refused", result.stderr


def test_once_with_kafka_not_answering_gives_up_after_the_connect_timeout_in_one_line(
    hub_settings: Settings, tmp_path: Path
):
    port = free_port()
    result, took = once(hub_settings, **kafka_elsewhere(hub_settings, tmp_path, f"127.0.0.1:{port}"))
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr[-3000:]
    assert TIMEOUT <= took < TIMEOUT + MARGIN, took
    assert the_error(result) == (
        f"error: Kafka at 127.0.0.1:{port} is not answering (connection refused); check that it runs and that "
        "HUB_KAFKA_BOOTSTRAP points at it"
    )


def test_refused_passwords_are_unavailable_at_once_naming_the_role(hub_settings: Settings, tmp_path: Path):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not the password")
    result, took = once(hub_settings, HUB_DATABASE_PASSWORD_FILE=str(wrong))
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr[-3000:]
    port = hub_settings.local_stack()["pg_port"]
    assert the_error(result) == (
        f"error: PostgreSQL at 127.0.0.1:{port}: the server refused role bank's password; check "
        "HUB_DATABASE_USERNAME and HUB_DATABASE_PASSWORD_FILE (see README Security)"
    )
    assert took < MARGIN, "no waiting for a password to change"

    bootstrap = hub_settings.bootstrap()
    result, took = once(hub_settings, **kafka_elsewhere(hub_settings, tmp_path, bootstrap, "not the password"))
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr[-3000:]
    assert the_error(result) == (
        f"error: Kafka at {bootstrap}: the broker refused principal agency-bank's password (see README Security)"
    )


def test_a_started_service_waits_for_kafka_with_growing_back_off(hub_settings: Settings, tmp_path: Path):
    """Not `--once`: the connect timeout does not apply, the service waits and says so."""
    port = free_port()
    log = tmp_path / "bank.log"
    env = hub_env(
        hub_settings, HUB_CONNECT_TIMEOUT_SECONDS="1", **kafka_elsewhere(hub_settings, tmp_path, f"127.0.0.1:{port}")
    )
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([HUB, "agency", "run", "bank"], env=env, stdin=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        waits: list[dict] = []
        while len(waits) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            lines = log.read_text(errors="replace").splitlines()
            waits = [json.loads(line) for line in lines if line.startswith("{") and "waiting for Kafka" in line]
        assert proc.poll() is None, log.read_text()[-3000:]
        assert [w["retry_in"] for w in waits[:4]] == [0.5, 1, 2, 4], waits
        assert waits[0]["event"] == (f"waiting for Kafka at 127.0.0.1:{port}: connection refused; retrying in 0.5s"), (
            waits[0]
        )
        assert {w["level"] for w in waits} == {"warning"}
    finally:
        proc.send_signal(signal.SIGTERM)  # while waiting it has nothing to finish: SIGTERM ends it
        proc.wait(timeout=30)
