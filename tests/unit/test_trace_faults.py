"""trace's reasons for faults the kernel's own answer does not name (netlab/trace/faults.py)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from netlab.api.topology import load
from netlab.errors import netlab_command
from netlab.plan.build import build_plan
from netlab.trace import faults
from netlab.trace.labmap import LabMap


class Sysctls:
    """Answers sysctls and route lookups from a table, as the trace's kernel does."""

    def __init__(self, values: dict, back: str = "flannel.1", policy: str | None = None):
        self.values, self.back, self.policy = values, back, policy

    def sysctl(self, netns, key):
        return self.values.get((netns, key))

    def route_get(self, netns, dst):
        return SimpleNamespace(oif=self.back)

    def filter_policy(self, netns, chain):
        return self.policy


def _map() -> LabMap:
    lab = load(None).lab
    return LabMap.from_lab(lab, build_plan(lab))


def test_ip_forward_off_is_named():
    k = Sysctls({("n", "net.ipv4.ip_forward"): "0"})
    why, fix = faults.refused(k, "n", "cni0", "10.244.0.2", "10.244.1.3", "No route to host")
    assert "net.ipv4.ip_forward = 0" in why and fix.endswith("net.ipv4.ip_forward=1")
    assert faults.refused(k, "n", None, "10.244.0.2", "10.244.1.3", "x") is None  # not forwarded: no claim


def test_ip_forward_off_says_what_the_namespace_is():
    """Was "the node does not forward" in a pod, the gateway or the underlay too."""
    m = _map()
    for ns, where in m.names.items():
        k = Sysctls({(ns, "net.ipv4.ip_forward"): "0"})
        why, _ = faults.refused(k, ns, "eth0", "10.244.0.2", "10.244.1.3", "No route to host", m)
        assert f"in {ns}: the {where} does not forward, so" in why, why
    pod = next(ns for ns, where in m.names.items() if where.startswith("pod "))
    why, _ = faults.refused(Sysctls({(pod, "net.ipv4.ip_forward"): "0"}), pod, "eth0", "a", "b", "x", m)
    assert "node" not in why and f": the {m.names[pod]} does not forward" in why
    why, _ = faults.refused(Sysctls({("n", "net.ipv4.ip_forward"): "0"}), "n", "eth0", "a", "b", "x")
    assert "in n: the namespace does not forward" in why  # no map: no claim of what it is


def test_ip_forward_off_on_a_node_says_every_flow_it_forwards_fails_not_only_the_one_traced():
    """ip-forward-off's trace named the one flow traced: the node drops every flow it would forward, among them
    every ClusterIP flow of its pods (DNATed, then routed, also to a pod on its own bridge)."""
    m = _map()
    node = next(ns for ns, where in m.names.items() if where.startswith("node "))
    why, _ = faults.refused(Sysctls({(node, "net.ipv4.ip_forward"): "0"}), node, "cni0", "a", "b", "x", m)
    # QA q26 3: also its pods' egress and the NodePort/LoadBalancer flows from outside it takes in.
    assert why.endswith("(route get says: x); so is every packet the node would forward, not only this one: every "
                        "flow between its pods and other nodes' pods, every ClusterIP flow from its pods, "
                        "whichever endpoint (DNATed, then routed), its pods' egress to internet hosts, and every "
                        "NodePort or LoadBalancer flow from outside that comes in on it"), why
    pod = next(ns for ns, where in m.names.items() if where.startswith("pod "))
    why, _ = faults.refused(Sysctls({(pod, "net.ipv4.ip_forward"): "0"}), pod, "eth0", "a", "b", "x", m)
    assert "not only this one" not in why  # a pod forwards nothing of the lab's


def test_strict_rp_filter_names_both_interfaces():
    k = Sysctls({("n", "net.ipv4.ip_forward"): "1", ("n", "net.ipv4.conf.all.rp_filter"): "1"})
    why, fix = faults.refused(k, "n", "eth0", "10.244.1.3", "10.244.0.2", "Invalid argument")
    assert "strict rp_filter" in why and "came in on eth0" in why and "leaves by flannel.1" in why
    loose = Sysctls({("n", "net.ipv4.conf.all.rp_filter"): "2"})
    assert faults.refused(loose, "n", "eth0", "10.244.1.3", "10.244.0.2", "x") is None


