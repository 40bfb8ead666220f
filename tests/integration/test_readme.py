"""Every command block of README.md, run against real labs (root).

README.md is parsed when the tests are collected, so an edited README is
tested as it stands. Each fenced ``sh`` block is one scenario, run line by
line with ``bash`` from the checkout's root:

- a block whose first command is ``netlab up`` brings up its own lab; any other
  block runs against the default lab, brought up first; every lab the block
  touched is taken down after it, and no namespace of it may remain;
- the default exit code is 0; a comment that says ``exit N`` expects N (the
  README's broken-lab example exits 1); a ``key=value`` token in a comment
  (``ttl=62``) must appear in the command's output;
- the README's ``yaml`` topology example is validated, brought up, probed
  (``netlab probe`` must pass), checked with ``status`` and taken down.

Rewritten, so that the test can share this machine with other people's labs:

- lab names: ``demo`` (the built-in default) and the name of every file given
  with ``-t`` become unique names with this suite's prefix, in the commands
  (``demo-fedora-1`` -> ``ecXXXXX-fedora-1``, ``svc-node-1``...) and in a
  renamed copy of the topology file; ``netlab up`` without ``-t`` brings up
  that renamed copy of the built-in default;
- ``NETLAB_STATE_DIR`` is a directory of the test's own, so "the only lab that
  is up" (commands without ``--lab``) is the block's lab;
- paths under ``/tmp/`` move into the test's temporary directory;
- ``sudo`` is dropped (the suite runs as root; CI machines need not have sudo);
  ``netlab`` is this checkout's (its virtualenv comes first on PATH).

Lines it cannot run, and why (``UNRUNNABLE``; each is printed by the test):

- ``./scripts/setup.sh``: installs Debian packages and links
  ``/usr/local/bin/netlab``, i.e. changes the machine; CI runs it before the
  suite (``.ci/run``), which is how it is tested. The rest of its line runs.
- ``pytest ... tests``: the test suite itself (it would run this test again).
- ``scripts/bench_*.py``: benchmarks of minutes each with labs of up to 500
  pods (the host's neighbour table is shared by every lab on the machine);
  they print figures and assert nothing, so they belong outside the suite.
- not in a command block, so not parsed: ``vagrant up && vagrant ssh ...``
  (needs Vagrant and a hypervisor; the Vagrantfile provisions with setup.sh).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import lab_namespaces

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEFAULT_TOPOLOGY = ROOT / "netlab" / "data" / "default.yaml"
DEFAULT_LAB = "demo"

UNRUNNABLE = [
    (re.compile(r"(^|/)scripts/setup\.sh\b"), "installs packages and links /usr/local/bin/netlab: changes the "
                                             "machine; CI runs it before the suite"),
    (re.compile(r"\bpytest\b.*\btests\b"), "the test suite itself: it would run this test again"),
    (re.compile(r"\bscripts/bench_\w+\.py\b"), "a benchmark: minutes of work, labs of up to 500 pods, asserts "
                                               "nothing; not part of the suite"),
]


@dataclass
class Line:
    number: int  # 1-based line number in README.md
    command: str
    comment: str


@dataclass
class Block:
    number: int  # line of the opening fence
    lang: str
    lines: list[Line] = field(default_factory=list)
    text: str = ""


def parse_readme(path: Path = README) -> list[Block]:
    blocks: list[Block] = []
    current: Block | None = None
    body: list[str] = []
    for i, raw in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^```(\w*)\s*$", raw)
        if fence and current is None:
            current, body = Block(i, fence.group(1)), []
            continue
        if fence and current is not None:
            current.text = "\n".join(body) + "\n"
            blocks.append(current)
            current = None
            continue
        if current is None:
            continue
        body.append(raw)
        if current.lang == "sh" and raw.strip() and not raw.lstrip().startswith("#"):
            m = re.match(r"^(.*?)\s+#\s(.*)$", raw)  # a comment starts at " # "
            command, comment = (m.group(1), m.group(2)) if m else (raw, "")
            current.lines.append(Line(i, command.strip(), comment.strip()))
    return blocks


def runnable_part(command: str) -> tuple[str, list[str]]:
    """The command without its unrunnable ``&&`` steps, and why each was dropped."""
    keep, why = [], []
    for step in (s.strip() for s in command.split("&&")):
        reason = next((r for pattern, r in UNRUNNABLE if pattern.search(step)), None)
        if reason:
            why.append(f"{step}: {reason}")
        else:
            keep.append(step)
    return " && ".join(keep), why


def expected_exit(comment: str) -> int:
    m = re.search(r"\bexit (\d+)\b", comment)
    return int(m.group(1)) if m else 0


def claims(comment: str) -> list[str]:
    """``key=value`` tokens a comment promises in the output (``ttl=62``)."""
    return re.findall(r"\b[a-z_]+=\d+\b", comment)


def sh_blocks() -> list[Block]:
    return [b for b in parse_readme() if b.lang == "sh"]


def topology_blocks() -> list[Block]:
    return [b for b in parse_readme() if b.lang == "yaml" and re.search(r"^name:", b.text, re.M)]


class Runner:
    """Runs README lines with renamed labs, a private state directory and this checkout's netlab."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.state = tmp_path / "state"
        self.state.mkdir(mode=0o700)
        self.names: dict[str, str] = {}  # README lab name -> this run's lab name
        venv_bin = os.path.dirname(sys.executable)
        self.env = dict(os.environ, NETLAB_STATE_DIR=str(self.state),
                        PATH=f"{venv_bin}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}")
        self.log: list[str] = []

    def lab(self, readme_name: str) -> str:
        if readme_name not in self.names:
            self.names[readme_name] = f"ec{uuid.uuid4().hex[:5]}"
        return self.names[readme_name]

    def renamed_topology(self, text: str, where: str) -> str:
        """A copy of a topology under this run's name for it; returns the copy's path."""
        m = re.search(r"^name:\s*([a-z0-9-]+)", text, re.M)
        assert m, f"{where}: a topology without a name"
        new = self.lab(m.group(1))
        path = self.tmp / f"{new}.yaml"
        path.write_text(text[:m.start(1)] + new + text[m.end(1):])
        # Its included manifests or its CNI conflist (paths from the topology's folder), beside the copy.
        if re.search(r"^include:|^\s+cni:\s*\{?\s*conflist:", text, re.M) and where != "default":
            shutil.copytree((ROOT / where).parent, self.tmp, dirs_exist_ok=True)
        return str(path)

    def rewrite(self, command: str) -> str:
        command = re.sub(r"(^|&&\s*)sudo\s+", r"\1", command)
        command = command.replace("/tmp/", f"{self.tmp}/")

        def topology(m: re.Match) -> str:
            src = ROOT / m.group(2)
            return m.group(1) + self.renamed_topology(src.read_text(), m.group(2))

        # -t FILE of netlab commands only (iptables-save -t nat is a table).
        command = " && ".join(re.sub(r"(\s-t\s+|\s--topology\s+)(\S+)", topology, step)
                              if re.match(r"\s*netlab\s", step) else step for step in command.split("&&"))
        # `netlab up` without a file brings up the built-in default: the renamed copy instead.
        command = re.sub(r"\bnetlab up\b(?!\s+(-t|--topology)\b)",
                         lambda m: f"netlab up -t {self.renamed_topology(DEFAULT_TOPOLOGY.read_text(), 'default')}",
                         command)
        for old, new in list(self.names.items()) + [(DEFAULT_LAB, self.lab(DEFAULT_LAB))]:
            command = re.sub(rf"\b{re.escape(old)}-(?=[a-z0-9])", f"{new}-", command)
            command = re.sub(rf"(--lab\s+){re.escape(old)}\b", rf"\g<1>{new}", command)
        return command

    def run(self, command: str, where: str, expect: int = 0, want: list[str] = ()) -> str:
        proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=300)
        out = proc.stdout + proc.stderr
        self.log.append(f"{where}: $ {command}  -> exit {proc.returncode}")
        assert proc.returncode == expect, f"{where}: `{command}` exited {proc.returncode}, not {expect}:\n{out}"
        for token in want:
            assert token in out, f"{where}: `{command}`: the README promises {token!r}; output:\n{out}"
        return out

    def down_all(self) -> None:
        for lab in self.names.values():
            subprocess.run(["bash", "-c", f"netlab down --lab {lab}"], cwd=ROOT, env=self.env,
                           capture_output=True, timeout=300)
        left = {lab: lab_namespaces(lab) for lab in self.names.values()}
        assert not any(left.values()), f"namespaces left after the block: {left}"
        assert not os.listdir(self.state), f"state left after the block: {os.listdir(self.state)}"


