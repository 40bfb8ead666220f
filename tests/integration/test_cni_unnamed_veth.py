"""A chain whose result names no interface keeps its pods' veths (QA q24 #1; root, Debian's bridge and host-local
behind a tiny wrapper the test writes into its tmp_path).

The wrapper ``riw`` execs Debian's bridge and rewrites its ADD result: to 0.2.0 (``ip4`` only, which netlab reads as
libcni does: no ``interfaces``), or to 1.0.0 without ``interfaces`` (its ``ips`` tied to none). Before, status called
the host end of each pod's veth "extra", `up` deleted it and the pod was left with ``lo`` only, while status then
said "all as planned". Checked with ``ip -j`` before and after `up` run twice, with real traffic (ping from a pod),
and with a pod's eth0 deleted by hand (status names it, up attaches the pod again).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from breaking import assert_as_planned
from helpers import in_netns, ip, ip_json, ipv4_of, netlab

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"

RIW = """#!/usr/bin/python3
import json, os, subprocess, sys
conf = sys.stdin.buffer.read()
proc = subprocess.run([{bin!r} + "/bridge"], input=conf, capture_output=True)
out = proc.stdout
if os.environ["CNI_COMMAND"] == "ADD" and proc.returncode == 0 and {mode!r} != "asis":
    res = json.loads(out)
    if {mode!r} == "v020":
        ip4 = next(i for i in res["ips"] if ":" not in i["address"])
        res = {{"cniVersion": "0.2.0", "ip4": {{"ip": ip4["address"], "gateway": ip4.get("gateway")}}}}
    else:
        res.pop("interfaces", None)
        for i in res.get("ips", []):
            i.pop("interface", None)
    out = json.dumps(res).encode()
sys.stdout.buffer.write(out)
sys.stderr.buffer.write(proc.stderr)
sys.exit(proc.returncode)
"""

CONFLIST = {"cniVersion": "1.0.0", "name": "riun", "disableCheck": True, "plugins": [
    {"type": "riw", "bridge": "ribr0", "isGateway": True, "isDefaultGateway": True,
     "ipam": {"type": "host-local"}, "capabilities": {"ipRanges": True}}]}


@pytest.fixture(autouse=True)
def plugins_installed():
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"


def _veths(node_ns: str) -> list[str]:
    """The node's veths but netlab's own eth0 (to the underlay): the host ends of the pods' pairs."""
    return sorted(ln["ifname"] for ln in ip_json("link", "show", "type", "veth", netns=node_ns)
                  if ln["ifname"] != "eth0")


@pytest.mark.parametrize("mode", ["v020", "noifs"])
def test_the_plugins_veths_stay_when_their_result_names_none(labs, tmp_path: Path, mode: str):
    lab = labs.name("ri")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "riw").write_text(RIW.format(bin=CNI_BIN, mode=mode))
    (tmp_path / "bin" / "riw").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    path = labs.up_here(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                      "nodes: [{name: n1}]\npods:\n  - {name: a, node: n1}\n  - {name: b, node: n1}\n")
    node, a, b = f"{lab}-n1", f"{lab}-a", f"{lab}-b"
    veths = _veths(node)
    assert len(veths) == 2, veths
    b_ip = ipv4_of(b, "eth0")
    assert_as_planned(lab)  # status's drift said "extra: link vethXXXX in ...-n1"
    for _ in range(2):
        again = netlab("up", "-t", path)
        assert "del link" not in again.stdout, again.stdout  # "del link vethXXXX in ...-n1": the pods cut off
        assert _veths(node) == veths
        assert [ln["ifname"] for ln in ip_json("link", netns=a)] == ["lo", "eth0"]
    assert in_netns(a, "ping", "-c1", "-W2", b_ip).returncode == 0
    # The pod cut off by hand: status names it (it said "all as planned"), up attaches it again.
    ip("link", "del", "eth0", netns=b)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "its eth0 is gone" in status.stdout, status.stdout
    netlab("up", "-t", path)
    assert [ln["ifname"] for ln in ip_json("link", netns=b)] == ["lo", "eth0"]
    # from b, new: a's neighbour entry for b's address still holds b's old MAC (REACHABLE) until b's ARP renews it
    assert in_netns(b, "ping", "-c1", "-W2", ipv4_of(a, "eth0")).returncode == 0
    assert_as_planned(lab)


