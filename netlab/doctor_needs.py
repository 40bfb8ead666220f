"""What a lab needs of the machine, read from its plan, and for a missing qdisc or the SCTP rules, what in the lab
asks for it (the words ``up`` adds to a failed check's line)."""

from __future__ import annotations

from netlab.doctor_lines import ALWAYS
from netlab.model import clusterdns as dns
from netlab.model.lab import Lab
from netlab.plan.build import build_plan


def needs(lab: Lab) -> set[str]:
    """The checks ``lab`` cannot do without, read from its plan."""
    plan = build_plan(lab)
    kinds = {r.kind for r in plan.resources}
    out = set(ALWAYS) | (kinds & {"veth", "bridge", "vxlan"})
    if any(r.name.startswith("net.bridge.") for r in plan.of_kind("sysctl")):
        out.add("br_netfilter")
    if "nat" in kinds:
        out |= {"iptables-restore", "conntrack", "nf_tables"}  # nf_tables only if iptables is nft: see iptables_check
    if any(r.kind == "nft" and getattr(r, "family", "") != "netdev" for r in plan.resources):
        out |= {"nf_tables", "nft", "conntrack"}  # kube-proxy in nftables mode: its table, written with nft -f
    if any(r.kind == "nft" and getattr(r, "family", "") == "netdev" for r in plan.resources):
        out |= {"nf_netdev", "nft"}  # impairments' loss: netdev chains (plan/impair.py), written with nft -f
    if lab.services:
        out.add("conntrack")  # up deletes stale UDP entries over ctnetlink (kernel/conntrack.delete_matching)
    specs = [imp for n in lab.topo.nodes for imp in n.impair.values()]
    specs += [imp for p in lab.topo.pods for imp in p.impair.values()]
    if any(s.rate for s in specs):
        out.add("tbf")
    if any(s.delay or s.jitter for s in specs):
        out.add("netem")
    if dns.dns_service(lab.topo) is not None and any(p.name == dns.DNS_NAME for p in lab.pods):
        out.add("dnsmasq")
    if lab.cni != "builtin":
        out.add("cni-plugins")
    if sctp_policies(lab):
        out |= {"sctp", "iptables-restore"}
    return out


def sctp_policies(lab: Lab) -> list[str]:
    """The policies (namespace/name) with an SCTP port: their rules need the kernel's SCTP match."""
    out = []
    for pol in lab.topo.network_policies:
        rules = [*(pol.spec.ingress or []), *(pol.spec.egress or [])]
        if any(port.protocol == "SCTP" for rule in rules for port in rule.ports or []):
            out.append(f"{pol.namespace}/{pol.name}")
    return out


# The impairment options each qdisc serves, and what works without it.
QDISC_OPTIONS = {"netem": (("delay", "jitter"), "rate and loss need no netem"),
                 "tbf": (("rate",), "delay, jitter and loss need no tbf")}


def asked_by(lab: Lab, check: str) -> str:
    """For a missing qdisc (netem, tbf): which interfaces' impairments ask for it, and what to leave out to go
    without it; for the SCTP rules, the policies with SCTP ports; nothing for any other check."""
    from netlab.model.impair import describe

    if check == "sctp" and (pols := sctp_policies(lab)):
        return (f"; asked for by the SCTP ports of network policies {', '.join(pols)}: without it their rules cannot "
                "be written (leave out those ports, or run on a kernel that has it)")
    if check not in QDISC_OPTIONS:
        return ""
    options, rest = QDISC_OPTIONS[check]
    users = [f"{name}:{iface} {describe(imp.spec())}"
             for name, impairs in [(n.name, n.impair) for n in lab.topo.nodes] + [(p.name, p.impair)
                                                                                   for p in lab.topo.pods]
             for iface, imp in impairs.items() if any(getattr(imp, o) for o in options)]
    if not users:
        return ""
    return f"; asked for by {', '.join(users)}: without {check}, leave out {' and '.join(options)} ({rest})"