def test_kernels_without_sysctls_skip_the_checks():
    assert faults.refused(object(), "n", "eth0", "a", "b", "x") is None
    assert faults.forward_policy(object(), "n") is None


def test_pod_cidr_by_the_default_route():
    m = _map()
    ns = m.node_pod_cidrs["minikube"][0]
    why, fix = faults.pod_cidr_by_default(m, ns, "10.244.1.3", "default via 192.168.122.1 dev eth0")
    assert "10.244.1.0/24 (minikube-m02's pod CIDR)" in why and "flannel.1" in fix
    assert why.endswith("(the overlay route is missing)")
    host_gw = dataclasses.replace(m, mode="host-gw")  # no overlay to speak of (it said "the overlay route")
    why, _ = faults.pod_cidr_by_default(host_gw, ns, "10.244.1.3", "default via 192.168.122.1 dev eth0")
    assert why.endswith("(host-gw's route via that node's address is missing)")
    assert faults.pod_cidr_by_default(m, ns, "10.244.1.3", "10.244.1.0/24 via 10.244.1.0 dev flannel.1") is None
    assert faults.pod_cidr_by_default(m, ns, "203.0.113.10", "default via 192.168.122.1 dev eth0") is None


def test_pod_cidr_by_the_default_route_because_flannel_1_is_down_is_fixed_with_what_went_with_the_link():
    """flannel.1 down: its route to the other node's pod CIDR and that node's VTEP's permanent ARP entry went with
    it and do not come back with the link; the route alone is refused while the link is down ("Nexthop device is
    not up"), so the fix is the link up, then the route, then the ARP entry, as planned."""
    m = _map()
    ns = m.node_pod_cidrs["minikube"][0]
    down = SimpleNamespace(links=lambda netns: {"flannel.1": SimpleNamespace(up=netns != ns)})
    why, fix = faults.pod_cidr_by_default(m, ns, "10.244.1.3", "default via 192.168.122.1 dev eth0", down)
    assert why.startswith(f"no route to 10.244.1.0/24 (minikube-m02's pod CIDR) in {ns}: flannel.1 is down, and a "
                          "link set down loses its routes (the overlay route via flannel.1 went with it"), why
    assert fix == " && ".join([f"ip -n {ns} link set flannel.1 up", m.planned_route[(ns, "10.244.1.0/24")],
                               m.planned_neigh[(ns, "flannel.1", "10.244.1.0")]])
    assert m.planned_route[(ns, "10.244.1.0/24")].endswith("via 10.244.1.0 dev flannel.1 onlink")
    assert m.planned_neigh[(ns, "flannel.1", "10.244.1.0")].endswith("dev flannel.1 nud permanent")
    # eth0 down: its default route does not come back with the link either.
    assert m.link_fix(ns, "eth0") == f"ip -n {ns} link set eth0 up && ip -n {ns} route add default via " \
        "192.168.122.1 dev eth0"
    assert m.link_fix(ns, "cni0") == f"ip -n {ns} link set cni0 up"  # its connected route comes back by itself


def test_unknown_vtep():
    m = _map()
    assert faults.unknown_vtep(m, "192.168.122.7") is None
    assert "192.168.122.254, which is no node" in faults.unknown_vtep(m, "192.168.122.254")


def test_forward_policy_drop():
    why, fix = faults.forward_policy(Sysctls({}, policy="DROP"), "n")
    assert "policy is DROP" in why and "-P FORWARD ACCEPT" in fix
    assert faults.forward_policy(Sysctls({}, policy="ACCEPT"), "n") is None


def test_too_big():
    port = SimpleNamespace(mtu=1450)
    why, fix = faults.too_big(port, 1500, "node", "eth0", ("underlay", "veth1"))
    assert "1500 bytes" in why and "at most 1450" in why and "mtu 1500" in fix
    assert faults.too_big(port, 1450, "node", "eth0", ("underlay", "veth1")) is None
    assert faults.too_big(port, 0, "node", "eth0", ("underlay", "veth1")) is None  # a small packet: never
    why, fix = faults.too_big(port, 1451, "pod", "eth0", ("pod", "eth0"), own=True)
    assert "with DF set the kernel does not send it" in why and fix is None


