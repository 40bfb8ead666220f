"""The README names as commands only what `netlab` runs: a word set beside commands (`trace`/`reach`,
`trace`, `probe` and `reach`) reads as one of them, and there is no `netlab reach` (only the API's Lab.reach)."""

from __future__ import annotations

import re
from pathlib import Path

from netlab.cli.base import COMMANDS

README = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
WORD = r"`([a-z][a-z-]*)`"


def _groups() -> list[list[str]]:
    """Backquoted words joined as alternatives (`a`/`b`) or in a list (`a`, `b` and `c`)."""
    found = [re.findall(WORD, m.group(0)) for m in re.finditer(rf"{WORD}(?:/{WORD})+", README)]
    found += [re.findall(WORD, m.group(0)) for m in re.finditer(rf"{WORD}(?:, {WORD})* (?:and|or) {WORD}", README)]
    return found


def test_the_commands_the_readme_lists_together_are_all_commands():
    names = set(COMMANDS)
    assert "reach" not in names
    mixed = [words for words in _groups()
             if sum(w in names for w in words) >= 2 - (len(words) == 2) and not all(w in names for w in words)]
    assert mixed == []
