"""A CNI lab whose `up` was killed before its plugins' ADDs (``NETLAB_FAULT_POINT=cni-adding``: each pod's record
written, phase "adding", no plugin run): its pods have no eth0, and status says "cni: pod a is not attached through
CNI (up attaches it)", but `get pods` gave each its planned IP with ``network_detached`` false (QA q43 2). It says
ContainerCreating, READY 0/1 and no IP (``ip`` "", ``network_detached`` true in -o json), as for a pod whose
re-attach was cut short, until `up` ADDs it. The lab is not up until that up finished: its state said phase `up`
(saved before the features started), so `netlab list` named no killed up for it, where an up killed at any point
before does; `list` (text and -o json) and `status` say list's line now, phase creating, until an `up` finishes it.
Real bridge + host-local in real namespaces (root)."""

from __future__ import annotations

import json

import pytest

from netlab.errors import down_command, netlab_command
from helpers import ip_json, netlab, state_path
from killed_runs import lock_let_go

pytestmark = pytest.mark.root


def topology(lab: str) -> str:
    return (f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: net.conflist}}}}\n"
            "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\n"
            "pods:\n  - {name: a, node: n1}\n  - {name: b, node: n2}\n")


def eth0_ip(netns: str) -> str | None:
    """The pod's eth0 address, as the kernel has it (None: no eth0)."""
    links = {ln["ifname"]: ln for ln in ip_json("-4", "addr", netns=netns)}
    if "eth0" not in links:
        return None
    return links["eth0"]["addr_info"][0]["local"]


def test_get_pods_of_a_lab_whose_up_was_killed_before_its_adds_gives_no_ip(labs, tmp_path):
    (tmp_path / "net.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": f"net-{tmp_path.name}", "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True,
             "capabilities": {"ipRanges": True}, "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases")}}]}))
    lab = labs.name("js2")
    path = tmp_path / "topo.yaml"
    path.write_text(topology(lab))
    killed = netlab("up", "-t", str(path), check=False, env={"NETLAB_FAULT_POINT": "cni-adding",
                                                              "NETLAB_FAULT_MODE": "kill"})
    assert killed.returncode == -9, killed
    lock_let_go(lab)  # its echo server, still starting, shares the lab's lock: `list` says the lab is being made
    assert [ln["ifname"] for ln in ip_json("link", netns=f"{lab}-a")] == ["lo"]  # no plugin ran: no eth0
    with open(state_path(lab, "state.json")) as fh:
        assert json.load(fh)["phase"] == "creating"  # it said up
    listed = netlab("list")
    assert [line.split()[1] for line in listed.stdout.splitlines()[1:] if line.split()[0] == lab] == ["creating"]
    said = [line for line in listed.stderr.splitlines() if f"lab {lab}" in line]  # it said nothing of the lab
    assert len(said) == 1 and said[0].startswith(f"netlab: lab {lab}: the `netlab up` that was making it (pid "), said
    line = said[0].removeprefix("netlab: ")
    assert line.endswith(f"ended before it finished (killed); `{netlab_command(f'up --lab {lab}')}` finishes it, "
                         f"or `{down_command(lab)}` takes away what it made")
    rows = [r for r in json.loads(netlab("list", "-o", "json").stdout) if r["lab"] == lab]
    assert [(r["phase"], r["error"]) for r in rows] == [("creating", line)], rows  # ("up", no error)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and status.stderr.splitlines()[0] == f"netlab: {line}", status  # first
    lines = [line.strip() for line in status.stdout.splitlines()]
    assert "cni: pod a is not attached through CNI (up attaches it)" in lines, status  # then the drift
    assert json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)["error"] == line

    items = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    assert {name: (p["ip"], p["network_detached"], p["ready"], p["status"]) for name, p in items.items()} == {
        name: ("", True, "0/1", "ContainerCreating") for name in ("a", "b")}  # it said 10.244.0.2, false
    text = netlab("get", "pods", "--lab", lab).stdout.splitlines()
    header = text[0].split()
    assert [row.split()[header.index("IP")] for row in text[1:]] == ["<none>", "<none>"], text

    netlab("up", "-t", str(path))  # the ADDs: eth0, and the address get pods gives
    items = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    for name in ("a", "b"):
        assert (items[name]["ip"], items[name]["network_detached"]) == (eth0_ip(f"{lab}-{name}"), False), items
    rows = [r for r in json.loads(netlab("list", "-o", "json").stdout) if r["lab"] == lab]
    assert [(r["phase"], r["error"]) for r in rows] == [("up", None)], rows  # that up finished it
