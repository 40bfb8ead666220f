"""The trace's hop list, seen/not-seen marking and loss explanations, with a fake kernel (no root).

The fake kernel answers the walker's questions from the lab's plan, the way a
healthy lab's kernel would: longest-prefix routes (connected + planned), local
addresses, ARP entries (PERMANENT from the plan, REACHABLE for addresses on
the link), VXLAN FDB entries, learned bridge FDB entries, conntrack entries
given by the test. Tests break it the way a learner would (`ip neigh del`,
`bridge fdb del`, `ip link set down`) and check what the trace says.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from helpers import two_node_topology
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml
from netlab.model.topology import Topology
from netlab.plan.build import build_plan
from netlab.plan.resources import Address, Bridge, Fdb, NatRules, Neigh, Route, Sysctl, Veth, Vxlan
from netlab.plan.iptables import BUILTIN_CHAINS, chain_of
from netlab.trace.facts import (CtEntry, FdbFacts, LinkFacts, NatRule, NatTable, NeighFacts, RouteFacts, RouteFailure,
                                VxlanFacts)
from netlab.trace.flow import Flow, Packet
from netlab.trace.labmap import LabMap
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.verdict import Verdict, explain, mark_seen
from netlab.trace.walk import walk


def lab_from(text: str):
    return resolve(Topology.model_validate(parse_yaml(text, "t.yaml").data))


class FakeKernel:
    """A healthy lab's kernel, from its plan; tests remove entries to break it."""

    def __init__(self, lab, plan):
        self.lab, self.plan = lab, plan
        self.down: set[tuple[str, str]] = set()
        self.no_neigh: dict[tuple[str, str, str], str | None] = {}  # -> state (None: no entry at all)
        self.no_fdb: set[tuple[str, str, str]] = set()
        self.no_route: set[tuple[str, str]] = set()  # (netns, dst cidr)
        self.ct: dict[str, list[CtEntry]] = {}
        self.no_rule: set[tuple[str, str]] = set()  # (netns, nat rule line): iptables -t nat -D
        self.no_chain: set[tuple[str, str]] = set()  # (netns, nat chain): iptables -t nat -F, -X
        self.counted: dict[tuple[str, str], int] = {}  # (netns, nat rule line) -> packets during the trace
        self.calls: list[tuple] = []
        self._links: dict[str, dict[str, LinkFacts]] = {}
        addrs: dict[tuple[str, str], list[str]] = {}
        for r in plan.resources:
            if isinstance(r, Address):
                addrs.setdefault((r.netns, r.dev), []).append(str(r.address))
        self.addrs = addrs
        for r in plan.resources:
            if isinstance(r, Bridge):
                self._put(r.netns, LinkFacts(r.name, 0, "bridge", r.mac, r.mtu, True))
            elif isinstance(r, Vxlan):
                self._put(r.netns, LinkFacts(r.name, 0, "vxlan", r.mac, r.mtu, True,
                                             vxlan=VxlanFacts(r.vni, r.port, str(r.local), r.dev, False)))
            elif isinstance(r, Veth):
                self._put(r.netns, LinkFacts(r.name, 0, "veth", r.mac, r.mtu, True, master=r.master,
                                             hairpin=r.hairpin if r.master else None))
                self._put(r.peer_netns, LinkFacts(r.peer_name, 0, "veth", r.peer_mac, r.mtu, True))
        for ns, links in self._links.items():
            links["lo"] = LinkFacts("lo", 1, None, "00:00:00:00:00:00", 65536, True, addresses=("127.0.0.1/8",))
            for name, link in list(links.items()):
                links[name] = LinkFacts(**{**link.__dict__, "addresses": tuple(addrs.get((ns, name), ())) or link.addresses})

    def _put(self, ns, link):
        self._links.setdefault(ns, {})[link.name] = link

    def links(self, netns):
        out = {}
        for name, link in self._links.get(netns, {}).items():
            if (netns, name) in self.down:
                link = LinkFacts(**{**link.__dict__, "up": False})
            out[name] = link
        return out

    def route_get(self, netns, dst, src=None, iif=None, l4=None):
        self.calls.append(("route", netns, dst, src, iif))
        d = IPv4Address(dst)
        for (ns, dev), items in self.addrs.items():
            if ns == netns and any(IPv4Interface(a).ip == d for a in items):
                return RouteFacts("local", "lo", prefsrc=dst, matched=f"local {dst} dev {dev}")
        best = None
        for (ns, dev), items in self.addrs.items():  # connected routes
            if ns != netns or (ns, dev) in self.down:
                continue
            for a in items:
                iface = IPv4Interface(a)
                if iface.network.prefixlen < 32 and d in iface.network and \
                        (best is None or iface.network.prefixlen > best[0].prefixlen):
                    best = (iface.network, None, dev, str(iface.ip))
        for r in self.plan.resources:  # a device set down took its routes with it, as the kernel does
            if isinstance(r, Route) and r.netns == netns and d in IPv4Network(r.dst) \
                    and (netns, str(r.dst)) not in self.no_route and (netns, r.dev) not in self.down:
                if best is None or IPv4Network(r.dst).prefixlen > best[0].prefixlen:
                    # a multipath route: the hop a hash of the ports picks (the first without them)
                    hops = tuple(str(h) for h in r.nexthops)
                    gw = hops[(l4[1] + l4[2]) % len(hops) if l4 else 0] if hops else \
                        str(r.gateway) if r.gateway else None
                    best = (IPv4Network(r.dst), gw, r.dev, None, hops)
        if best is None:
            raise RouteFailure(101, "Network is unreachable")
        net, gw, dev, pref, *more = best
        if pref is None:
            pref = next((str(IPv4Interface(a).ip) for a in self.addrs.get((netns, dev), ())), None)
        return RouteFacts("unicast", dev, gw, pref, matched=f"{net} dev {dev}", hops=more[0] if more else ())

    def neigh(self, netns, dev, ip):
        key = (netns, dev, ip)
        if key in self.no_neigh:
            state = self.no_neigh[key]
            return None if state is None else NeighFacts(ip, dev, None, state)
        for r in self.plan.resources:
            if isinstance(r, Neigh) and (r.netns, r.dev, str(r.dst)) == key:
                return NeighFacts(ip, dev, r.lladdr, "PERMANENT")
        for (ns, d), items in self.addrs.items():
            if any(str(IPv4Interface(a).ip) == ip for a in items) and self._links[ns][d].kind != "vxlan":
                return NeighFacts(ip, dev, self._links[ns][d].mac, "REACHABLE")
        for r in self.plan.resources:  # proxy ARP: a router answers for an address it routes out of another device
            if isinstance(r, Sysctl) and r.name.endswith(".proxy_arp") and r.value == "1":
                d = r.name.split(".")[3]
                if any(isinstance(x, Route) and x.netns == r.netns and x.dev != d and IPv4Address(ip) in x.dst
                       and x.dst.prefixlen for x in self.plan.resources):
                    return NeighFacts(ip, dev, self._links[r.netns][d].mac, "REACHABLE")
        return None

    def fdb(self, netns):
        out = []
        for r in self.plan.resources:
            if isinstance(r, Fdb) and r.netns == netns and (r.netns, r.dev, r.lladdr) not in self.no_fdb:
                out.append(FdbFacts(r.lladdr, r.dev, None, str(r.dst), "permanent", True))
            if isinstance(r, Veth) and r.master and r.netns == netns:
                out.append(FdbFacts(r.peer_mac, r.name, r.master, None, "learned"))
                out.append(FdbFacts(r.mac, r.name, r.master, None, "permanent"))
        return out

    def conntrack(self, netns, proto):
        return [e for e in self.ct.get(netns, []) if e.orig.proto == proto]

    def bridge_nf(self, netns):
        return True

    def filter_table(self, netns):
        return self.nat_table(netns, "filter")

    def nat_table(self, netns, table="nat"):
        planned = next((r for r in self.plan.resources if isinstance(r, NatRules) and r.netns == netns
                        and r.table == table), None)
        if planned is None:
            return None
        chains = {c for c in planned.chains if (netns, c) not in self.no_chain} | set(BUILTIN_CHAINS)
        return NatTable(frozenset(chains), tuple(
            NatRule(line, self.counted.get((netns, line), 0), self.counted.get((netns, line), 0))
            for line in planned.rules if (netns, line) not in self.no_rule and chain_of(line) in chains))


