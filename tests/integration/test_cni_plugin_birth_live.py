"""Debian's CNI plugins (loopback, bridge, host-local) run whole though a stop signal sent to netlab's process group
landed in the instant of their birth (cni/plugin_start.py), and a SIGINT that netlab's parent ignored is not
taken for a stop by netlab (signals.handled).

A Ctrl-C (``kill -INT -PGID``) reaches every process of netlab's group, and a plugin's child is in it from its
fork to its setsid. ``NETLAB_TEST_PLUGIN_BIRTH_SIGNAL`` makes that instant deterministic: each plugin call's
child sends itself the signal before its first exec (kernel/testhooks.py). QA saw a DEL "killed by SIGINT" from
a ``netlab down`` started with SIGINT ignored, its group sent SIGINT: netlab set its own handler over the ignored
SIGINT for the down, so the plugins were born with it at its default."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from helpers import NETLAB, lab_namespaces, netlab, state_path, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
network: {{mode: vxlan, cni: reference}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods: [{{name: p1, node: n1, ip: 10.244.0.2}}, {{name: p2, node: n1, ip: 10.244.0.3}}]
"""


def sigint_ignored() -> None:
    """As a shell starts a job it puts in the background (``netlab down &`` in a script): SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run(argv: list[str], env: dict[str, str], ignored: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(NETLAB + argv, capture_output=True, text=True, timeout=300, env={**os.environ, **env},
                          preexec_fn=sigint_ignored if ignored else None)


def calls(lab: str) -> list[dict]:
    return json.loads(netlab("cni", "log", "--lab", lab, "-o", "json").stdout)["calls"]


ADDS = [("p1", "bridge", 0), ("p1", "loopback", 0), ("p2", "bridge", 0), ("p2", "loopback", 0)]


def adds_of(lab: str) -> list[tuple[str, str, int]]:
    return sorted((c["pod"], c["plugin"], c["exit_code"]) for c in calls(lab) if c["command"] == "ADD")


def test_plugins_signalled_at_birth_run_whole_through_up_status_and_down(labs):
    lab = labs.name("csb")
    path = write_topology(labs.tmp_path, TOPOLOGY.format(lab=lab), "t.yaml")
    up = run(["up", "-t", path], {"NETLAB_TEST_PLUGIN_BIRTH_SIGNAL": "INT"})
    # Before: "CNI plugin loopback ADD: failed (killed by SIGINT)", rolled back
    assert up.returncode == 0, up.stderr
    assert adds_of(lab) == ADDS
    for pod, ip in (("p1", "10.244.0.2"), ("p2", "10.244.0.3")):
        addrs = json.loads(subprocess.run(["ip", "-j", "-n", f"{lab}-{pod}", "addr", "show", "eth0"],
                                          capture_output=True, text=True, check=True).stdout)
        assert ip in [a["local"] for a in addrs[0]["addr_info"]], addrs
    ping = subprocess.run(["ip", "netns", "exec", f"{lab}-p1", "ping", "-c1", "-W5", "10.244.0.3"],
                          capture_output=True, text=True)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    status = run(["status", "--lab", lab], {"NETLAB_TEST_PLUGIN_BIRTH_SIGNAL": "TERM"})
    assert status.returncode == 0, status.stdout + status.stderr
    checks = [c for c in calls(lab) if c["command"] == "CHECK"]
    assert checks and all(c["exit_code"] == 0 for c in checks), checks

    held = [f for _, _, files in os.walk(state_path(lab)) for f in files if f.startswith("10.244.")]
    assert sorted(held) == ["10.244.0.2", "10.244.0.3"], held
    # QA's case: a down started with SIGINT ignored, its group's SIGINT in the instant of each DEL's birth.
    # Before: "warning: CNI DEL of pod p1: CNI plugin bridge DEL: failed (killed by SIGINT)"
    down = run(["down", "--lab", lab], {"NETLAB_TEST_PLUGIN_BIRTH_SIGNAL": "INT"}, ignored=True)
    assert down.returncode == 0 and "warning" not in down.stderr, down.stderr
    assert not lab_namespaces(lab) and not os.path.exists(state_path(lab))


def test_an_up_started_with_sigint_ignored_is_not_rolled_back_by_a_sigint(labs):
    """The run's own SIGINT at its third change (NETLAB_FAULT_SIGNAL), which its parent ignored: the lab comes up.
    Before: "netlab: interrupted by SIGINT" (130), rolled back: up's handler was set over the ignored SIGINT."""
    lab = labs.name("csi")
    path = write_topology(labs.tmp_path, TOPOLOGY.format(lab=lab), "t.yaml")
    up = run(["up", "-t", path], {"NETLAB_FAULT_SIGNAL": "3:INT"}, ignored=True)
    assert up.returncode == 0, up.stderr
    assert {f"{lab}-p1", f"{lab}-p2"} <= set(lab_namespaces(lab)), lab_namespaces(lab)
    assert adds_of(lab) == ADDS
