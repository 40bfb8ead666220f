"""A chained plugin whose CHECK fails on its own fresh ADD (QA cnicheck 1), with Debian's bridge and host-local
before it (root, real namespaces): ``qcheck``, written into the test's tmp_path, passes its prevResult on at ADD and
answers every CHECK with exit 1 and ``{"code": 13, ...}``.

Before, ``up`` DELed and ADDed both pods each time it ran and exited 0 ("re-attached pod a through CNI (CHECK
said ...)"), status still failing, and ``up --watch`` did so every resync, forever (80 ADDs in 40 s), each with a
new veth and MAC. Now the first ``up`` that re-attaches runs CHECK once after the ADD and says so naming the
plugin, exit 1 (as status; nothing rolled back); the pods keep that attachment (traffic flows), and neither a
later ``up`` nor the watcher ADDs them again: the watcher's repair fails and backs off. The ADDs are counted in the lab's CNI call log."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import netlab
from watching import Watcher

pytestmark = pytest.mark.root

STATE = os.environ.get("NETLAB_STATE_DIR") or "/run/netlab"

QCHECK = """#!/usr/bin/python3
import json, os, sys
conf = json.load(sys.stdin)
cmd = os.environ["CNI_COMMAND"]
if cmd == "VERSION":
    print(json.dumps({{"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}}))
elif cmd == "ADD":
    print(json.dumps(conf["prevResult"]))
elif cmd == "CHECK" and os.path.exists({broken!r}):
    print(json.dumps({{"cniVersion": "1.0.0", "code": 13, "msg": "qcheck always fails"}}))
    sys.exit(1)
"""

CONFLIST = {"cniVersion": "1.0.0", "name": "ccchk", "plugins": [
    {"type": "bridge", "bridge": "ccbr0", "isGateway": True, "isDefaultGateway": True,
     "ipam": {"type": "host-local"}, "capabilities": {"ips": True, "ipRanges": True}},
    {"type": "qcheck"}]}

SAID = "pod a: CNI plugin qcheck's CHECK fails on its own fresh ADD: failed (exit 1): qcheck always fails [code 13]"


def _adds(lab: str) -> int:
    calls = [json.loads(line) for line in Path(STATE, lab, "cni", "calls.jsonl").read_text().splitlines()]
    return sum(1 for c in calls if (c["plugin"], c["command"]) == ("qcheck", "ADD"))


def _eth0(lab: str, pod: str) -> tuple[str, list[str]]:
    out = subprocess.run(["ip", "-n", f"{lab}-{pod}", "-j", "addr", "show", "eth0"], check=True,
                         capture_output=True, text=True).stdout
    [link] = json.loads(out)
    return link["address"], [a["local"] for a in link["addr_info"] if a["family"] == "inet"]


def _probed(lab: str) -> None:
    out = json.loads(netlab("probe", "--lab", lab, "--no-services", "-o", "json").stdout)
    assert out["ok"] and any((p["source"], p["destination"], p["protocol"]) == ("a", "b", "icmp")
                             for p in out["probes"]), out


def _repairs_failed(watcher: Watcher, rounds: int) -> list[str]:
    """The watcher's next ``rounds`` lines that say its repair failed, each waited for in turn."""
    out: list[str] = []
    for _ in range(rounds):
        after = 1 + max([i for i, ln in enumerate(watcher.lines) if "repair failed: " in ln], default=-1)
        out.append(watcher.wait_for_line("repair failed: ", timeout=60, after=after))
    return out


def test_a_check_failing_its_own_add_fails_up_once_and_the_watcher_backs_off_without_adding(labs, tmp_path):
    broken = tmp_path / "broken"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "qcheck").write_text(QCHECK.format(broken=str(broken)))
    (tmp_path / "bin" / "qcheck").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("cc")
    path, _ = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                      "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods:\n  - {name: a, node: n1}\n"
                      "  - {name: b, node: n1}\n")
    assert _adds(lab) == 2
    # The watcher of a healthy lab; then qcheck's CHECK starts failing (a plugin upgraded under a running lab).
    watcher = Watcher(None, lab=lab, resync="1", backoff="0.5")
    try:
        broken.write_text("")
        first, *later = _repairs_failed(watcher, 3)
        assert f"repair failed: {SAID}; pod a keeps that attachment" in first and "retry in" in first, first
        assert _adds(lab) == 4  # its first repair re-attached each pod once: then its CHECK failed the fresh ADD
        mac_a, ips_a = _eth0(lab, "a")
        for line in later:  # its later repairs ADD nothing: they fail, and back off
            assert SAID.replace("fresh ADD:", "fresh ADD (since an earlier up re-attached the pod):") in line, line
            assert "repair failed: " in line and "retry in" in line, line
    finally:
        assert watcher.stop() == 0, watcher.lines
    assert _adds(lab) == 4, watcher.lines  # (before, 80 ADDs in 40 s)
    assert ips_a and _eth0(lab, "a") == (mac_a, ips_a)  # the same eth0, not a new one per round
    _probed(lab)  # the pods keep that attachment: traffic flows
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "(as right after its own fresh ADD: up does not re-attach the pod for it)" \
        in status.stdout, status.stdout
    again = netlab("up", "-t", path, check=False)
    assert again.returncode == 1 and "CNI plugin qcheck's CHECK fails on its own fresh ADD" in again.stderr, again
    assert _adds(lab) == 4
    # Mended, its CHECK passes: nothing is re-attached, the lab is as planned.
    broken.unlink()
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    netlab("up", "-t", path)
    assert _adds(lab) == 4


def test_up_twice_fails_the_second_naming_the_plugin_after_one_re_attach(labs, tmp_path):
    """QA's own steps: `up -t F` twice, the CHECK failing from the start: the second up re-attached each pod and
    exited 0; now it fails naming qcheck (exit 4), and a third ADDs nothing."""
    broken = tmp_path / "broken"
    broken.write_text("")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "qcheck").write_text(QCHECK.format(broken=str(broken)))
    (tmp_path / "bin" / "qcheck").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("cc")
    text = (f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
            "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods:\n  - {name: a, node: n1}\n")
    path, _ = labs.up(text)  # no CHECK after a pod's first ADD, as a kubelet runs none
    second = netlab("up", "-t", path, check=False)  # the lab stays up: exit 1, as status says it
    assert second.returncode == 1 and f"netlab: {SAID}; pod a keeps that attachment" in second.stderr, second
    assert "nothing rolled back" not in second.stderr and "rolled back" not in second.stderr, second
    assert _adds(lab) == 2
    third = netlab("up", "-t", path, check=False)
    assert third.returncode == 1 and "since an earlier up re-attached the pod" in third.stderr, third
    assert "nothing changed, but not all of it is as asked (below)" in third.stdout, third
    assert _adds(lab) == 2
