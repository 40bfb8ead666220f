"""Hostile and malformed topologies: every one is refused cleanly by ``netlab validate``.

Each file in ``bad/`` starts with ``# expect: <text>`` (a substring of the
error), optionally ``# line: N`` (or ``none`` for a problem with the file as a
whole) and ``# field: path`` for the problem carrying that text, and
``# problems: N``, the number of problems it has (one line per mistake: a
duplicate name is not said again through its consequences; a mistake hides
no other). The cases too
big or too strange to commit (100,000-deep nesting, an over-size file, a FIFO,
a 1024-pod node, bytes that are not UTF-8) are written at run time.

For every case ``netlab validate -t FILE`` must: exit 2, print
``FILE:LINE: field: message`` lines (``FILE: message`` for file-level
problems; after the model's problems, a last line saying the cross-checks
wait for them) and no traceback, mention the expected text, and finish in under 2
seconds. Every case runs through the CLI's own entry point inside this process
(``netlab.cli.main``, see cli_inprocess.py: an escaping exception counts as the
traceback a process would print); a handful that cover each layer (YAML
syntax and limits, the file itself, the model, the cross-field checks, both
parsers) run again as separate processes the way a user runs netlab,
where only a real process can show a traceback at start-up or a crash, and
where the 2 seconds include Python's start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from cli_inprocess import run_cli

from netlab.model import yamlsource
from netlab.model.load import MAX_BYTES, UNCHECKED

BAD = Path(__file__).parent / "bad"


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    expect: str
    line: int | None | str = "any"  # a number, None (no line: file-level), or "any"
    field: str | None = None
    count: int | None = None  # the number of problems, when the case says it


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float


def _committed_cases() -> list[Case]:
    cases = []
    for path in sorted(BAD.glob("*.yaml")):
        head = path.read_bytes().decode("utf-8", "replace").splitlines()
        match = re.match(r"^# expect: (.+)$", head[0]) if head else None
        assert match, f"{path.name}: the first line must be '# expect: <text>'"
        line: int | None | str = "any"
        field, count = None, None
        for extra in head[1:4]:
            if m := re.match(r"^# line: (\d+|none)$", extra):
                line = None if m.group(1) == "none" else int(m.group(1))
            if m := re.match(r"^# field: (\S+)$", extra):
                field = m.group(1)
            if m := re.match(r"^# problems: (\d+)$", extra):
                count = int(m.group(1))
        cases.append(Case(path.stem, path, match.group(1), line, field, count))
    return cases


def _generated_cases(root: Path) -> list[Case]:
    """Cases written at run time: too large, too strange or not a file at all."""
    nodes = "nodes: [{name: a}]\n"
    out = []

    def write(name: str, data: bytes, expect: str, line: int | None | str = "any", field: str | None = None) -> None:
        path = root / f"{name}.yaml"
        path.write_bytes(data)
        out.append(Case(name, path, expect, line, field))

    deep = 100_000
    write("deep-flow-100000", ("name: x\nnodes: " + "[" * deep + "]" * deep + "\n").encode(),
          "nested deeper than 32 levels", 2)
    write("deep-mapping-100000", ("name: x\nnodes: " + "{a: " * deep + "1" + "}" * deep + "\n").encode(),
          "nested deeper than 32 levels", 2)
    write("deep-block-100000", ("name: x\nnodes:\n" + "- " * deep + "a\n").encode(), "nested deeper than 32 levels", 3)
    write("deep-unclosed-100000", ("[" * deep).encode(), "nested deeper than 32 levels", 1)
    write("oversize", (f"name: x\n{nodes}" + "#" * 79 + "\n").encode() * (MAX_BYTES // 80 + 10),
          f"over the {MAX_BYTES}-byte limit", None)
    write("empty", b"", "file is empty", None)
    write("not-utf8", b"name: x\nnodes: [{name: \xff\xfe}]\n", "is not valid UTF-8", 2)
    write("control-character", b"name: x\n" + nodes.encode() + b"pods: [{name: p\x1b[31m, node: a}]\n",
          "is not allowed in YAML", 3)
    write("nul-byte", b"name: x\x00\n" + nodes.encode(), "is not allowed in YAML", 1)
    write("lone-surrogate-escape", b'name: "\\ud800"\n' + nodes.encode(), "invalid Unicode character escape", 1, "name")
    pods = "".join(f"{{name: p{i}, node: a}}," for i in range(1024))
    write("too-many-pods-for-bridge", f"name: x\ncluster: {{nodeMask: 21}}\n{nodes}pods: [{pods}]\n".encode(),
          "1024 pods on node 'a', but its cni0 bridge takes at most 1023 ports", 4, "pods[1023].node")
    fifo = root / "fifo.yaml"
    os.mkfifo(fifo)  # nobody ever writes to it: reading it would block forever
    out.append(Case("fifo", fifo, "is not a regular file", None))
    out.append(Case("missing-file", root / "no-such-file.yaml", "no such file", None))
    return out


# The CLI as installed (libyaml's C parser), and as on a PyYAML built without libyaml: importing
# yaml._yaml fails, so PyYAML (and the loader) fall back to the pure-Python parser.
NO_LIBYAML = "import sys; sys.modules['yaml._yaml'] = None; "
PARSERS = {
    "libyaml": [sys.executable, "-m", "netlab"],
    "python": [sys.executable, "-c", NO_LIBYAML + "from netlab.cli import main; sys.argv[0] = 'netlab'; main()"],
}


def _run_process(case: Case, parser: str) -> Result:
    start = time.monotonic()
    proc = subprocess.run(PARSERS[parser] + ["validate", "-t", str(case.path)],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def _run_in_process(case: Case, parser: str) -> Result:
    """The same command through netlab.cli.main; "python": the loader without libyaml's parser."""
    with mock.patch.object(yamlsource, "_FastParser", None if parser == "python" else yamlsource._FastParser):
        assert (yamlsource._FastParser is None) == (parser == "python")
        start = time.monotonic()
        proc = run_cli("validate", "-t", str(case.path))
        elapsed = time.monotonic() - start
    return Result(proc.returncode, proc.stdout, proc.stderr, elapsed)


