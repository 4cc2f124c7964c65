"""The repository stands alone: no file refers to anything outside it.

Users get the checkout and nothing else, so a comment, a docstring, a help text or a document that sends
them to a path beside or above the checkout (a sibling folder, an absolute path on a developer's machine, a
design document kept elsewhere) points at nothing. The design is docs/design.md, cited as `docs/design.md §n`.

Checked: every text file git knows of here (tracked, and new files not yet added unless git ignores them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DESIGN = "docs/design.md"

# Built from pieces, so that this file does not match its own patterns.
OUTSIDE = [
    (re.compile(r"\.\./" + "shared"), "a sibling folder of the checkout"),
    (re.compile(r"(?<![\w.-])/" + "work/"), "an absolute path on a developer's machine"),
    (re.compile("DESIGN" + r"\s*§"), f"the old design document's sections: cite {DESIGN} §n"),
]
DESIGN_FILE = re.compile(r"[\w./-]*design\.md", re.IGNORECASE)


def _files() -> list[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot list the repository's files")
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except subprocess.CalledProcessError:
        pytest.skip("not a git checkout (a tarball?): cannot list the repository's files")
    if Path(top).resolve() != ROOT:
        pytest.skip(f"the project is not the top of its git work tree ({top}): cannot list its files alone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return sorted({name for name in listed.decode("utf-8", "surrogateescape").split("\0") if name})


def _text(path: Path) -> str | None:
    """The file's text, or None for a binary file (NUL bytes, or not UTF-8) or one deleted in the work tree."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _design_reference_ok(name: str, found: str) -> bool:
    """docs/design.md itself: named from the top of the repository, or as a relative link from the file."""
    if found == DESIGN:
        return True
    relative = os.path.normpath(os.path.join(os.path.dirname(name), found))
    return found.endswith(DESIGN) and relative == DESIGN


def test_no_file_refers_outside_the_repository():
    files = _files()
    assert files, "git lists no files"
    problems = []
    checked = 0
    for name in files:
        text = _text(ROOT / name)
        if text is None:
            continue
        checked += 1
        for number, line in enumerate(text.splitlines(), start=1):
            found = [(m.group(), why) for pattern, why in OUTSIDE for m in pattern.finditer(line)]
            found += [
                (m.group(), f"a design document other than {DESIGN}")
                for m in DESIGN_FILE.finditer(line)
                if not _design_reference_ok(name, m.group())
            ]
            problems += [f"{name}:{number}: {what!r} ({why}): {line.strip()[:160]}" for what, why in found]
    assert checked, "no text file among the files git lists"
    assert not problems, (
        f"{len(problems)} reference(s) to something outside the repository; cite files inside it "
        f"(the design is {DESIGN}):\n" + "\n".join(problems)
    )


def test_the_design_document_is_in_the_repository():
    assert (ROOT / DESIGN).is_file(), f"{DESIGN} is missing: README.md and the code cite its sections"
