"""A SIGINT that netlab's parent ignored (a job a shell script puts in the background) is not taken for a stop by
netlab (signals.handled), and the CNI plugins it starts keep it ignored: QA saw a DEL "killed by SIGINT" from a
``netlab down`` started with SIGINT ignored, its group sent SIGINT: netlab set its own handler over the ignored
SIGINT for the down, so the plugins were born with it at its default (tests/unit/test_ignored_stop_signal.py reads
a plugin's SigIgn)."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from helpers import NETLAB, lab_namespaces, netlab, write_topology

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


def test_an_up_started_with_sigint_ignored_is_not_rolled_back_by_a_sigint(labs):
    """The run's own SIGINT at its third change (NETLAB_FAULT_SIGNAL), which its parent ignored: the lab comes up.
    Before: "netlab: interrupted by SIGINT" (130), rolled back: up's handler was set over the ignored SIGINT."""
    lab = labs.name("csi")
    path = write_topology(labs.tmp_path, TOPOLOGY.format(lab=lab), "t.yaml")
    up = run(["up", "-t", path], {"NETLAB_FAULT_SIGNAL": "3:INT"}, ignored=True)
    assert up.returncode == 0, up.stderr
    assert {f"{lab}-p1", f"{lab}-p2"} <= set(lab_namespaces(lab)), lab_namespaces(lab)
    assert adds_of(lab) == ADDS
