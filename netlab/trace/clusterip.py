"""A packet to a ClusterIP that no port of its Service matches (a ping, a port the Service does not have).

A ClusterIP is a virtual address no interface holds: kube-proxy DNATs only
the Service's own ports (protocol and port), so such a packet is no Service
packet and nothing translates it. In iptables mode it then follows the
node's routes as it is (the default route, to the underlay's gateway, which
routes nothing on) and no one answers it. In nftables mode kube-proxy's
filter chains refuse it first: ``ct state new jump cluster-ips-check`` (from
filter-output for the node's own packet, filter-forward for a pod's), whose
rule ``ip daddr @cluster-ips reject`` answers an ICMP port unreachable (nft's
reject for IPv4); an address of the service CIDR that is no ClusterIP at all
is dropped by the chain's next rule. A real cluster behaves alike: a
ClusterIP answers no ping, and no fix is due. The sender is answered at
once, so a trace says REFUSED at that row (the row's ``rejected`` fact,
trace/refusal.py), as for a Service without endpoints, not LOST.

Pure: the lab's map and kube-proxy's table come in as data.
"""

from __future__ import annotations

from netlab.trace import kubeproxy_nft
from netlab.trace.facts import NftTable
from netlab.trace.flow import Flow
from netlab.trace.kubeproxy import NoDnat
from netlab.trace.labmap import LabMap

CHECK = "cluster-ips-check"
REJECT = "ip daddr @cluster-ips reject"


def service(lab: LabMap, f: Flow) -> str | None:
    """The Service (namespace/name) whose ClusterIP ``f`` is sent to, when none of its ports matches ``f``."""
    if lab.service_for(f.dst, f.dport, f.proto) is not None:
        return None
    return next((s.name.partition(":")[0] for s in lab.services if s.ip == f.dst), None)


def _what(f: Flow) -> str:
    return "this ICMP echo" if f.proto == "icmp" else f"{f.proto.upper()} port {f.dport}"


def _ports(lab: LabMap, ip: str) -> str:
    return ", ".join(dict.fromkeys(f"{s.protocol.upper()} {s.port}" for s in lab.services if s.ip == ip))


def unanswered(lab: LabMap, f: Flow, answer: str | None = None) -> str | None:
    """Why nothing answers ``f``, sent to a ClusterIP none of whose ports it matches (iptables mode), or None.
    ``answer``: what the gateway that drops it sends back (a router's ICMP unreachable), None for no word."""
    svc = service(lab, f)
    if svc is None:
        return None
    no_ping = " A ClusterIP answers no ping in a real cluster either" if f.proto == "icmp" else \
        " A real cluster's ClusterIP, too, answers only its Service's ports"
    end = f"a gateway with no route to it, which answers {answer}" if answer else \
        "a gateway that does not route it on, and no one answers it"
    return (f"{f.dst} is Service {svc}'s ClusterIP, a virtual address no interface holds: kube-proxy DNATs only the "
            f"Service's ports ({_ports(lab, f.dst)}), not {_what(f)}, so the packet followed the node's routes "
            f"as it was, to {end}.{no_ping}: nothing to fix "
            f"(trace one of its ports instead)")


def rejected(lab: LabMap, table: NftTable | None, ns: str, f: Flow, iif: str | None) -> NoDnat | None:
    """kube-proxy's cluster-ips-check (nftables mode) rejecting ``f``, sent to a ClusterIP none of whose ports it
    matches, on node ``ns``: the row's words, the rule, its counter, and what the sender gets back; None when the
    packet is no such packet, or the kernel's table lacks the rules that would refuse it."""
    svc = service(lab, f)
    planned = lab.planned_nft.get(ns, ())
    if svc is None or table is None or not table.exists or f"element cluster-ips {f.dst}" not in table.listing \
            or not kubeproxy_nft.rejects(table, planned, iif):
        return None
    hook = "filter-forward" if iif else "filter-output"
    rule = next(r for r in table.chain_rules(CHECK) if r.startswith(REJECT))
    counted = table.counted(CHECK)
    counter = (f"its counter went up by {counted} during the trace" if counted is not None else
               f"{CHECK} has a counter, not read before the packet" if table.has_counter(CHECK) else
               "kube-proxy writes no counter in nftables mode")
    node = lab.where(ns).split()[-1]
    fails = {"icmp": "its send fails (ping: sendmsg: Operation not permitted)",
             "tcp": "its connect fails at once (Connection refused)",
             "udp": "its send fails (Operation not permitted)"}.get(f.proto, "its send fails")
    answer = (f"the sender gets an ICMP port unreachable from {node}'s own address {f.src} (on lo), and {fails}"
              if not iif else f"the sender gets an ICMP port unreachable from {node}")
    why = (f"{f.dst} is Service {svc}'s ClusterIP, and kube-proxy DNATs only the Service's ports "
           f"({_ports(lab, f.dst)}), not {_what(f)}: {node}'s {hook} jumps to {CHECK} (ct state new), whose rule "
           f"`{rule}` rejects a packet to a ClusterIP that no Service port matched ({counter}); {answer}. A "
           f"ClusterIP answers only its Service's ports in a real cluster too: nothing to fix (trace one of its "
           f"ports instead)")
    # REFUSED, not LOST, when the sender was answered so (trace/refusal.py), as for a Service without endpoints
    said = (f"{f.dst} is Service {svc}'s ClusterIP and no port of it matches {_what(f)}: node {node}'s kube-proxy "
            f"rule `{rule}` (chain {CHECK}) rejected it at once with an ICMP port unreachable (the sender is "
            "answered, it does not time out)")
    return NoDnat(f"no DNAT for {f}: no port of Service {svc} matches it; {hook} → {CHECK}: reject", why,
                  [f"ip netns exec {ns} nft list chain {kubeproxy_nft.TABLE} {CHECK}",
                   f"ip netns exec {ns} nft list set {kubeproxy_nft.TABLE} cluster-ips"],
                  cause=True, facts={"dropped_here": True, "service": svc, "reject_rule": rule, "reject_chain": CHECK,
                                     "reject_counted": counted, "rejected": f"{said}: nothing to fix (a ClusterIP "
                                     "answers only its Service's ports in a real cluster too; trace one of them)"})