def test_too_big_says_encapsulation_only_of_an_encapsulated_packet():
    """A same-node flow crosses one bridge unencapsulated: no outer headers, no overlay MTU (QA fx61a 3)."""
    port = SimpleNamespace(mtu=1300)
    why, _ = faults.too_big(port, 1450, "n1", "cni0", ("n1", "veth1"))
    assert "the packet is 1450 bytes (IP) but veth1 in n1 takes at most 1300" in why
    assert "encapsulation" not in why and "overlay" not in why
    why, _ = faults.too_big(port, 1500, "n1", "eth0", ("underlay", "veth1"), encap=True)
    assert "1500 bytes (IP, with its encapsulation)" in why and "the pods' MTU + 50" in why


def test_a_packet_lost_before_a_next_hop_it_never_asked_for_is_blamed_on_the_forward_policy():
    """A node's VXLAN packet for a peer whose underlay address has no ARP entry at all: the kernel would have made
    one (INCOMPLETE) had the packet got there, so what dropped it is before, where it was lost; with FORWARD's
    policy DROP there, that is the reason (it blamed the ARP entry). A missing entry elsewhere stays the reason."""
    from netlab.trace import l2steps, lossblame
    from netlab.trace.verdict import Verdict

    hops = [SimpleNamespace(netns="lab-node-1")]
    never = Verdict(False, 0, f"no ARP entry for 192.168.122.3 on eth0: {l2steps.NEVER_ASKED} (it did not get here?)")
    why = lossblame.firewall(Sysctls({}, policy="DROP"), never, hops)
    assert why.reason.startswith("the FORWARD chain's policy is DROP in lab-node-1") and "-P FORWARD ACCEPT" in why.fix
    assert lossblame.firewall(Sysctls({}, policy="ACCEPT"), never, hops) == never
    unanswered = Verdict(False, 0, "no ARP answer for 10.244.1.3 on cni0 (FAILED): nothing on that link answers")
    assert lossblame.firewall(Sysctls({}, policy="DROP"), unanswered, hops) == unanswered


def test_an_impairments_loss_is_named_where_the_frames_are_dropped():
    """A pod's loss is dropped on its veth peer's ingress hook, after the capture's tap there: the packet is seen
    arriving on the peer and never at the next row (or, ARP lost too, it never leaves the pod: no ARP answer); a
    bridge's or VXLAN device's loss on its egress hook, before the tap: not seen leaving it."""
    from netlab.plan.impair import LossHook
    from netlab.trace import lossblame
    from netlab.trace.verdict import Verdict

    def hop(ns, dev, direction):
        return SimpleNamespace(observe=SimpleNamespace(netns=ns, ifname=dev, direction=direction))

    losses = {("lab-n1", "veth1", "ingress"): LossHook("a:eth0", "lab-a", "eth0", "lab-n1", "ingress", "veth1", "100%"),
              ("lab-n1", "cni0", "egress"): LossHook("n1:cni0", "lab-n1", "cni0", "lab-n1", "egress", "cni0", "30%")}
    way = [hop("lab-a", "eth0", "out"), hop("lab-n1", "veth1", "in"), hop("lab-n1", "cni0", "in")]
    lost = Verdict(False, 2, "seen on lab-n1 veth1, never on lab-n1 cni0; ... look at the firewall")
    v = lossblame.impaired(losses, lost, way, "lab")
    assert v.reason == ("a:eth0 has netlab's impairment loss 100%: chain loss-a-eth0 of table netdev netlab-impair in "
                        "lab-n1 drops every frame arriving on veth1, a:eth0's veth peer (loss on the wire: the sender "
                        "is not told), and the packet went no further")
    assert v.fix == netlab_command("impair --lab lab a:eth0 --clear") and v.lost_at == 2
    no_arp = Verdict(False, 0, "no ARP answer for 10.244.0.1 on eth0 (INCOMPLETE)")
    assert lossblame.impaired(losses, no_arp, way, "lab").fix == netlab_command("impair --lab lab a:eth0 --clear")
    back = [hop("lab-n1", "flannel.1", "in"), hop("lab-n1", "cni0", "out")]
    why = lossblame.impaired(losses, Verdict(False, 1, "never seen"), back, "lab").reason
    assert "n1:cni0 has netlab's impairment loss 30%" in why and "drops 30% of the frames, at random, leaving by " \
        "cni0" in why
    elsewhere = Verdict(False, 1, "never seen")
    assert lossblame.impaired(losses, elsewhere, [hop("lab-b", "eth0", "out"), hop("lab-n2", "veth2", "in")],
                              "lab") == elsewhere
    fixed = Verdict(False, 2, "a route is missing", "ip route add ...")
    assert lossblame.impaired(losses, fixed, way, "lab") == fixed  # a fault found: that is the reason
    assert faults.impairment_loss(None, "lab") is None