@pytest.mark.parametrize("mode", ["v020", "asis"])
def test_a_veth_added_by_hand_on_the_node_and_its_route_are_extra_and_up_takes_them(labs, tmp_path: Path,
                                                                                    mode: str):
    """QA q29 #1: the rule above made every device netlab does not make on a node the plugins': a veth added by
    hand there (its peer in the node too), with a route hijacking a pod's address, was "all as planned", `up` had
    nothing to change and the pods could not reach that pod. Now only the plugins' veths are theirs: those whose
    peer is in a pod's namespace (their result, 0.2.0 here, names none), and the ports of their bridge."""
    lab = labs.name("ns2")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "riw").write_text(RIW.format(bin=CNI_BIN, mode=mode))
    (tmp_path / "bin" / "riw").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    path = labs.up_here(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                      "nodes: [{name: n1}, {name: n2}]\npods:\n  - {name: a, node: n1}\n  - {name: b, node: n2}\n")
    n1, a, b = f"{lab}-n1", f"{lab}-a", f"{lab}-b"
    veths, b_ip = _veths(n1), ipv4_of(b, "eth0")
    assert len(veths) == 1 and in_netns(a, "ping", "-c1", "-W2", b_ip).returncode == 0, veths
    ip("link", "add", "q29hand", "type", "veth", "peer", "name", "q29peer", netns=n1)
    ip("link", "set", "q29hand", "up", netns=n1)
    ip("link", "set", "q29peer", "up", netns=n1)
    ip("route", "add", f"{b_ip}/32", "dev", "q29hand", netns=n1)  # hijacks b's address
    assert in_netns(a, "ping", "-c1", "-W1", b_ip).returncode == 1
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status.stdout  # "all as planned", exit 0
    for extra in ("extra: link q29hand", "extra: link q29peer", f"extra: route {b_ip}/32 dev q29hand"):
        assert extra in status.stdout, status.stdout
    assert veths[0] not in status.stdout, status.stdout  # the plugin's own veth (its peer is a's eth0) is not
    if mode == "asis":  # trace said "matched: ... dev q29hand", then "LOST: no ARP answer", never why
        trace = netlab("trace", "--lab", lab, "a", "b", check=False)
        assert "a route the plan does not have (status calls it extra)" in trace.stdout, trace.stdout
        assert f"ip -n {n1} route del {b_ip}/32 dev q29hand" in trace.stdout, trace.stdout
    again = netlab("up", "-t", path)
    assert "del link q29hand" in again.stdout and f"del link {veths[0]}" not in again.stdout, again.stdout
    assert _veths(n1) == veths  # q29hand and q29peer gone, the plugin's veth kept
    assert not [r for r in ip_json("route", netns=n1) if r.get("dev") == "q29hand"]
    assert in_netns(a, "ping", "-c1", "-W2", b_ip).returncode == 0
    assert_as_planned(lab)


def test_a_hand_veth_with_another_nodes_pod_pair_numbers_is_extra(labs, tmp_path: Path):
    """QA q31 #2: a veth was the plugins' when its (index, peer index) were a pod's pair, but those numbers are per
    namespace: one added by hand on n2 to a namespace that is no pod's, numbered as a's pair on n1, with a route
    hijacking a's address, was "all as planned", `up` had nothing to change and trace named no stray route. Now
    its peer must be in one of n2's own pods' namespaces (IFLA_LINK_NETNSID, the id n2 gives it) and be that
    pod's eth0."""
    lab = labs.name("cv2")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "riw").write_text(RIW.format(bin=CNI_BIN, mode="asis"))
    (tmp_path / "bin" / "riw").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    path = labs.up_here(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                      "nodes: [{name: n1}, {name: n2}]\npods:\n  - {name: a, node: n1}\n  - {name: b, node: n2}\n"
                      "  - {name: c, node: n1}\n")
    n1, n2, b = f"{lab}-n1", f"{lab}-n2", f"{lab}-b"
    taken = {ln["ifindex"] for ln in ip_json("link", netns=n2)}  # a pod of n1 whose host end's index n2 has free
    pod = next(p for p in "ac" if ip_json("link", "show", "eth0", netns=f"{lab}-{p}")[0]["link_index"] not in taken)
    a = f"{lab}-{pod}"
    a_eth0 = ip_json("link", "show", "eth0", netns=a)[0]
    host = next(ln for ln in ip_json("link", "show", "type", "veth", netns=n1) if ln["ifindex"] == a_eth0["link_index"])
    assert host["link_index"] == a_eth0["ifindex"]
    a_ip, other = ipv4_of(a, "eth0"), f"{lab}x"
    ip("netns", "add", other)
    try:
        ip("link", "add", "hh", "index", str(host["ifindex"]), "type", "veth", "peer", "name", "hp", "index",
           str(a_eth0["ifindex"]), "netns", other, netns=n2)
        ip("link", "set", "hh", "up", netns=n2)
        ip("link", "set", "hp", "up", netns=other)
        ip("route", "add", f"{a_ip}/32", "dev", "hh", netns=n2)  # hijacks a's address
        hand = ip_json("link", "show", "hh", netns=n2)[0]
        assert (hand["ifindex"], hand["link_index"]) == (host["ifindex"], a_eth0["ifindex"])  # a's pair's numbers
        assert in_netns(b, "ping", "-c1", "-W1", a_ip).returncode == 1
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 1, status.stdout  # "all as planned", exit 0
        assert "extra: link hh" in status.stdout and f"extra: route {a_ip}/32 dev hh" in status.stdout, status.stdout
        assert not [v for v in _veths(n1) + _veths(n2) if v != "hh" and v in status.stdout], status.stdout
        trace = netlab("trace", "--lab", lab, "b", pod, check=False)
        assert "a route the plan does not have (status calls it extra)" in trace.stdout, trace.stdout
        assert f"ip -n {n2} route del {a_ip}/32 dev hh" in trace.stdout, trace.stdout
        again = netlab("up", "-t", path)
        assert "del link hh" in again.stdout, again.stdout  # "nothing to change"
        assert not [ln for ln in ip_json("link", netns=n2) if ln["ifname"] == "hh"]
        assert in_netns(b, "ping", "-c1", "-W2", a_ip).returncode == 0
        assert_as_planned(lab)
    finally:
        ip("netns", "delete", other)
