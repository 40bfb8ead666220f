"""What a lab needs of the machine, read from its plan and its CNI conflist, and for a missing qdisc, link kind or the
SCTP rules, what in the lab asks for it (the words ``up`` adds to a failed check's line)."""

from __future__ import annotations

from typing import Any, Iterable

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
    out |= set(cni_needs(lab))
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


# What the kernel must have for each plugin of Debian's containernetworking-plugins (cni/check.PACKAGE_PLUGINS) that
# makes links or rules: bridge a bridge and veths, ptp a veth pair, macvlan/ipvlan/vlan a child of their master,
# portmap its nat chains (iptables, with conntrack entries deleted), firewall its filter chains. bandwidth: see
# shaping_needs. The others (loopback, host-local, static, dhcp, tuning, host-device, sbr) make no link kind.
# A type not listed (a third party's plugin) is not guessed at.
CNI_PLUGIN_NEEDS: dict[str, tuple[str, ...]] = {
    "bridge": ("bridge", "veth"), "ptp": ("veth",), "macvlan": ("macvlan",), "ipvlan": ("ipvlan",),
    "vlan": ("vlan",), "portmap": ("iptables-restore", "conntrack", "nf_tables"),
    "firewall": ("iptables-restore", "nf_tables"),
}


def shaping_needs(plugin: dict[str, Any], pods: Iterable[dict[str, Any] | None]) -> tuple[str, ...]:
    """The bandwidth plugin's: a tbf on the host's veth for an ingress rate; for an egress rate, an ifb the host's
    veth's ingress is redirected to, with a tbf on it. The rates are its config's, and each pod's
    runtimeConfig.bandwidth (``pods``, None for a pod without annotations) when it declares the capability."""
    rates = [plugin]
    caps = plugin.get("capabilities")
    if isinstance(caps, dict) and caps.get("bandwidth") is True:
        rates += [p for p in pods if p]
    out: list[str] = []
    for given in rates:
        ingress, egress = (given.get(k) for k in ("ingressRate", "egressRate"))
        if isinstance(ingress, (int, float)) and ingress > 0:
            out.append("tbf")
        if isinstance(egress, (int, float)) and egress > 0:
            out += ["ifb", "tbf"]
    return tuple(dict.fromkeys(out))


def conflist_needs(plugins: Iterable[dict[str, Any]],
                   pods: Iterable[dict[str, Any] | None] = ()) -> dict[str, list[str]]:
    """check name -> the plugin types of a chain that need it (see CNI_PLUGIN_NEEDS; pods: as shaping_needs)."""
    pods = list(pods)
    out: dict[str, list[str]] = {}
    for plugin in plugins:
        kind = plugin.get("type")
        asks = shaping_needs(plugin, pods) if kind == "bandwidth" else CNI_PLUGIN_NEEDS.get(str(kind), ())
        for name in asks:
            out.setdefault(name, [])
            if kind not in out[name]:
                out[name].append(str(kind))
    return out


def cni_needs(lab: Lab) -> dict[str, list[str]]:
    """:func:`conflist_needs` of the lab's conflist (``network.cni: {conflist: FILE}``); nothing for the builtin
    network and the reference chain (a bridge, as every lab has), nor for a conflist that cannot be read now (the
    cni-plugins check and ``validate`` say why)."""
    if lab.cni != "conflist":
        return {}
    from netlab.model.bandwidth import pod_bandwidth
    from netlab.model.cniconf import ConflistError
    from netlab.plan.cniadd import user_conflist

    try:
        net = user_conflist(lab)
    except (ConflistError, OSError):
        return {}
    return conflist_needs(net.plugins, (pod_bandwidth(p.spec) for p in lab.pods))


# The impairment options each qdisc serves, and what works without it.
# The checks whose failed line names the conflist's plugins that ask for them (the CNI link kinds, bandwidth's).
CNI_ASKS = ("macvlan", "ipvlan", "vlan", "ifb", "tbf")
QDISC_OPTIONS = {"netem": (("delay", "jitter"), "rate and loss need no netem"),
                 "tbf": (("rate",), "delay, jitter and loss need no tbf")}


def asked_by(lab: Lab, check: str) -> str:
    """For a missing qdisc (netem, tbf): which interfaces' impairments ask for it, and what to leave out to go
    without it; for the SCTP rules, the policies with SCTP ports; for a link kind (or bandwidth's tbf and ifb), the
    plugins of the lab's conflist that make it; nothing for any other check."""
    if check == "sctp" and (pols := sctp_policies(lab)):
        return (f"; asked for by the SCTP ports of network policies {', '.join(pols)}: without it their rules cannot "
                "be written (leave out those ports, or run on a kernel that has it)")
    said = _impaired_by(lab, check) if check in QDISC_OPTIONS else ""
    plugins = cni_needs(lab).get(check) if not said and check in CNI_ASKS else None
    if plugins:
        file = getattr(lab.topo.network.cni, "conflist", "the conflist")
        return (f"; asked for by the {', '.join(plugins)} plugin{'s' if len(plugins) > 1 else ''} of {file}: "
                "without it `up` would fail at that plugin's ADD (use other plugins, or a kernel that has it)")
    return said


def _impaired_by(lab: Lab, check: str) -> str:
    from netlab.model.impair import describe

    options, rest = QDISC_OPTIONS[check]
    users = [f"{name}:{iface} {describe(imp.spec())}"
             for name, impairs in [(n.name, n.impair) for n in lab.topo.nodes] + [(p.name, p.impair)
                                                                                   for p in lab.topo.pods]
             for iface, imp in impairs.items() if any(getattr(imp, o) for o in options)]
    if not users:
        return ""
    return f"; asked for by {', '.join(users)}: without {check}, leave out {' and '.join(options)} ({rest})"