def test_a_delivered_trace_names_the_impaired_interfaces_its_path_leaves_by():
    """A rate or a loss on the path slows or drops such packets even when this one got through: the result says
    which (it said nothing: QA qh 4), each once per direction, in text and JSON; an interface entered is not one
    left by (an impairment acts on what an interface sends)."""
    from netlab.model.lab import resolve
    from netlab.model.topology import Topology
    from netlab.trace import lossblame
    from netlab.trace.flow import Flow, Observe
    from netlab.trace.hops import Hop, Walk
    from netlab.trace.render import TraceResult, number, render_text
    from netlab.trace.verdict import Verdict

    lab = resolve(Topology.model_validate({"name": "x", "nodes": [{"name": "n1", "impair": {"cni0": {"loss": "5%"}}}],
                                           "pods": [{"name": "a", "node": "n1", "impair": {"eth0": {"rate": "1mbit"}}},
                                                    {"name": "b", "node": "n1"}]}))
    flow = Flow("10.244.0.2", "10.244.0.3", "icmp")

    def hop(ns, dev, direction, way="forward"):
        return Hop(netns=ns, where=ns, device=dev, kind="x", decision="x", direction=way,
                   observe=Observe(ns, dev, direction, flow, "request"))

    fwd = Walk(hops=[hop("x-a", "eth0", "out"), hop("x-a", "eth0", "out"), hop("x-n1", "cni0", "in")],
               outcome="delivered")
    back = Walk(hops=[hop("x-n1", "cni0", "out", "reply"), hop("x-a", "eth0", "in", "reply")], outcome="delivered")
    r = TraceResult(lab="x", src={"name": "a", "kind": "pod", "ip": "10.244.0.2"}, dst={"name": "b", "kind": "pod",
                    "ip": "10.244.0.3"}, proto="icmp", port=None, marker="m", forward=fwd, reply=back,
                    verdict=Verdict(True, None, None), reply_verdict=Verdict(True, None, None), reply_received=True)
    number(r)
    r.impairments = lossblame.on_path(lab, r)
    assert r.impairments == [
        {"target": "a:eth0", "impairment": "rate 1mbit", "direction": "forward", "hop": "1"},
        {"target": "n1:cni0", "impairment": "loss 5%", "direction": "reply", "hop": "r1"}]
    assert r.to_json()["impairments"] == r.impairments
    assert ("note: the path crosses interfaces netlab impairs: a:eth0 (rate 1mbit, hop 1), n1:cni0 (loss 5%, hop r1); "
            "`netlab impair` lists them") in render_text(r)


def test_pod_cidr_by_the_default_route_names_the_gateway_the_node_sends_it_to():
    """QA q19 3: in a lab with an internet: section, the nodes' default route leads to the internet's gateway
    (LAB-gateway holds 192.168.122.1; the underlay only switches), where trace loses the packet; the reason said
    "the underlay's gateway", beside the hop that names LAB-gateway (the break catalogue says so since 93e4115)."""
    from netlab.model.lab import resolve
    from netlab.model.topology import Topology

    data = load(None).lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["internet"] = {"cidr": "203.0.113.0/24", "gateway": {"ip": "203.0.113.1"}}
    lab = resolve(Topology.model_validate(data))
    m = LabMap.from_lab(lab, build_plan(lab))
    ns = m.node_pod_cidrs["minikube"][0]
    gateway = dict(lab.internet_hosts)["gateway"]
    down = SimpleNamespace(links=lambda netns: {"flannel.1": SimpleNamespace(up=netns != ns)})
    for k in (None, down):
        why, _ = faults.pod_cidr_by_default(m, ns, "10.244.1.3", "default via 192.168.122.1 dev eth0", k)
        assert f"sends 10.244.1.3 to the internet's gateway ({gateway}), which has no route to pods" in why, why
        assert "underlay" not in why, why
    why, _ = faults.pod_cidr_by_default(_map(), ns, "10.244.1.3", "default via 192.168.122.1 dev eth0")
    assert "sends 10.244.1.3 to the underlay's gateway, which has no route to pods" in why, why
