"""The README's `hub` examples are commands the CLI accepts: a renamed option or command fails here, so the
README cannot drift from the code. (What the examples do is run by `make demo` and the integration tests.)"""

import re
import shlex
from pathlib import Path

import pytest
import typer.main
from typer._click.exceptions import MissingParameter

from hub.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
# A placeholder the reader fills in (NAME, FILE, ...), or syntax that describes rather than shows a command.
_TEMPLATE = re.compile(r"\b[A-Z][A-Z_]*[A-Z]\b|\b[A-Z]\b|\.\.\.|[\[\]<>{}]|\\\|")


def _commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"`((?:\.venv/bin/)?hub [^`]+)`", text)
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, flags=re.S):
        found += [line.strip() for line in block.splitlines() if re.match(r"\s*(\.venv/bin/)?hub ", line)]
    out = []
    for command in found:
        command = re.split(r"\s+(?:#|>|\||&&)\s", command)[0].strip()
        command = command.removeprefix(".venv/bin/")
        if not _TEMPLATE.search(command.removeprefix("hub ")):
            out.append(command)
    return sorted(set(out))


def _parse(args: list[str]) -> list[str]:
    """The command path `args` resolves to, its options and arguments parsed as the CLI would. Without any
    option the words are a command named in prose (`hub agency check bank`): its required options may be
    left out, but not a word the CLI does not know."""
    strict = any(a.startswith("-") for a in args)
    cli = typer.main.get_command(app)
    path = []
    try:
        ctx = cli.make_context("hub", list(args), resilient_parsing=not strict)
        command = cli
        while hasattr(command, "resolve_command"):
            rest = [*ctx._protected_args, *ctx.args]  # the subcommand and its arguments, not parsed yet
            if not rest:
                break
            name, command, rest = command.resolve_command(ctx, rest)
            path.append(name)
            ctx = command.make_context(name, rest, parent=ctx, resilient_parsing=not strict)
        if not strict and ctx.args:
            raise AssertionError(f"words the CLI does not know: {ctx.args}")
    except typer.Exit:
        pass  # --version, -h: eager options that answer and exit
    except MissingParameter:
        pass  # prose naming an option (`hub court publish --history`): the option exists, the file is elided
    return path


def test_the_readme_has_examples_to_check():
    assert len(_commands()) >= 20


@pytest.mark.parametrize("command", _commands())
def test_a_readme_example_is_a_command_the_cli_accepts(command):
    args = shlex.split(command)[1:]
    path = _parse(args)
    assert path or args == ["--version"], command
