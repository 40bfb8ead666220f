"""The test tree itself: pytest imports each test file by its base name (the folders are no packages), so two
files of one name, one in tests/unit and one in tests/integration, stop the whole run with "import file
mismatch". Said here, in the unit tests, before a two-hour CI run says it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_no_two_test_files_share_a_name():
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        by_name[path.name].append(str(path.relative_to(TESTS)))
    assert by_name, "no test file found"
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not clashes, f"rename one of each: {clashes}"
