"""trace's line for a refused hostPort (trace/hostport.unmapped) blames portmap's lost DNAT only for a pod whose
chain has portmap with its iptables rules (cni/portmap.uses_portmap), as status does (cni/changed.node_side).

A chain whose plugin given portMappings is another (portmap's nftables backend, a plugin of the user's) writes no
CNI-HOSTPORT-DNAT: trace to the node's hostPort, refused, said "pod a's hostPort, but portmap's DNAT of its hostPort
... is gone; up re-attaches the pod", which no re-attach makes true. The chain is the one the pod was ADDed with
(its record), else the lab's conflist now. No root: the lab's files, its nat table as trace read it.
"""

from __future__ import annotations

import json
import types

import pytest

from cni_fakes import cni_topo, conflist_lab, lab_of
from netlab.realize import state as state_mod
from netlab.realize.attachments import KEY
from netlab.trace import hostport
from netlab.trace.facts import NatTable

TOPO = cni_topo("hpc") + ("  - {name: a, node: n1, containers: [{name: web, ports: [{containerPort: 8080, "
                          "hostPort: 18080}]}]}\n")
IPTABLES = {"type": "portmap", "capabilities": {"portMappings": True}}
NFTABLES = {**IPTABLES, "backend": "nftables"}
MINE = {"type": "myports", "capabilities": {"portMappings": True}}  # a plugin of the user's


def _lab(tmp_path, monkeypatch, portmap, records=None):
    conflist_lab(tmp_path, TOPO)
    conflist = {"cniVersion": "0.3.1", "name": "net", "plugins": [{"type": "chain"}, portmap]}
    (tmp_path / "net.conflist").write_text(json.dumps(conflist))
    state = None if records is None else types.SimpleNamespace(extra={KEY: {"pods": records}})
    monkeypatch.setattr(state_mod, "load_state", lambda name: state)
    return lab_of(tmp_path)


def _said(lab):
    reads = []

    def nat_table(netns):  # flushed: nothing of portmap's
        reads.append(netns)
        return NatTable(frozenset(), ())

    return hostport.unmapped(lab, {}, nat_table, lab.node("n1").netns, "tcp", 18080), reads


@pytest.mark.parametrize("plugin", [NFTABLES, MINE])
def test_a_chain_without_portmaps_iptables_rules_is_not_told_its_dnat_is_gone(tmp_path, monkeypatch, plugin):
    lab = _lab(tmp_path, monkeypatch, plugin)
    assert _said(lab) == (None, [])  # nothing to read either


def test_a_chain_with_portmap_is(tmp_path, monkeypatch):
    lab = _lab(tmp_path, monkeypatch, IPTABLES)
    said, reads = _said(lab)
    assert said is not None and said[0].startswith(
        f"tcp port 18080 of n1 is pod a's hostPort, but portmap's DNAT of its hostPort 18080/tcp to {lab.pod('a').ip}"
        ":8080 is gone: the node's nat PREROUTING has no jump to CNI-HOSTPORT-DNAT; up re-attaches the pod"), said
    assert said[1] == (f"ip netns exec {lab.node('n1').netns} iptables -t nat -A PREROUTING -m addrtype --dst-type "
                       "LOCAL -j CNI-HOSTPORT-DNAT")
    assert reads == [lab.node("n1").netns]


def test_the_chain_is_the_one_the_pod_was_added_with(tmp_path, monkeypatch):
    """The conflist edited since (portmap added, or taken out): the pod keeps the chain its record has until it is
    re-attached (up --reconfigure)."""
    for name in ("1", "2"):
        (tmp_path / name).mkdir()
    added = {"cniVersion": "0.3.1", "name": "net", "plugins": [{"type": "chain"}, MINE]}
    lab = _lab(tmp_path / "1", monkeypatch, IPTABLES, {"a": {"networks": [[added, "eth0"]]}})
    assert _said(lab)[0] is None
    added = {**added, "plugins": [{"type": "chain"}, IPTABLES]}
    lab = _lab(tmp_path / "2", monkeypatch, NFTABLES, {"a": {"networks": [[added, "eth0"]]}})
    assert _said(lab)[0] is not None


def test_a_builtin_lab_s_pod_is_told_its_dnat_is_gone_and_that_up_writes_it_again(tmp_path, monkeypatch):
    """A builtin lab writes portmap's rules for its pods' hostPorts itself (plan/portmap_rules.py): a refused
    hostPort whose DNAT is gone names it, and up writes the node's nat rules again (no pod to re-attach)."""
    from netlab.model.lab import resolve
    from netlab.model.load import load_topology

    (tmp_path / "t.yaml").write_text(TOPO.replace("{conflist: net.conflist, binDir: bin}", "builtin"))
    lab = resolve(load_topology(str(tmp_path / "t.yaml")))
    assert lab.cni == "builtin"
    said, reads = _said(lab)
    n1 = lab.node("n1").netns
    assert said == (f"tcp port 18080 of n1 is pod a's hostPort, but portmap's DNAT of its hostPort 18080/tcp to "
                    f"{lab.pod('a').ip}:8080 is gone: the node's nat PREROUTING has no jump to CNI-HOSTPORT-DNAT; up "
                    f"writes the node's nat rules again (ip netns exec {n1} iptables-save -t nat)",
                    f"ip netns exec {n1} iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j "
                    "CNI-HOSTPORT-DNAT")
    assert reads == [lab.node("n1").netns]