COMMITTED = _committed_cases()
GENERATED_NAMES = ["deep-flow-100000", "deep-mapping-100000", "deep-block-100000", "deep-unclosed-100000",
                   "oversize", "empty", "not-utf8", "control-character", "nul-byte", "lone-surrogate-escape",
                   "too-many-pods-for-bridge", "fifo", "missing-file"]


# Every case on libyaml; the generated ones (depth, size, bytes: where the two parsers have
# limits and readers of their own) on the pure-Python parser too. All of them in this process.
RUNS = [(c.name, "libyaml") for c in COMMITTED] + [(n, p) for n in GENERATED_NAMES for p in PARSERS]
# Again as separate processes: one case per layer, and both parsers at their limits.
PROCESS_RUNS = [
    ("syntax-unclosed-quote", "libyaml"),  # YAML syntax error, located
    ("mode-invalid", "libyaml"),  # the pydantic model
    ("duplicate-node", "libyaml"),  # the cross-field checks
    ("deep-flow-100000", "libyaml"),  # nesting: libyaml's own limit speaks first
    ("deep-unclosed-100000", "python"),  # nesting on the pure-Python parser
    ("fifo", "libyaml"),  # the file: not a regular file, must not block
]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[tuple[str, str, str], tuple[Case, Result]]:
    """Run every case once per parser (and the PROCESS_RUNS again as processes), one at a time,
    so each timing is its own run's wall time."""
    root = tmp_path_factory.mktemp("bad-generated")
    cases = COMMITTED + _generated_cases(root)
    assert [c.name for c in cases[len(COMMITTED):]] == GENERATED_NAMES
    by_name = {c.name: c for c in cases}
    out = {(name, parser, "in-process"): (by_name[name], _run_in_process(by_name[name], parser))
           for name, parser in RUNS}
    out.update({(name, parser, "process"): (by_name[name], _run_process(by_name[name], parser))
                for name, parser in PROCESS_RUNS})
    return out


