"""Every `sudo netlab ...` example of a command's --help works on the lab it names: the built-in lab `demo` unless
its comment names a topology file (`topologies/services.yaml`) or it says `--lab NAME` of a shipped topology. The
names an example uses (pods, nodes, hosts, svc/NAME, NAMESPACE/NAME, --target) are that lab's.
`trace fedora-1 svc/web` failed on the built-in lab, which has no Services."""

from __future__ import annotations

import glob
import os
import shlex

import pytest
from click.testing import CliRunner

from netlab.cli import cli
from netlab.model.lab import resolve
from netlab.model.load import load_topology

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOT_HERE: set[str] = set()
NAMED = {"exec": 1, "inspect": 1, "trace": 2, "capture": 1, "impair": 1, "logs": 1}  # how many names follow


def _labs() -> dict[str, object]:
    labs = {}
    shipped = glob.glob(os.path.join(ROOT, "topologies", "*.yaml")) + glob.glob(os.path.join(ROOT, "examples", "*",
                                                                                               "*", "topology.yaml"))
    for path in sorted(shipped):
        labs[os.path.relpath(path, ROOT)] = resolve(load_topology(path))
    return labs


LABS = _labs()


def _examples() -> list[tuple[str, str]]:
    ctx = cli.make_context("netlab", [], resilient_parsing=True)
    out = []
    for name in sorted(cli.list_commands(ctx)):
        cmd = cli.get_command(ctx, name)
        subs = [name] + [f"{name} {sub}" for sub in getattr(cmd, "commands", {})]
        for words in subs:
            if words.split()[0] in NOT_HERE:
                continue
            text = CliRunner().invoke(cli, [*words.split(), "--help"]).output
            out += [(words, line.strip()) for line in text.splitlines() if line.strip().startswith("sudo netlab ")]
    return out


def _lab_of(line: str):
    code, _, comment = line.partition("#")
    for path, lab in LABS.items():
        if path in comment:
            return lab
    argv = shlex.split(code)
    if "--lab" in argv:
        wanted = argv[argv.index("--lab") + 1]
        return next(lab for lab in LABS.values() if lab.name == wanted)
    return LABS["topologies/default-2node.yaml"]


def _names(lab) -> set[str]:
    return ({p.name for p in lab.pods} | {n.name for n in lab.nodes} | {h for h, _ in lab.internet_hosts}
            | {"underlay"})


EXAMPLES = _examples()


def test_examples_were_found():
    assert any(cmd == "trace" for cmd, _ in EXAMPLES) and any(cmd == "get" for cmd, _ in EXAMPLES)


@pytest.mark.parametrize("command,line", EXAMPLES)
def test_an_example_names_what_its_lab_has(command, line):
    lab = _lab_of(line)
    argv = shlex.split(line.partition("#")[0])[2:]  # after `sudo netlab`
    services = {s.name for s in lab.services} | {f"{s.namespace}/{s.name}" for s in lab.services}
    if argv[0] in NAMED:
        positional = [w for w in argv[1:] if not w.startswith("-")]
        if "--" in argv:
            positional = [w for w in argv[1:argv.index("--")] if not w.startswith("-")]
        for word in positional[:NAMED[argv[0]]]:
            word = word.split(":")[0]
            if word.startswith("svc/"):
                assert word[4:] in services, f"{line}: lab {lab.name} has no Service {word[4:]}"
            else:
                assert word in _names(lab), f"{line}: lab {lab.name} has no {word}"
    for flag in ("-c", "--container"):  # `exec -c shell` failed: the built-in lab's pods have one container, main
        if argv[0] in ("exec", "logs") and flag in argv:
            pod = next(p for p in lab.pods if p.name == positional[0])
            assert argv[argv.index(flag) + 1] in {c.name for c in pod.containers}, f"{line}: no such container"
    if argv[:2] == ["cni", "log"]:  # its POD: a pod of the lab (`cni log --lab bashcni web-1`, the CNI example's)
        pods = [w for w in argv[2:] if not w.startswith("-") and argv[argv.index(w) - 1] not in ("-o", "--lab")]
        assert all(p in {pod.name for pod in lab.pods} for p in pods), f"{line}: lab {lab.name} has no {pods}"
    if argv[0] == "break" and "--target" in argv:
        assert argv[argv.index("--target") + 1] in _names(lab), line
    if argv[0] == "get" and argv[1] in ("svc", "services"):
        for word in argv[2:]:
            if not word.startswith("-") and argv[argv.index(word) - 1] != "-o":
                assert word in services, f"{line}: lab {lab.name} has no Service {word}"