@pytest.fixture
def world():
    lab = lab_from(two_node_topology("demo"))
    plan = build_plan(lab)
    return lab, LabMap.from_lab(lab, plan), FakeKernel(lab, plan)


def ping(k, m, src="demo-fedora-1", dst="10.244.1.3", ident=7):
    return walk(k, m, src, Flow.icmp(None, dst, ident))


def test_cross_node_vxlan_path_is_the_tutorial_one(world):
    lab, m, k = world
    w = ping(k, m)
    assert w.outcome == "delivered" and w.end_netns == "demo-fedora-2"
    rows = [(h.netns, h.device, h.kind) for h in w.hops]
    n1, n2 = "demo-minikube", "demo-minikube-m02"
    port1 = lab.pod("fedora-1").host_veth
    port2 = lab.pod("fedora-2").host_veth
    assert rows == [
        ("demo-fedora-1", "eth0", "route"),
        ("demo-fedora-1", "eth0", "neigh"),
        (n1, port1, "arrive"),
        (n1, "cni0", "bridge"),
        (n1, "flannel.1", "route"),
        (n1, "flannel.1", "neigh"),
        (n1, "flannel.1", "fdb"),
        (n1, "eth0", "encap"),
        (n1, "eth0", "neigh"),
        ("demo-underlay", lab.node("minikube").underlay_veth, "arrive"),
        ("demo-underlay", lab.node("minikube-m02").underlay_veth, "bridge"),
        (n2, "eth0", "decap"),
        (n2, "flannel.1", "arrive"),
        (n2, "cni0", "route"),
        (n2, "cni0", "neigh"),
        (n2, port2, "bridge"),
        ("demo-fedora-2", "eth0", "deliver"),
    ]
    fdb = next(h for h in w.hops if h.kind == "fdb")
    assert fdb.facts["remote_vtep"] == "192.168.122.7"
    assert "bridge -n demo-minikube fdb show dev flannel.1" in fdb.commands
    enc = next(h for h in w.hops if h.kind == "encap")
    assert "UDP 192.168.122.215 → 192.168.122.7:8472, VNI 1" in enc.decision
    assert enc.observe.encapsulated and enc.observe.flow == Flow.icmp("10.244.0.2", "10.244.1.3", 7)
    route = w.hops[4]
    assert "via 10.244.1.0 dev flannel.1" in route.decision
    assert route.commands == ["ip -n demo-minikube route get 10.244.1.3 from 10.244.0.2 iif cni0"]
    # The kernel was asked, per namespace, with the packet's real ingress device.
    assert ("route", n2, "10.244.1.3", "10.244.0.2", "flannel.1") in k.calls