def test_the_python_parser_runs_really_lack_libyaml():
    code = NO_LIBYAML + "import yaml, netlab.model.yamlsource as y; print(yaml.__with_libyaml__, y._FastParser)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.stdout == "False None\n", proc.stdout + proc.stderr


def test_corpus_is_big_enough():
    assert len(COMMITTED) >= 45
    assert len(COMMITTED) + len(GENERATED_NAMES) >= 50


def test_corpus_files_are_small():
    for case in COMMITTED:
        assert case.path.stat().st_size < 8 * 1024, f"{case.name}: keep corpus files small; generate big ones"


def test_the_process_runs_are_cases_of_the_corpus():
    assert set(PROCESS_RUNS) <= set(RUNS)
    assert {p for _, p in PROCESS_RUNS} == set(PARSERS)


@pytest.mark.parametrize("name,parser", PROCESS_RUNS)
def test_in_process_and_process_runs_say_the_same(results, name, parser):
    _, inside = results[(name, parser, "in-process")]
    _, process = results[(name, parser, "process")]
    assert (inside.returncode, inside.stdout, inside.stderr) == (process.returncode, process.stdout, process.stderr)


def test_an_exception_escaping_the_cli_in_process_shows_as_a_traceback(monkeypatch):
    """What makes "no traceback" checkable in-process: an escaping error is printed as a process would."""
    import netlab.api.topology as topology  # where netlab validate's load comes from

    def broken(path, **options):
        raise KeyError("boom")

    monkeypatch.setattr(topology, "load", broken)
    res = run_cli("validate", "-t", "x.yaml")
    assert res.returncode == 1
    assert res.stderr.startswith("Traceback (most recent call last):") and "KeyError: 'boom'" in res.stderr


@pytest.mark.parametrize("name,parser,how", [(n, p, "in-process") for n, p in RUNS]
                         + [(n, p, "process") for n, p in PROCESS_RUNS])
def test_bad_topology_is_refused(results, name, parser, how):
    case, res = results[(name, parser, how)]
    output = res.stdout + res.stderr
    assert res.returncode == 2, f"exit {res.returncode}, want 2\n{output}"
    assert "Traceback" not in output, output
    lines = res.stderr.splitlines()
    if lines and lines[-1] == f"netlab: {UNCHECKED}":  # after the model's problems: the cross-checks wait for them
        lines.pop()
    assert lines, "nothing on stderr"
    file = re.escape(str(case.path))
    located = re.compile(rf"^{file}:(?P<line>[1-9][0-9]*): (?P<field>\S+): (?P<msg>\S.*)$")
    whole = re.compile(rf"^{file}: (?P<msg>\S.*)$")
    pattern = whole if case.line is None else located
    for text in lines:
        assert pattern.match(text), f"stderr line not in the '{pattern.pattern}' form: {text!r}"
    assert case.count is None or len(lines) == case.count, f"want {case.count} problems:\n{res.stderr}"
    hits = [text for text in lines if case.expect in text]
    assert hits, f"no stderr line says {case.expect!r}:\n{res.stderr}"
    if isinstance(case.line, int):
        assert any(located.match(t).group("line") == str(case.line) for t in hits), \
            f"want line {case.line}:\n{res.stderr}"
    if case.field is not None:
        assert any(located.match(t).group("field") == case.field for t in hits), \
            f"want field {case.field}:\n{res.stderr}"
    # A hang is caught by the run's 30 s timeout; how fast a refusal is belongs to scripts/bench_validate.py
    # (a time limit here failed under load), and test_load counts the events a deep document costs.
