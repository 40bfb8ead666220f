"""docs/reliability.md names, for each guarantee, the test that proves it: every file and test it names is there.

Its rows went stale as tests moved or were renamed (test_lab_fake.py's tests split into test_lab_fake_changes.py, a
test renamed when half of it moved, a live test named in another file): a reader running the named node id got "not
found". A test column cites `path.py::test_name[ids]`, `::test_name` and a bare `test_name` (both of the file named
last in that cell), and files alone; a bare `test_x.py` is a root test in tests/integration or one in tests/unit.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
_CELL = re.compile(r"(?<!\\)\|")
_FILE = re.compile(r"^(?P<file>(?:[\w*-]+/)*[\w*-]+\.(?:py|sh|yaml))(?:::(?P<test>\w+)(?:\[[^\]]*\])?)?$")
_MORE = re.compile(r"^(?:::)?(?P<test>test_\w+)(?:\[[^\]]*\])?$")


def table_cells(text: str) -> list[tuple[int, str]]:
    """(line number, test cell) of every row of the tables whose last column is `test`."""
    cells: list[tuple[int, str]] = []
    in_table = False
    for n, line in enumerate(text.splitlines(), 1):
        if not line.startswith("|"):
            in_table = False
            continue
        parts = [p.strip() for p in _CELL.split(line.strip())[1:-1]]
        if set(line) <= set("|- "):
            continue
        if parts and parts[0] == "guarantee":
            in_table = parts[-1] == "test"
        elif in_table and parts:
            cells.append((n, parts[-1]))
    return cells


def candidates(name: str) -> list[Path]:
    """The files a name in a test cell may be: a path from the repository's root, or a bare test file's name."""
    if "/" in name:
        return [ROOT / name]
    return [ROOT / "tests" / where / name for where in ("integration", "unit")]


def references(text: str) -> list[tuple[int, str, str | None]]:
    """(line, file, test or None) for every file and test the test column names."""
    refs: list[tuple[int, str, str | None]] = []
    for n, cell in table_cells(text):
        last: str | None = None
        for token in re.findall(r"`([^`]*)`", cell):
            m = _FILE.match(token)
            if m:
                last = m.group("file")
                refs.append((n, last, m.group("test")))
                continue
            m = _MORE.match(token)
            if m and (token.startswith("::") or last is not None):
                assert last is not None, f"line {n}: `{token}` names no file before it"
                refs.append((n, last, m.group("test")))
    return refs


def defines(path: Path, test: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?def {re.escape(test)}\(", path.read_text(), re.M) is not None


def problems(text: str) -> list[str]:
    out = []
    for n, name, test in references(text):
        if "*" in name:
            if not glob.glob(str(ROOT / name)):
                out.append(f"line {n}: {name} matches no file")
            continue
        files = [p for p in candidates(name) if p.is_file()]
        if not files:
            out.append(f"line {n}: {name} does not exist")
        elif test and not any(defines(p, test) for p in files):
            out.append(f"line {n}: {name} has no {test}")
    return out


def test_every_file_and_test_reliability_md_names_is_there() -> None:
    text = DOC.read_text()
    assert len(references(text)) > 300  # the parser reads the page's rows, not none of them
    assert problems(text) == []


def test_the_parser_reads_each_way_a_row_names_a_test() -> None:
    text = ("| guarantee | how | test |\n|---|---|---|\n"
            "| g | `kernel/nofile.py` | `tests/unit/test_x.py::test_a[p/q]`, `::test_b`, `test_c`, `up`, "
            "`test_y.py`, `tests/unit/bad/*.yaml` |\n\n| what | figure |\n|---|---|\n| `a.py` | `b.py::test_d` |\n")
    assert references(text) == [(3, "tests/unit/test_x.py", "test_a"), (3, "tests/unit/test_x.py", "test_b"),
                                (3, "tests/unit/test_x.py", "test_c"), (3, "test_y.py", None),
                                (3, "tests/unit/bad/*.yaml", None)]
    assert problems(text) == 3 * ["line 3: tests/unit/test_x.py does not exist"] + ["line 3: test_y.py does not exist"]


def test_the_page_says_where_a_namespaces_tag_lives_as_the_kernel_door_writes_it() -> None:
    """It said a namespace is "tagged on `lo` (`netlab:<lab>:<run id>`)": no such string is on lo (nor anywhere `ip`
    prints); the tag is three devconf sysctls of hashes (kernel/nstag.TAG_SYSCTLS), which a reader looks at to tell a
    lab's namespace from a look-alike. `down --help` said the same."""
    from cli_inprocess import run_cli

    from netlab.kernel.nstag import TAG_SYSCTLS

    text = DOC.read_text()
    assert all(key in text for key in TAG_SYSCTLS)
    said = " ".join(run_cli("down", "--help").stdout.split())
    assert TAG_SYSCTLS[0] in said
    for where in (text, said):
        assert not re.search(r"`?lo`? carries|tagged on `lo`|netlab:<lab>:<", where)