def test_every_row_names_a_command_a_learner_can_run(world):
    _, m, k = world
    for h in ping(k, m).hops:
        assert h.commands, h
        assert all(c.startswith(("ip ", "bridge ")) for c in h.commands), h.commands


def test_same_node_pods_are_switched_not_routed(world):
    lab, m, k = world
    w = ping(k, m, dst="10.244.0.3")
    assert w.outcome == "delivered" and w.end_netns == "demo-fedora-3"
    kinds = [h.kind for h in w.hops]
    assert "encap" not in kinds and kinds.count("route") == 1
    bridge = next(h for h in w.hops if h.kind == "bridge")
    assert bridge.device == lab.pod("fedora-3").host_veth and "FDB" in bridge.decision


def test_host_gw_routes_via_the_peer_node():
    lab = lab_from(two_node_topology("hg", mode="host-gw"))
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), FakeKernel(lab, plan)
    w = walk(k, m, "hg-fedora-1", Flow.icmp(None, "10.244.1.3", 1))
    assert w.outcome == "delivered"
    route = next(h for h in w.hops if h.netns == "hg-minikube" and h.kind == "route")
    assert "via 192.168.122.7 dev eth0" in route.decision
    assert not any(h.kind in ("encap", "decap", "fdb") for h in w.hops)


