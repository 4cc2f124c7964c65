"""The README's tour (the block after `<!-- tour -->`), run line by line as a user would, in a fresh namespace:
each line exits 0 and prints what its `# →` comment says."""

import re
import shlex
from pathlib import Path

from tests.support import run_hub

ROOT = Path(__file__).resolve().parents[2]


def _tour() -> list[tuple[list[str], str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- tour -->\n```sh\n(.*?)```", text, flags=re.S)
    assert block, "README.md has no tour block"
    lines = []
    for line in block.group(1).splitlines():
        command, _, expected = line.partition("# →")
        lines.append((shlex.split(command)[1:], expected.strip()))
    return lines


def test_the_readme_tour_does_what_it_says(hub_settings):
    tour = _tour()
    assert len(tour) >= 5
    for args, expected in tour:
        args = [str(ROOT / a) if a.startswith("producers/") else a for a in args]
        result = run_hub(hub_settings, *args)
        said = result.stdout + result.stderr
        assert result.returncode == 0, f"hub {' '.join(args)} exited {result.returncode}:\n{said}"
        assert expected in said, f"hub {' '.join(args)} did not print {expected!r}:\n{said}"
