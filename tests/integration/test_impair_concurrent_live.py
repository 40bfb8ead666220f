"""`netlab impair` runs at once, and one that waits for another terminal's `up -t FILE` (QA q39, defects 1 and 2).

Each impair read the lab's topology before it waited for the lab's lock and applied that copy once it held it:
of three at once only one rate survived (each later run said "removed rate 6mbit ... (no longer in the
topology)"), and an impair that waited for an `up -t FILE` moved the file's pod back and put back a rate the file
had removed. Now each edits the lab as the previous holder of the lock left it.

No timing: the first command is held at a test hook (NETLAB_FAULT_MODE=pause) while it holds the lab's lock, and
the others are started once it is; each says it waits for it ("netlab: waiting for pid N ..."), then the first
goes on. The kernel's own view (`tc -j qdisc show` in the pods' namespaces) proves what each interface has.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import netlab
from helpers_racing import lab_and_processes, paused_at, started

pytestmark = pytest.mark.root


def waiting_for(holder: subprocess.Popen, lab: str, *args: str) -> subprocess.Popen:
    """netlab ``args``, once it says it waits for ``holder``: it read the lab, and waits for the lab's lock."""
    proc = started(*args)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith(f"netlab: waiting for pid {holder.pid} (netlab "), line
    assert line.endswith(f" to release lab {lab}\n"), line
    return proc


def finished(proc: subprocess.Popen, line: str | None = None) -> str:
    out, err = proc.communicate(line, timeout=300)
    assert proc.returncode == 0, (out, err)
    return out


def root_rate(netns: str) -> int | None:
    """The rate (bit/s) of the root tbf on eth0 in ``netns`` as the kernel shows it; None without one."""
    out = subprocess.run(["tc", "-j", "-n", netns, "qdisc", "show", "dev", "eth0"], capture_output=True, text=True,
                         check=True).stdout
    roots = [q for q in json.loads(out) if q.get("root")]
    return roots[0]["options"]["rate"] * 8 if roots and roots[0]["kind"] == "tbf" else None  # tc -j: bytes/s


@pytest.fixture
def lab(tmp_path):
    with lab_and_processes(tmp_path, "im", pods_per_node=2) as made:
        yield made


def test_three_impairs_at_once_each_keep_their_rate(lab):
    name, _, procs = lab
    first = paused_at("impair-set", "impair", "--lab", name, "fedora-1:eth0", "--rate", "6mbit")
    procs.append(first)
    others = [waiting_for(first, name, "impair", "--lab", name, f"fedora-{i}:eth0", "--rate", rate)
              for i, rate in ((2, "7mbit"), (3, "8mbit"))]
    procs.extend(others)
    said = finished(first, "\n") + "".join(finished(p) for p in others)
    assert "removed" not in said, said
    assert [root_rate(f"{name}-fedora-{i}") for i in (1, 2, 3)] == [6_000_000, 7_000_000, 8_000_000]
    shown = json.loads(netlab("impair", "--lab", name, "-o", "json").stdout)["impairments"]
    assert sorted((s["target"], bool(s["set_at"])) for s in shown) == [
        ("fedora-1:eth0", True), ("fedora-2:eth0", True), ("fedora-3:eth0", True)]
    assert netlab("status", "--lab", name, check=False).returncode == 0


def test_an_impair_that_waited_for_up_from_a_file_keeps_what_that_up_did(lab):
    name, path, procs = lab
    netlab("impair", "--lab", name, "fedora-1:eth0", "--rate", "2mbit")
    with open(path) as fh:
        text = fh.read()
    with open(path, "w") as fh:  # fedora-4 moves to minikube; the file has no rate for fedora-1
        fh.write(text.replace("{name: fedora-4, node: minikube-m02, ip: 10.244.1.4}",
                              "{name: fedora-4, node: minikube, ip: 10.244.0.5}"))
    up = paused_at("netns-checked", "up", "-t", path)
    procs.append(up)
    impair = waiting_for(up, name, "impair", "--lab", name, "fedora-2:eth0", "--rate", "3mbit")
    procs.append(impair)
    assert "pod fedora-4 moves from node minikube-m02 to minikube" in finished(up, "\n")
    said = finished(impair)
    assert "moves" not in said and "2mbit" not in said, said
    pods = json.loads(netlab("get", "pods", "--lab", name, "-o", "json").stdout)
    nodes = {p["name"]: p["node"] for p in (pods["items"] if isinstance(pods, dict) else pods)}
    assert nodes["fedora-4"] == "minikube", nodes
    assert (root_rate(f"{name}-fedora-1"), root_rate(f"{name}-fedora-2")) == (None, 3_000_000)
    # the lab differs from its file by the impair alone
    diff = netlab("status", "--lab", name, "-t", path, "-o", "json", check=False)
    assert netlab("status", "--lab", name, check=False).returncode == 0
    assert "fedora-4" not in diff.stdout and "fedora-1" not in diff.stdout, diff.stdout