def test_missing_vxlan_arp_entry_stops_the_walk_with_the_reason(world):
    _, m, k = world
    k.no_neigh[("demo-minikube", "flannel.1", "10.244.1.0")] = "INCOMPLETE"
    w = ping(k, m)
    assert w.outcome == "stopped"
    last = w.hops[-1]
    assert (last.netns, last.device, last.kind) == ("demo-minikube", "flannel.1", "neigh")
    assert "no ARP entry for 10.244.1.0 on flannel.1" in last.problem
    assert "nolearning VXLAN" in last.problem
    assert last.fix.startswith("ip -n demo-minikube neigh replace 10.244.1.0 lladdr")


def test_missing_fdb_entry_names_the_vxlan_driver(world):
    lab, m, k = world
    k.no_fdb.add(("demo-minikube", "flannel.1", lab.node("minikube-m02").vxlan_mac))
    w = ping(k, m)
    assert w.outcome == "stopped" and w.hops[-1].kind == "fdb"
    assert "no FDB entry" in w.hops[-1].problem and "drops the frame" in w.hops[-1].problem
    assert w.hops[-1].fix.startswith("bridge -n demo-minikube fdb replace")


def test_no_route_is_a_drop_row(world):
    _, m, k = world
    w = walk(k, m, "demo-fedora-1", Flow.icmp("10.244.0.2", "10.244.0.2", 1))
    assert w.outcome == "delivered"  # its own address: local
    k.no_route.add(("demo-minikube", "10.244.1.0/24"))  # ip -n demo-minikube route del 10.244.1.0/24
    # Without its own route the packet would take the node's default route to the
    # underlay's router; with that one gone too, the node has no route at all.
    k.no_route.add(("demo-minikube", "0.0.0.0/0"))  # ip -n demo-minikube route del default
    w = ping(k, m)
    assert w.outcome == "stopped"
    last = w.hops[-1]
    assert (last.netns, last.kind) == ("demo-minikube", "drop")
    assert last.problem == "no route to 10.244.1.3 in demo-minikube: Network is unreachable"
    assert last.fix == "ip -n demo-minikube route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink"


def test_down_bridge_is_named(world):
    _, m, k = world
    k.down.add(("demo-minikube", "cni0"))
    w = ping(k, m)
    assert w.outcome == "stopped"
    assert "bridge cni0 in demo-minikube is down" in w.hops[-1].problem


def test_service_dnat_comes_from_conntrack_and_names_the_endpoint():
    text = two_node_topology("svc").replace("{name: fedora-1, node: minikube, ip: 10.244.0.2}",
                                            "{name: fedora-1, node: minikube, ip: 10.244.0.2, labels: {app: web}}")
    text = text.replace("{name: fedora-2, node: minikube-m02, ip: 10.244.1.3}",
                        "{name: fedora-2, node: minikube-m02, ip: 10.244.1.3, labels: {app: web}}")
    text += "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n"
    lab = lab_from(text)
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), FakeKernel(lab, plan)
    cip = str(lab.addressing.service_ip[("default", "web")])
    fwd = Flow("tcp", "10.244.0.2", cip, 40000, 80)
    k.ct["svc-minikube"] = [CtEntry(fwd, Flow("tcp", "10.244.1.3", "10.244.0.2", 8080, 40000), "SYN_RECV")]
    w = walk(k, m, "svc-fedora-1", fwd)
    assert w.outcome == "delivered" and w.end_netns == "svc-fedora-2"
    dnat = next(h for h in w.hops if h.kind == "dnat")
    assert dnat.netns == "svc-minikube" and dnat.facts["endpoint"] == "fedora-2"
    assert dnat.facts["svc_chain"].startswith("KUBE-SVC-") and dnat.facts["sep_chain"].startswith("KUBE-SEP-")
    assert f"DNAT {cip}:80 → 10.244.1.3:8080" in dnat.decision
    assert f"come from {cip}:80" in dnat.decision
    # After the DNAT the kernel is asked about the endpoint, not the ClusterIP.
    assert ("route", "svc-minikube", "10.244.1.3", "10.244.0.2", "cni0") in k.calls
    # The row before the DNAT may see the packet either way (br_netfilter DNATs at the port).
    up = next(h for h in w.hops if h.kind == "bridge" and h.netns == "svc-minikube")
    assert up.observe.flow.dst == cip and up.observe.alt.dst == "10.244.1.3"
    # The reply: conntrack turns the endpoint's address back into the ClusterIP.
    back = walk(k, m, "svc-fedora-2", w.final.reversed(), role="reply", direction="reply")
    assert back.outcome == "delivered" and back.end_netns == "svc-fedora-1"
    undo = next(h for h in back.hops if h.kind == "snat")
    assert undo.netns == "svc-minikube" and "reverse translation" in undo.decision
    assert back.final == Flow("tcp", cip, "10.244.0.2", 80, 40000)


