"""Every `hub` command, as a new user meets it when something is wrong: the servers down, a bad setting, a bad
argument. Each says what is wrong in a line or two, with the exit code README.md documents, and no traceback."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub.devstack.state import free_port
from hub.errors import EXIT_FOUND, EXIT_UNAVAILABLE, EXIT_USAGE
from tests.support import PERSON_ID

HUB = str(Path(sys.executable).parent / "hub")
EXAMPLE = str(Path(__file__).resolve().parents[2] / "producers" / "examples" / "court-events.jsonl")
CHECK = ["--subject", PERSON_ID, "--measure", "LOAN_RESTRICTED"]

# Every command that reaches a server, with the words its message must carry when that server is down.
NEEDS_A_SERVER = [
    (["topics", "create"], "Kafka"),
    (["topics", "describe"], "Kafka"),
    (["acl", "apply"], "Kafka"),
    (["acl", "describe"], "Kafka"),
    (["court", "publish", EXAMPLE], "Kafka"),
    (["court", "simulate", "--debtors", "3", "--seed", "1", "--publish"], "Kafka"),
    (["agency", "run", "bank", "--once"], "PostgreSQL"),
    (["agency", "check", "bank", *CHECK], "PostgreSQL"),
    (["db", "migrate", "bank"], "PostgreSQL"),
    (["ledger", "run", "--once"], "PostgreSQL"),
    (["ledger", "report"], "PostgreSQL"),
    (["audit", "replay"], "Kafka"),
    (["audit", "verify"], "Kafka"),
    (["demo", "--debtors", "3"], "Kafka"),
]


def _run_all(commands: list[list[str]], env: dict[str, str], timeout: float = 120) -> list[subprocess.CompletedProcess]:
    """Side by side: most of them wait for a server that never answers."""
    procs = [
        subprocess.Popen([HUB, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in commands
    ]
    done = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess([HUB, *args], proc.returncode, out, err))
    return done


def _assert_clear(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    said = result.stdout + result.stderr
    command = " ".join(result.args[1:])
    assert "Traceback" not in said, f"hub {command} showed a traceback:\n{said}"
    assert result.returncode == code, f"hub {command} exited {result.returncode}, not {code}:\n{said}"
    for word in words:
        assert word in result.stderr, f"hub {command} did not say {word!r}:\n{said}"
    # Besides its logs (JSON lines: a --once run logs its waiting), a line or two; a usage error also shows
    # the usage line and where to get help.
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert 0 < len(lines) <= 4, f"hub {command} said too much:\n{said}"


@pytest.fixture
def stack_down(stack, tmp_path) -> dict[str, str]:
    """A state folder like the session's (its secrets), pointing at ports where nothing listens."""
    state = tmp_path / "state"
    state.mkdir()
    shutil.copytree(stack.state_dir / "secrets", state / "secrets")
    real = json.loads((stack.state_dir / "stack.json").read_text())
    down = {**real, "kafka_port": free_port(), "kafka_controller_port": free_port(), "pg_port": free_port()}
    (state / "stack.json").write_text(json.dumps(down))
    return stack.environment(HUB_STATE_DIR=str(state), HUB_NAMESPACE="", HUB_CONNECT_TIMEOUT_SECONDS="2")


def test_with_the_servers_down_every_command_says_which_and_what_to_do(stack_down):
    results = _run_all([args for args, _ in NEEDS_A_SERVER], stack_down)
    for (_args, server), result in zip(NEEDS_A_SERVER, results, strict=True):
        _assert_clear(result, EXIT_UNAVAILABLE, server, "not answering", "hub dev up")
    status = subprocess.run([HUB, "dev", "status"], env=stack_down, capture_output=True, text=True, timeout=60)
    assert status.returncode == EXIT_FOUND and "Traceback" not in status.stdout + status.stderr
    assert "DOWN" in status.stdout


def test_a_bad_setting_names_its_variable_in_every_command(stack):
    env = stack.environment(HUB_BATCH_SIZE="abc")
    commands = [args for args, _ in NEEDS_A_SERVER] + [["dev", "status"], ["dev", "up"]]
    for result in _run_all(commands, env):
        _assert_clear(result, EXIT_USAGE, "HUB_BATCH_SIZE")


def test_bad_arguments_are_refused_with_the_accepted_values(stack):
    env = stack.environment()
    cases = [
        (["agency", "run", "nosuch", "--once"], "nosuch"),
        (["agency", "check", "bank", "--subject", "123", "--measure", "LOAN_RESTRICTED"], "123"),
        (["agency", "check", "bank", "--subject", PERSON_ID, "--measure", "NOPE"], "LOAN_RESTRICTED"),
        (["ledger", "report", "--rule", "NOPE"], "SHIELD_OVERDUE"),
        (["ledger", "report", "--as-of", "yesterday-ish"], "--as-of"),
        (["court", "simulate", "--debtors", "3", "--seed", "1", "--out", "history.txt"], ".csv"),
        (["court", "publish", "/nonexistent/court-file.jsonl"], "/nonexistent/court-file.jsonl"),
        (["agency", "run", "bank", "--metrics-port", "70000"], "65535"),
        (["db", "migrate", "nosuch"], "nosuch"),
        (["nosuch"], "nosuch"),
    ]
    results = _run_all([args for args, _ in cases], env)
    for (args, word), result in zip(cases, results, strict=True):
        code = 1 if args[:2] == ["court", "publish"] else EXIT_USAGE  # an unreadable court file is invalid input
        _assert_clear(result, code, word)