@pytest.fixture
def runner(tmp_path):
    r = Runner(tmp_path)
    try:
        yield r
    finally:
        print("\n".join(r.log))
        r.down_all()


def test_the_readme_has_the_examples_this_test_runs():
    """The parser sees the README's blocks (a parser that found nothing would make the tests below vacuous)."""
    blocks = sh_blocks()
    commands = [line.command for b in blocks for line in b.lines]
    assert len(blocks) >= 5 and any("netlab probe" in c for c in commands)
    assert any(re.search(r"\bnetlab up\b", c) for c in commands) and any("netlab trace" in c for c in commands)
    assert len(topology_blocks()) >= 1
    skipped = [why for c in commands for why in runnable_part(c)[1]]
    print("README lines (or && steps) not run:\n" + "\n".join(skipped))
    assert skipped  # setup.sh, the suite, the benchmarks


@pytest.mark.parametrize("block", [pytest.param(b, id=f"README.md:{b.number}") for b in sh_blocks()
                                   if any(runnable_part(line.command)[0] for line in b.lines)])
def test_readme_command_block(block: Block, runner: Runner):
    lines = [(line, runnable_part(line.command)) for line in block.lines]
    for line, (command, skipped) in lines:
        for why in skipped:
            runner.log.append(f"README.md:{line.number}: not run: {why}")
    runnable = [(line, command) for line, (command, _) in lines if command]
    if not re.match(r"^(sudo\s+)?netlab up\b", runnable[0][1]):
        runner.run(runner.rewrite("netlab up"), f"before README.md:{block.number}")
    for line, command in runnable:
        runner.run(runner.rewrite(command), f"README.md:{line.number}", expected_exit(line.comment),
                   claims(line.comment))


@pytest.mark.parametrize("block", [pytest.param(b, id=f"README.md:{b.number}") for b in topology_blocks()])
def test_readme_topology_example_passes_its_probes(block: Block, runner: Runner):
    path = runner.renamed_topology(block.text, f"README.md:{block.number}")
    lab = runner.names[re.search(r"^name:\s*([a-z0-9-]+)", block.text, re.M).group(1)]
    where = f"README.md:{block.number}"
    runner.run(f"netlab validate -t {path}", where)
    runner.run(f"netlab up -t {path}", where)
    runner.run(f"netlab probe --lab {lab}", where)
    runner.run(f"netlab status --lab {lab}", where)
    runner.run(f"netlab down --lab {lab}", where)
    assert shutil.which("netlab", path=runner.env["PATH"]).startswith(os.path.dirname(sys.executable))
