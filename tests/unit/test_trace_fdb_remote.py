"""trace of a pod's packet whose node's FDB entry names the plan's remote VTEP with another UDP port or VNI
(`bridge fdb replace MAC dev flannel.1 dst IP port 4789 self permanent`, `... vni 7 ...`; QA qa59f).

Its FDB row printed the entry without its port, said nothing wrong there, and the trace blamed the firewall
("the kernel's route, ARP and FDB answers look right"): the row now shows the entry as `bridge fdb` does, names
it as the cause (the frame goes on, to where no VXLAN device takes it), with the plan's `fdb replace` as its
fix; the packet is followed with the port and VNI the kernel sends it with."""

from __future__ import annotations

from dataclasses import replace

import pytest

from netlab.plan.build import build_plan
from netlab.trace.facts import FdbFacts
from netlab.trace.flow import Flow
from netlab.trace.verdict import explain
from netlab.trace.walk import walk
from test_trace_stray_paths import Kernel, world


class Remote(Kernel):
    """The stray-path fake kernel, with an FDB entry's port and VNI as the kernel says them."""

    def __init__(self, lab, plan):
        super().__init__(lab, plan)
        self.remote: dict[tuple[str, str, str], dict] = {}  # (netns, dev, mac) -> {"port": ..., "vni": ...}

    def fdb(self, netns):
        return [replace(e, **self.remote.get((netns, e.dev, e.lladdr), {})) if isinstance(e, FdbFacts) else e
                for e in super().fdb(netns)]


@pytest.mark.parametrize("remote, words, lost", [
    ({"port": 4789}, "to UDP port 4789, not flannel.1's 8472 (no VXLAN device of the remote node listens there)",
     "no VXLAN device listens there"),
    ({"vni": 7}, "with VNI 7, not flannel.1's 1 (the remote node's device drops it)",
     "the packet carries VNI 7 but flannel.1 in t3-c is VNI 1: dropped (the sender's FDB entry"),
])
def test_an_fdb_entry_with_another_port_or_vni_is_the_cause_with_its_fix(remote, words, lost):
    lab, m, _ = world("vxlan")
    k = Remote(lab, build_plan(lab))
    mac, c_ip = lab.node("c").vxlan_mac, str(lab.node("c").ip)
    k.remote[("t3-a", "flannel.1", mac)] = remote
    w = walk(k, m, "t3-x1", Flow.icmp(None, str(lab.pod("x3").ip), 1))
    fdb = next(h for h in w.hops if h.kind == "fdb" and h.netns == "t3-a")
    shown = " ".join(f"{k} {v}" for k, v in remote.items())
    assert f"FDB entry: {mac} dev flannel.1 dst {c_ip} {shown} self permanent" in fdb.decision, fdb.decision
    assert fdb.cause and fdb.problem == f"the FDB entry sends the frame {words}", fdb.problem
    assert fdb.fix == f"bridge -n t3-a fdb replace {mac} dev flannel.1 dst {c_ip} self permanent"
    assert all(fdb.facts[name] == value for name, value in remote.items()), fdb.facts
    v = explain(w)
    assert v.lost_at == w.hops.index(fdb) and v.fix == fdb.fix, v
    assert lost in v.reason and "look at the firewall" not in v.reason, v.reason
    assert "made again" not in v.reason, v.reason  # both devices are the plan's VNI: the entry is the fault


def test_an_fdb_entry_via_lo_stops_the_walk_where_the_vxlan_driver_drops_the_frame():
    """`bridge fdb replace MAC dev flannel.1 dst C self permanent via lo`: the VXLAN driver looks its route to the
    remote up out of lo, finds none, and drops the frame (measured: flannel.1's TX errors count it; tcpdump sees
    nothing on the node's lo or eth0, nor on the remote node). trace's FDB row was right, but the walk went on over
    eth0 to the remote and the result added "(it went on as it was and was lost in ... cni0 ...)"."""
    lab, m, _ = world("vxlan")
    k = Remote(lab, build_plan(lab))
    mac = lab.node("c").vxlan_mac
    k.remote[("t3-a", "flannel.1", mac)] = {"via": "lo"}
    w = walk(k, m, "t3-x1", Flow.icmp(None, str(lab.pod("x3").ip), 1))
    fdb = next(h for h in w.hops if h.kind == "fdb" and h.netns == "t3-a")
    assert w.hops[-1] is fdb and w.outcome == "stopped", [(h.netns, h.kind) for h in w.hops]
    assert "TX errors" in fdb.problem and fdb.facts["dropped_here"], fdb.problem
    v = explain(w)
    assert v.lost_at == w.hops.index(fdb) and v.fix == fdb.fix and "went on" not in v.reason, v.reason
