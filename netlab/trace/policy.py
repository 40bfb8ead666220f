"""The NetworkPolicy verdict of a traced packet: which policy, rule and peer let it
through, or which node and chain dropped it and why, confirmed by the kernel.

The words come from :mod:`netlab.model.netpol` (the policies' meaning); the
node and chain from :mod:`netlab.plan.policy` (where netlab put the rules);
the confirmation from the kernel: the packet counters of the ``REJECT`` rules
in the lab's ``NETPOL-`` chains, read before and after the packet is sent (a
rule whose counter moved is the one that dropped it).

    dropped in node n1, chain NETPOL-IN-..., by policy x/deny-all-ingress
      (no ingress rule allows it for pod x/x-a); the kernel's REJECT rule counted it
    allowed by policy y/allow-b, ingress rule 2, peer 1 namespaceSelector ns=y, any port
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from typing import Any, Collection, Mapping, Sequence

from netlab.kernel.iptables import command as ipt_command
from netlab.model.hostports import served_by
from netlab.model.lab import Lab
from netlab.model.netpol import Peer, PodView, Verdict, lab_peer, policy_set
from netlab.plan.cniadd import node_gateway, pod_bridge
from netlab.plan.policy import pod_chain
from netlab.trace import nodeport, policyrules
from netlab.trace.flow import answer_words
from netlab.trace.hops import Hop
from netlab.trace.later import Later
from netlab.trace.targets import Endpoint

# What faults.policy_reject says when the policy is not known yet (the verdict names it once judged).
NAMED_BELOW = "the policy is named below"


def reject_counters(netns_list: list[str]) -> dict[tuple[str, str], int]:
    """(netns, chain) -> packets its REJECT rules counted, for every NETPOL chain of these namespaces."""
    return policyrules.reject_counts(policyrules.read_tables(netns_list))


def rejected(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]) -> dict[str, list[str]]:
    """namespace -> the NETPOL chains whose REJECT counted something between two :func:`reject_counters`."""
    out: dict[str, list[str]] = {}
    for (ns, chain), n in after.items():
        if n > before.get((ns, chain), 0):
            out.setdefault(ns, []).append(chain)
    return out


def node_namespaces(lab: Lab) -> list[str]:
    return [n.netns for n in lab.nodes] if lab.topo.network_policies else []


def _targets(lab: Lab, dst: Endpoint, proto: str, port: int | None,
             endpoint_ip: str | None) -> list[tuple[PodView, int | None]]:
    """The pods the packet is judged against: the destination pod, or a Service's endpoint
    (the one the DNAT picked when known, else every endpoint of the port, a node's nodePort's included), or the
    pod whose hostPort on the node it is (portmap's DNAT: :func:`hostport_pods`)."""
    ps = policy_set(lab)
    views = {p.name: p for p in ps.pods}
    if dst.kind == "pod":
        return [(views[dst.name], port)]
    if dst.kind == "node" and dst.service is None:
        return [(views[pod], target) for pod, target in hostport_pods(lab, dst, proto)
                if endpoint_ip is None or str(views[pod].ip) == endpoint_ip]
    if dst.kind not in ("service", "node") or dst.service is None:
        return []
    svc = lab.find_service(dst.service)
    if svc is None:
        return []
    out: list[tuple[PodView, int | None]] = []
    for sp in svc.ports:
        wanted = sp.node_port if dst.kind == "node" else sp.port
        if wanted != dst.port or sp.protocol.lower() != (dst.proto or "tcp"):
            continue
        for pod, target in lab.endpoints(svc, sp):
            if endpoint_ip is None or str(pod.ip) == endpoint_ip:
                out.append((views[pod.name], target))
    return out


def hostport_pods(lab: Lab, dst: Endpoint, proto: str) -> list[tuple[str, int]]:
    """(pod, container port) a packet to a node's address and port is DNATed to by portmap, when that port is one
    of the node's pods' hostPorts: judged then as a nodePort's packet to a pod of the node that DNATs it."""
    if dst.kind != "node" or dst.service is not None or proto == "icmp":
        return []
    return served_by(lab.topo, dst.name, dst.port, proto, dst.ip)


@dataclass(frozen=True)
class Tables:
    """The nodes' filter tables as the kernel held them right after the packet (netns -> ``iptables-save -c -t
    filter``), to name the rules that made the kernel's verdict differ from the policies', and the ``up`` that puts
    them back."""

    text: Mapping[str, str]
    repair_later: Later | str  # the lab's repair (trace/later.py: worked out when a fix names it)
    # netns -> its filter table as planned, the lines status compares it with (trace/labmap.planned_filter): what
    # tells netlab's kube-proxy and Flannel rules from others', and the order of a chain's rules
    planned: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def repair(self) -> str:
        return self.repair_later if isinstance(self.repair_later, str) else self.repair_later()


def story(lab: Lab, src: Endpoint, dst: Endpoint, proto: str, port: int | None, endpoint_ip: str | None,
          before: dict[tuple[str, str], int], after: dict[tuple[str, str], int],
          unfiltered: Collection[str] = (), dnat_node: str | None = None,
          reached: Collection[str] | None = None,
          tables: Tables | None = None) -> list[dict[str, Any]]:
    """One entry per destination pod judged: allowed or not, the words, the node and chain, the kernel's count.
    ``unfiltered``: the nodes' namespaces with bridge-nf-call-iptables = 0 (their bridges switch frames past
    iptables, and so past the policies' rules; a lab whose pods share no bridge, ptp's, routes every frame through
    FORWARD whatever the sysctl says). ``dnat_node``: the node that DNATed a Service packet (the trace
    read it from its conntrack, or the internet's gateway routed a LoadBalancer's packet to), when known.
    ``reached``: the namespaces whose
    FORWARD hook the packet got to (:func:`forward_hooks_reached`); None: not known. ``tables``: the nodes' filter
    tables after the packet, to name the rules on its way the kernel lacks when its REJECT disagrees with the
    policies (a flow they deny not counted, one they allow counted)."""
    if not lab.topo.network_policies:
        return []
    ps = policy_set(lab)
    source = lab_peer(lab, ps, src.name)
    if source is None and src.kind == "internet" and src.ip:
        source = Peer(IPv4Address(src.ip))  # an internet host: an address (its packets keep it into the lab)
    if source is None:
        return []
    protocol = "ICMP" if proto == "icmp" else proto.upper()
    if dst.kind in ("node", "internet", "ip") and not dst.service and not hostport_pods(lab, dst, proto):
        # Not a pod: only the source pod's egress can refuse it. A node is judged at the address traced to (an
        # ipBlock holding it allows it); a packet to the source's own node is judged in that node's INPUT.
        if source.pod is None or not dst.ip:
            return []
        addr = IPv4Address(dst.ip)
        owner = node_of(lab, addr)
        verdict = ps.flow(source, Peer(addr, None, owner), protocol, None if proto == "icmp" else port)
        return [_entry(lab, source, None, verdict, before, after, to=dst.name, to_node=owner, reached=reached,
                       tables=tables)]
    out: list[dict[str, Any]] = []
    external = dst.kind == "node" or (dst.kind == "service" and src.kind == "internet")
    # The node that DNATs a LoadBalancer's packet is the one the gateway routed it to; when nothing names it (the
    # packet did not get that far), every node the gateway's route to the LoadBalancer IP may pick (plan/internet.py).
    receivers = [dnat_node] if not external or dnat_node or dst.kind == "node" else _routed(lab, dst.ip)
    shared = pod_bridge(lab) is not None  # the nodes' pods share a bridge
    for pod, target in _targets(lab, dst, proto, port, endpoint_ip):
        served = None if proto == "icmp" else target
        for receiver in receivers:
            seen = None
            if external:
                # A nodePort (a LoadBalancer's too; a hostPort, which portmap DNATs as kube-proxy a nodePort): judged
                # with the address the endpoint's node sees (kube-proxy's masquerade of the node that DNATed it, not
                # the client's, unless that node forwards it to its own pod; portmap's masquerade, of a pod of the
                # node, comes after FORWARD too).
                judged = nodeport.judge(lab, ps, src, source, dst, pod, protocol, served, receiver)
                if judged is None:
                    continue
                verdict, seen = judged
            else:
                verdict = ps.flow(source, Peer(pod.ip, pod), protocol, served, via_service=dst.kind == "service")
            node_ns = lab.node(pod.node).netns
            # Two pods of one node are switched by its bridge only when they are ports of one (cni0, a conflist's
            # qnbr0); ptp routes each pod alone out of its veth, so their packets pass FORWARD like any other
            bridged = dst.kind == "pod" and source.pod is not None and source.pod.node == pod.node and shared
            bypass = node_ns if bridged and node_ns in unfiltered else None
            entry = _entry(lab, source, pod, verdict, before, after, bypass, seen=seen, reached=reached,
                           tables=tables)
            if entry not in out:  # two nodes that judge it alike: one verdict
                out.append(entry)
    if endpoint_ip is None and any(e.get("counted") for e in out):
        # Which endpoint the DNAT picked is not known (no conntrack entry: the REJECT dropped the packet before
        # conntrack kept it): the REJECT that counted it says which; the other endpoints' verdicts are not this
        # packet's.
        out = [e for e in out if e.get("counted")]
    return out


def routed_node(lab: Lab, hops: list[Hop]) -> str | None:
    """The node the internet's gateway routed the packet to (its route row's next hop, a LoadBalancer IP's route
    picks one by its hash), for a packet no node's entry names (lost before a node kept one)."""
    gw = dict(lab.internet_hosts).get("gateway")
    row = next((h for h in hops if h.kind == "route" and h.netns == gw and h.facts.get("gateway")), None)
    return node_of(lab, IPv4Address(row.facts["gateway"])) if row is not None else None


def _routed(lab: Lab, ip: str | None) -> list[str]:
    """The nodes the gateway routes LoadBalancer IP ``ip`` to (every node for another address)."""
    from netlab.plan.internet import balanced_nodes

    routed = balanced_nodes(lab).get(IPv4Address(ip)) if ip else None
    return [n.name for n in routed or lab.nodes]


def unanswered_reset(lab: Lab, src: Endpoint, rejected_on: str, dnat_node: str | None, asked: str,
                     endpoint_ip: str | None, port: int | None, unfiltered: Collection[str] = ()) -> str | None:
    """Why a TCP client a policy's REJECT refused got no reset, when that is the kernel's doing: the client is a
    pod on the node that both DNATed its packet (a Service, or that node's nodePort) and REJECTed it.

    The packet came into the node through its bridge of pods (cni0, a conflist's own) from the pod's bridge port,
    so br_netfilter handed it to iptables: the REJECT answers a bridged packet straight out of the bridge port it
    came in by (nf_send_reset builds the frame itself and queues it on that port, "the MAC source on the RST will
    be ours" otherwise), past the IP stack's NAT, which would have turned the reset's source back into what the
    client asked for. It leaves from the address the DNAT gave the packet, and the client's socket, connected to
    ``asked``, does not take it: the connection times out. A packet that came over the overlay, or a connection
    to the pod's own address (no DNAT), is refused as usual. So is every client of a lab whose pods share no
    bridge (ptp: each pod's veth is routed): its packet came in by no bridge port, and the reset leaves as the
    node's own packet, its source given back by conntrack. So is a client on a node whose bridge-nf-call-iptables is
    0 (``unfiltered``: its namespace is in it): its bridge hands the frame for the node's own MAC up to the IP layer
    without br_netfilter, the packet is routed into FORWARD as any other, and so is the reset (tcpdump on the
    client's eth0: the RST comes from the address it asked for). None when this is not such a flow."""
    if src.kind != "pod" or dnat_node != rejected_on or lab.pod(src.name).node != rejected_on:
        return None
    if lab.node(rejected_on).netns in unfiltered:
        return None
    bridge = pod_bridge(lab)
    if bridge is None:
        return None
    source = f"{endpoint_ip}:{port}" if endpoint_ip and port else "the endpoint's address the DNAT chose"
    came_by = f"{bridge}'s bridge port"
    return (f"; the client gets no reset: the packet came in through {came_by}, so the REJECT sends its "
            f"reset straight back out of that port, past the NAT that would give it {asked} as its source; it "
            f"leaves from {source}, which the client's connection to {asked} does not take: it times out (a "
            f"connection to the pod's own address is refused)")


def node_of(lab: Lab, addr: IPv4Address) -> str | None:
    """The node one of whose own addresses this is (eth0's, its pods' gateway's: cni0's, a conflist's bridge's or
    pod veths', wherever the lab's plugins put it; flannel.1's), or None."""
    for n in lab.nodes:
        gateway = node_gateway(lab, n)
        if addr == n.ip or (gateway and addr == gateway[0]) or (lab.mode == "vxlan" and addr == n.vtep_ip):
            return n.name
    return None


def _entry(lab: Lab, source: Peer, pod: PodView | None, verdict: Verdict, before: dict[tuple[str, str], int],
           after: dict[tuple[str, str], int], bypass: str | None = None, to: str = "",
           to_node: str | None = None, seen: str | None = None,
           reached: Collection[str] | None = None, tables: Tables | None = None) -> dict[str, Any]:
    """``pod``: the destination pod judged, or None for a node or an address (``to`` names it, ``to_node``
    is the node it belongs to, if any). ``bypass``: the namespace of the node whose bridge switches the flow,
    pod to pod, past iptables. ``seen``: the source as the endpoint's node judges it, when not the client's.
    ``reached``: the namespaces whose FORWARD (or INPUT) hook the packet got to, when the trace knows. ``tables``:
    the nodes' filter tables, to name the rules on the way that netlab's plan has and the kernel lacks (or the
    other way round) when the kernel's REJECT disagrees with the policies.

    ``stopped`` (a flow the policies deny): True when the REJECT counted it, False when it got past the node's
    hook without the REJECT counting it (the policies broken: trace fails), absent when not known."""
    entry: dict[str, Any] = ({"pod": f"{pod.namespace}/{pod.name}"} if pod is not None else {"to": to})
    entry["allowed"] = verdict.allowed
    entry["text"] = ""  # said below; first in -o json after the verdict
    if verdict.allowed:
        # Not a pod: no ingress policy applies, the source's egress is the whole verdict.
        entry["text"] = verdict.describe() if pod is not None else verdict.egress.describe()
        _refused(lab, entry, source, pod, verdict, before, after, to_node, tables)
        return entry
    side = verdict.egress if not verdict.egress.allowed else verdict.ingress
    judged = source.pod if side is verdict.egress else pod
    assert judged is not None
    node = lab.node(judged.node)
    chain = pod_chain(side.direction, judged)
    moved = after.get((node.netns, chain), 0) - before.get((node.netns, chain), 0)
    names = ", ".join(side.isolating)
    word = "policy" if len(side.isolating) == 1 else "policies"
    why = f"no {side.direction} rule allows it for pod {judged.namespace}/{judged.name}"
    if seen and side is verdict.ingress:
        why += f"; it comes from {seen}"
    # A packet for the node's own address is not forwarded: it goes up through INPUT, which jumps to the same chain.
    hook = f", from INPUT (the packet is for {node.name} itself)" if pod is None and to_node == node.name else ""
    text = f"dropped in node {node.name}, chain {chain}{hook}, by {word} {names} ({why})"
    hook_name = "INPUT hook" if hook else "FORWARD hook"
    if moved <= 0 and bypass is not None:
        # The policy's rules hang off FORWARD; a frame cni0 switches between two of its ports reaches FORWARD
        # only through br_netfilter, when bridge-nf-call-iptables = 1.
        text = (f"denied by {word} {names} ({why}), but NOT STOPPED: net.bridge.bridge-nf-call-iptables = 0 in "
                f"{bypass}, so its bridge switches the frame from pod to pod without handing it to iptables, and "
                f"the rules in node {node.name}'s chain {chain} never see it")
        entry["fix"] = f"ip netns exec {bypass} sysctl -w net.bridge.bridge-nf-call-iptables=1"
        entry["stopped"] = False
    elif moved <= 0 and reached is not None and node.netns not in reached:
        # Lost on the way (a link down, a missing route): the rule never had the packet to count. The verdict is
        # what the policy would do to it, not why it was lost.
        text += (f"; but the packet never got there: it was lost before node {node.name}'s {hook_name}, so this is "
                 "what the policy would do to it")
    elif moved > 0:
        text += "; the kernel's REJECT rule there counted it"
        entry["stopped"] = True
    elif before or after or (tables is not None and node.netns in tables.text):
        # It passed the node's hook and the REJECT did not count it: the node's rules are not the policies'. (The
        # counters were read: none at all when the lab's only REJECT was taken out with its chain's rules.)
        text = f"denied by {word} {names} ({why}), but NOT STOPPED: "
        drift = _drift(lab, tables, node.name, side.direction, judged, "INPUT" if hook else "FORWARD")
        if drift:
            text += (f"{policyrules.not_stopped(drift, node.name, chain)}, so no REJECT there counted it "
                     f"({policyrules.status_lists(drift)})")
            entry.update(missing=drift.missing, extra=drift.extra, order=drift.order)
            if tables is not None:
                entry["fix"] = tables.repair
        else:  # the rules are netlab's (or were not read): something else let it by
            though = ", though the policy rules on the way are netlab's" \
                if tables is not None and node.netns in tables.text else ""
            text += (f"the kernel's REJECT in node {node.name}'s chain {chain} counted nothing{though}: look at the "
                     f"node's filter table (ip netns exec {node.netns} {ipt_command('iptables-save')} -c)")
        entry["stopped"] = False
    entry.update(text=text, node=node.name, chain=chain, direction=side.direction, policies=list(side.isolating),
                 counted=moved > 0)
    return entry


def _drift(lab: Lab, tables: Tables | None, node: str, direction: str, pod: PodView,
           hook: str) -> policyrules.Drift:
    netns = lab.node(node).netns
    text = tables.text.get(netns) if tables is not None else None
    if tables is None or text is None:
        return policyrules.Drift()
    return policyrules.path_drift(lab, node, text, direction, pod, hook, tables.planned.get(netns))


def _refused(lab: Lab, entry: dict[str, Any], source: Peer, pod: PodView | None, verdict: Verdict,
             before: dict[tuple[str, str], int], after: dict[tuple[str, str], int], to_node: str | None,
             tables: Tables | None) -> None:
    """A flow the policies allow that a node's REJECT counted all the same (the node's rules are not the
    policies'): the entry says so, names the rule that is missing, and is blamed as a REJECT's drop is."""
    for side, judged, other in ((verdict.egress, source.pod, pod.ip if pod is not None else None),
                                (verdict.ingress, pod, source.ip)):
        if judged is None or not side.isolating:
            continue
        node = lab.node(judged.node)
        chain = pod_chain(side.direction, judged)
        if after.get((node.netns, chain), 0) <= before.get((node.netns, chain), 0):
            continue
        hook = "INPUT" if pod is None and to_node == node.name else "FORWARD"
        drift = _drift(lab, tables, node.name, side.direction, judged, hook)
        if drift and side.by is not None:
            drift = policyrules.allowing(drift, side.by, str(other) if other is not None else "")
        said = (policyrules.refused(drift, node.name) if drift else
                f"yet the node's policy rules on the way are netlab's: look at its filter table (ip netns exec "
                f"{node.netns} {ipt_command('iptables-save')} -c)")
        entry["text"] += (f", but REFUSED in node {node.name}: the kernel's REJECT in chain {chain} counted it; "
                          f"{said}")
        entry.update(node=node.name, chain=chain, direction=side.direction, policies=list(side.isolating),
                     counted=True)
        if drift:
            entry.update(missing=drift.missing, extra=drift.extra, order=drift.order)
            if tables is not None:
                entry["fix"] = tables.repair
        return


def place_reject(hops: list[Hop], lost_at: int | None, netns: str, entry: dict[str, Any]) -> int | None:
    """Write the row of the REJECT that counted the packet, where the kernel runs it, and return its index; None
    when the rows already lose the packet there at a row of its own (a DROP, a no-DNAT row that says so).

    Every packet a node forwards to or from one of its pods passes that node's FORWARD hook once, and the policy's
    REJECT hangs off it (plan/policy.py):
    - a routed packet (from flannel.1 or eth0, a nodePort's DNATed and masqueraded by another node, or a pod's
      for another node) passes it after the node's route lookup and before the next hop's ARP entry is looked
      up, so the REJECT's row comes right after the node's forwarded route row. The pod's ARP entry is then never
      asked for, and a row saying so ("no ARP entry ... it did not get here?") would contradict the verdict;
    - a frame cni0 switches from one pod to another passes it inside the bridge (br_netfilter hands it to
      iptables, in and out on cni0) after the FDB picked the port and before the frame leaves by it, so the
      REJECT's row comes right after the bridge's FDB row.
    The rows after it in that node say what the packet would have met, with no problem."""
    if lost_at is None or lost_at >= len(hops):
        return None
    lost = hops[lost_at]
    names = ", ".join(entry.get("policies", []))
    if lost.problem and NAMED_BELOW in lost.problem:  # the row that lost it said a REJECT counted it: which one
        lost.problem = lost.problem.replace(NAMED_BELOW, f"{'policy' if ',' not in names else 'policies'} {names}")
    if lost.netns != netns or lost.facts.get("dropped_here") or lost.kind == "drop":
        return None
    at = _forward_hook(hops, lost_at, netns)
    if at is None:
        return None
    before = hops[at]
    chain = entry["chain"]
    if before.kind == "route":
        hook = f"in on {before.facts['iif']}, out on {before.device}"
    else:  # switched by the bridge: iptables sees it in and out on the bridge itself
        bridge, port = before.facts["bridge"], before.facts["port"]
        ingress = next((h.device for h in reversed(hops[:at]) if h.netns == netns and h.kind == "arrive"), None)
        came = f" from port {ingress}" if ingress else ""
        hook = f"bridged by {bridge}{came} to port {port}: br_netfilter hands it to iptables in and out on {bridge}"
    row = Hop(netns=netns, where=before.where, device=before.device, kind="drop",
              decision=f"FORWARD ({hook}) → chain {chain}: REJECT (NetworkPolicy {names})",
              commands=[f"ip netns exec {netns} {ipt_command('iptables-save')} -c -t filter"], problem=entry["text"],
              facts={"chain": chain, "policies": list(entry.get("policies", [])), "dropped_here": True},
              direction=before.direction)
    for h in hops[at + 1:]:
        if h.netns == netns and h.problem:  # never met: the REJECT dropped the packet first
            h.decision += f" (the packet never got here: the REJECT in chain {chain} dropped it first)"
            h.problem, h.fix, h.cause = None, None, False
    hops.insert(at + 1, row)
    return at + 1


def reply_from_reject(reply: list[Hop], reject: Hop, proto: str,
                      inbound: str | None = None) -> tuple[list[Hop], int] | None:
    """The reply rows of a request a policy's REJECT dropped: (the rows, how many leading rows went), or None
    when the reply rows never pass the REJECT's namespace.

    The reply that came back is the REJECT's own answer, not the destination's: the node's kernel answers a TCP
    request in the destination's name (a reset), anything else with an ICMP port unreachable from an address of its
    own (plan/policy.py; rejectanswer.unreachable), and sends it as one of its own packets, routed (or switched
    by its bridge) back towards the client. A reset's reply walk starts at the destination, which never got the
    request: its rows up to where the node sends the answer are none of the packet's, and their numbers (r1 ...)
    would follow a reply that never existed (an ICMP error is walked from the node). The rows start instead with one
    naming the forward row of the REJECT (``reject.index``, numbered), then the node's route or bridge row. The
    route row is the node's own packet's (OUTPUT, never FORWARD: the REJECT's answer leaves as the node's own
    packet, ``nf_send_reset``), not the forwarded reply's it was walked as. An answer to the node's own request
    (refused on its way out) is delivered to the node itself, through lo: that row follows. ``inbound``: the device
    whose address the ICMP error's source is (rejectanswer.unreachable)."""
    start = next((i for i, h in enumerate(reply) if h.netns == reject.netns and
                  ((h.kind == "route" and "oif" in h.facts) or (h.kind == "bridge" and "port" in h.facts)
                   or h.kind == "deliver")), None)
    if start is None:
        return None
    first = next((h.observe.flow for h in reply if h.observe is not None), None)
    if first is not None and first.quoted is not None:  # an ICMP error, the node's own (rejectanswer.unreachable)
        what = f"an ICMP port unreachable{answer_words(first, inbound)}, as the node's own packet"
    elif proto != "tcp":  # the ICMP error was not walked: what it is, without the addresses
        what = "an ICMP port unreachable, as the node's own packet"
    else:
        what = f"a TCP reset{f' ({first})' if first is not None else ''}, in the destination's name"
    row = Hop(netns=reject.netns, where=reject.where, device=reject.device, kind="reject",
              decision=f"the REJECT at hop {reject.index} answers the request with {what}: the destination never "
                       "got the request nor answered it",
              commands=list(reject.commands), facts={"reject_hop": reject.index, "chain": reject.facts.get("chain")},
              direction="reply")
    after = reply[start]
    if after.kind == "route" and after.facts.get("iif"):
        after = replace(after, decision=after.decision.replace(" (forwarded)", " (the node's own packet)"),
                        facts={k: v for k, v in after.facts.items() if k != "iif"})
    return [row, after] + reply[start + 1:], start


def forward_hooks_reached(hops: list[Hop], lost_at: int | None) -> set[str]:
    """The namespaces whose FORWARD hook (where the policies' chains hang) the packet got to, in the rows up to the
    one it was lost at (all of them, ``lost_at`` None: delivered): a forwarded route row (a routed packet, after its
    route lookup), a bridge's FDB row (a frame br_netfilter hands to iptables), or a delivery (a packet for the
    namespace itself, judged from INPUT)."""
    rows = hops if lost_at is None else hops[:lost_at + 1]
    return {h.netns for h in rows if (h.kind == "route" and h.facts.get("iif"))
            or (h.kind == "bridge" and "port" in h.facts) or h.kind == "deliver"}


def _forward_hook(hops: list[Hop], lost_at: int, netns: str) -> int | None:
    """The row after which ``netns`` ran its FORWARD hook for the packet, in its rows up to ``lost_at``: its
    forwarded route row (a routed packet: the bridge it then leaves by runs no FORWARD for it), else its bridge's
    FDB row that switched the frame to a port."""
    first = lost_at
    while first > 0 and hops[first - 1].netns == netns:
        first -= 1
    rows = range(first, lost_at + 1)
    routed = next((i for i in rows if hops[i].kind == "route" and hops[i].facts.get("iif")), None)
    if routed is not None:
        return routed
    return next((i for i in reversed(rows) if hops[i].kind == "bridge" and "port" in hops[i].facts), None)
