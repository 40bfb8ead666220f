"""The docs' count of `netlab break`'s faults is the catalogue's (QA im60 4): docs/reliability.md said "the 14
faults of the catalogue" when `break --list` and the README had 15."""

from __future__ import annotations

import re
from pathlib import Path

from netlab.breaks import catalogue

ROOT = Path(__file__).resolve().parents[2]
COUNT = re.compile(r"\b(?:catalogue of (\d+)\b|(?:one of|the) (\d+) (?:real )?(?:faults|scenarios|break scenarios)\b)")


def test_every_count_of_the_faults_in_the_docs_is_the_catalogue_s():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    said = [(f.name, int(a or b)) for f in files for a, b in COUNT.findall(f.read_text())]
    assert said, "no count found: the pattern went stale"
    assert [s for s in said if s[1] != len(catalogue.SCENARIOS)] == []