def test_service_without_conntrack_entry_says_it_was_not_dnated():
    text = two_node_topology("nd") + "services:\n  - {name: web, selector: {app: none}, ports: [{port: 80}]}\n"
    lab = lab_from(text)
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), FakeKernel(lab, plan)
    cip = str(lab.addressing.service_ip[("default", "web")])
    w = walk(k, m, "nd-fedora-1", Flow("tcp", "10.244.0.2", cip, 40000, 80))
    row = next(h for h in w.hops if h.kind == "dnat")
    assert "no endpoints" in row.problem


def test_masquerade_and_its_reversal():
    lab = lab_from(two_node_topology("mq"))
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), FakeKernel(lab, plan)
    fwd = Flow.icmp("10.244.0.2", "192.168.122.7", 5)
    # --random-fully remaps the echo id too: only the SNAT side changes it.
    k.ct["mq-minikube"] = [CtEntry(fwd, Flow.icmp("192.168.122.7", "192.168.122.215", 900))]
    w = walk(k, m, "mq-fedora-1", fwd)
    assert w.outcome == "delivered" and w.end_netns == "mq-minikube-m02"
    assert not any(h.kind == "dnat" for h in w.hops)
    snat = next(h for h in w.hops if h.kind == "snat")
    assert "MASQUERADE" in snat.decision and w.final == Flow.icmp("192.168.122.215", "192.168.122.7", 900)
    back = walk(k, m, "mq-minikube-m02", w.final.reversed(), role="reply", direction="reply")
    undo = next(h for h in back.hops if h.kind == "dnat")
    assert "undoes the masquerade" in undo.decision
    assert back.final == Flow.icmp("192.168.122.7", "10.244.0.2", 5)


# --- seen / not seen, and where it was lost -------------------------------------

def _seen_everywhere(w, role="request"):
    return [Packet(h.observe.netns, h.observe.ifname, h.observe.direction, float(i), h.observe.flow, role,
                   h.observe.encapsulated) for i, h in enumerate(w.hops) if h.observe]


def test_all_rows_seen_means_delivered(world):
    _, m, k = world
    w = ping(k, m)
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    assert all(h.seen for h in w.hops if h.observe)
    assert explain(w).delivered


def test_packet_not_seen_after_the_veth_is_lost_at_the_next_hop(world):
    _, m, k = world
    w = ping(k, m)
    pkts = [p for p in _seen_everywhere(w) if p.netns == "demo-fedora-1"]
    mark_seen(w.hops, pkts, {h.netns for h in w.hops})
    v = explain(w)
    assert not v.delivered
    assert w.hops[v.lost_at].netns == "demo-minikube"
    assert "never on demo-minikube" in v.reason and "netlab inspect minikube" in v.reason


def test_loss_reason_is_the_kernels(world):
    _, m, k = world
    k.no_neigh[("demo-minikube", "flannel.1", "10.244.1.0")] = "FAILED"
    w = ping(k, m)
    pkts = [p for p in _seen_everywhere(w) if p.ifname != "flannel.1"]
    mark_seen(w.hops, pkts, {h.netns for h in w.hops})
    v = explain(w)
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.device) == ("demo-minikube", "flannel.1")
    assert v.reason.startswith("no ARP entry for 10.244.1.0 on flannel.1 (FAILED)")
    assert v.fix and "neigh replace" in v.fix


def test_seen_on_the_vxlan_device_but_dropped_by_the_driver(world):
    """No FDB entry: the tap on flannel.1 sees the packet, the driver then drops it."""
    lab, m, k = world
    k.no_fdb.add(("demo-minikube", "flannel.1", lab.node("minikube-m02").vxlan_mac))
    w = ping(k, m)
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    v = explain(w)
    assert not v.delivered and w.hops[v.lost_at].kind == "fdb" and "no FDB entry" in v.reason


def test_wrong_role_or_direction_does_not_count(world):
    _, m, k = world
    w = ping(k, m)
    first = w.hops[0].observe
    mark_seen(w.hops, [Packet(first.netns, first.ifname, "in", 0.0, first.flow, "request")], {"demo-fedora-1"})
    assert w.hops[0].seen is False
    mark_seen(w.hops, [Packet(first.netns, first.ifname, "out", 0.0, first.flow, "reply")], {"demo-fedora-1"})
    assert w.hops[0].seen is False
    mark_seen(w.hops, [Packet(first.netns, first.ifname, "out", 0.0, first.flow, "request")], {"demo-fedora-1"})
    assert w.hops[0].seen is True
    # Namespaces that were not captured are "-", not "NOT SEEN".
    assert all(h.seen is None for h in w.hops if h.netns != "demo-fedora-1")


# --- rendering ----------------------------------------------------------------------

def _result(w, back=None, verdict=None):
    r = TraceResult(lab="demo", src={"name": "fedora-1", "ip": "10.244.0.2"}, dst={"name": "fedora-2", "ip": "10.244.1.3"},
                    proto="icmp", port=None, marker="netlab-trace 0001", forward=w, reply=back,
                    verdict=verdict or explain(w), reply_verdict=explain(back) if back else None,
                    reply_received=back is not None, reply_text="echo reply", captured_netns=["demo-fedora-1"],
                    pcap="/tmp/x.pcapng")
    number(r)
    return r


def test_text_has_one_row_per_hop_with_commands_and_the_tshark_hint(world):
    _, m, k = world
    w = ping(k, m)
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    text = render_text(_result(w))
    assert text.splitlines()[0].startswith("trace fedora-1 (10.244.0.2) → fedora-2 (10.244.1.3)")
    for i in range(1, len(w.hops) + 1):
        assert any(line.lstrip().startswith(f"{i} ") for line in text.splitlines()), i
    assert "$ bridge -n demo-minikube fdb show dev flannel.1" in text
    assert "result: delivered to fedora-2" in text
    assert "tshark -r /tmp/x.pcapng -d udp.port==8472,vxlan" in text


def test_text_for_a_lost_packet_names_hop_reason_and_fix(world):
    _, m, k = world
    k.no_neigh[("demo-minikube", "flannel.1", "10.244.1.0")] = "INCOMPLETE"
    w = ping(k, m)
    mark_seen(w.hops, [p for p in _seen_everywhere(w) if p.ifname != "flannel.1"], {h.netns for h in w.hops})
    text = render_text(_result(w))
    assert "NOT SEEN" in text
    assert "result: LOST at hop 6 (demo-minikube flannel.1): no ARP entry for 10.244.1.0" in text  # the !! row
    assert "fix: ip -n demo-minikube neigh replace 10.244.1.0" in text


def test_json_rows_and_reply(world):
    _, m, k = world
    w = ping(k, m)
    back = walk(k, m, w.end_netns, w.final.reversed(), role="reply", direction="reply")
    data = _result(w, back).to_json()
    assert [h["index"] for h in data["hops"]] == list(range(1, len(w.hops) + 1))
    assert data["reply_hops"][0]["direction"] == "reply"
    assert data["hops"][0]["observe"]["flow"] == "10.244.0.2 → 10.244.1.3 icmp id 7"
    assert set(data) >= {"lab", "src", "dst", "hops", "reply_hops", "delivered", "lost", "endpoint", "pcap"}
    import json

    json.dumps(data)  # plain data all the way down


def test_reply_rows_are_summarised_unless_asked(world):
    _, m, k = world
    w = ping(k, m)
    back = walk(k, m, w.end_netns, w.final.reversed(), role="reply", direction="reply")
    short = render_text(_result(w, back))
    full = render_text(_result(w, back), full_reply=True)
    assert "more rows with --full-reply" in short
    assert full.count("\n r") > short.count("\n r")


def test_explain_without_observations_trusts_the_walk():
    from netlab.trace.hops import Hop, Walk

    hops = [Hop("ns", "pod a", "eth0", "route", "x")]
    assert explain(Walk(hops, "delivered")).delivered
    v = explain(Walk(hops, "stopped", reason="no route"))
    assert not v.delivered and v.reason == "no route"
    assert isinstance(v, Verdict)

