"""What a lab needs of the machine, read from its plan and its CNI conflist, and for a missing qdisc, link kind or the
SCTP rules, what in the lab asks for it (the words ``up`` adds to a failed check's line)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from netlab.doctor_lines import ALWAYS, CNI_FEATURES, Check
from netlab.model import clusterdns as dns
from netlab.model.hostports import port_mappings
from netlab.model.lab import Lab
from netlab.plan import portmap_rules
from netlab.plan.build import build_plan
from netlab.plan.sysctls import GATEWAY_SYSCTLS


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
    if lab.pods:
        out.add("pod-files")  # every pod's /etc/hosts (and resolv.conf), written in /etc/netns (services/hosts.py)
    if lab.services:
        out.add("conntrack")  # up deletes stale UDP entries over ctnetlink (kernel/conntrack.delete_counted)
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
    if any(r.kind == "nat" and portmap_rules.DISPATCH in getattr(r, "chains", ()) for r in plan.resources):
        out |= {"hostport", "iptables-restore"}  # portmap's rules, which a builtin lab writes for hostPorts
    # The gateway's routes to LoadBalancer IPs (plan/internet.py): its hash sysctls, written for a route of one node
    # too (they exist only with multipath routing, the fields and policy 3 only from 5.12), so up would fail there
    if {key for key, _ in GATEWAY_SYSCTLS} & {r.name for r in plan.of_kind("sysctl")}:
        out.add("multipath")
    return out


def load_balancer_askers(lab: Lab) -> list[str]:
    """The LoadBalancer Services whose IPs the internet gateway routes to the nodes (none without internet:)."""
    if lab.topo.internet is None:
        return []
    return [f"{svc.namespace}/{svc.name}" for svc in lab.services if svc.type == "LoadBalancer"]


def hostport_askers(lab: Lab) -> list[str]:
    """What asks for portmap's rules in a builtin lab: each pod's hostPorts (``pod a's hostPort 18080/tcp``), and
    each node that keeps portmap's shared chains without one (Lab.portmap_nodes)."""
    if lab.cni != "builtin":
        return []
    out, mapped = [], set()
    for pod in lab.topo.pods:
        ports = [f"{m['hostPort']}/{m['protocol']}" for m in port_mappings(pod)]
        if ports:
            mapped.add(pod.node)
            out.append(f"pod {pod.name}'s hostPort{'s' if len(ports) > 1 else ''} {', '.join(ports)}")
    out += [f"node {node}'s kept portmap chains" for node in sorted(lab.portmap_nodes() - mapped)]
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
# vrf a vrf device in the pod, sbr policy routing rules there (from the pod's address to a table of its own),
# portmap its nat chains (iptables, with conntrack entries deleted), firewall its filter chains. What some fields
# ask for besides: field_needs. The others (loopback, host-local, static, dhcp, tuning, host-device) make no link
# kind. A type not listed (a third party's plugin) is not guessed at.
CNI_PLUGIN_NEEDS: dict[str, tuple[str, ...]] = {
    "bridge": ("bridge", "veth"), "ptp": ("veth",), "macvlan": ("macvlan",), "ipvlan": ("ipvlan",),
    "vlan": ("vlan",), "vrf": ("vrf",), "sbr": ("fib_rules",),
    "portmap": ("iptables-restore", "conntrack", "nf_tables"), "firewall": ("iptables-restore", "nf_tables"),
}
# bandwidth's, by the direction a rate shapes: to the pod (ingressRate) a tbf on its host veth; from it (egressRate)
# an ifb, the host veth's ingress qdisc, a u32 filter there whose mirred action redirects every frame to the ifb,
# and a tbf on the ifb (plugins/meta/bandwidth: CreateIngressQdisc, CreateEgressQdisc).
RATE_NEEDS = {"ingressRate": ("tbf",), "egressRate": ("ifb", "tbf", "ingress", "u32", "mirred")}
ANNOTATIONS = {"ingressRate": "kubernetes.io/ingress-bandwidth", "egressRate": "kubernetes.io/egress-bandwidth"}


@dataclass(frozen=True)
class Asker:
    """What in a conflist asks for a kernel feature: a plugin (its type), the field of its config that does (empty:
    the plugin itself), and the pods whose runtimeConfig gives that field (empty: the config's own)."""

    plugin: str
    field: str = ""
    pods: tuple[str, ...] = ()

    def words(self) -> str:
        out = f"the {self.plugin} plugin" + (f"'s {self.field}" if self.field else "")
        if self.pods:
            shown = ", ".join(self.pods[:3]) + (f" and {len(self.pods) - 3} more" if len(self.pods) > 3 else "")
            out += f" (the {ANNOTATIONS[self.field]} of pod{'s' if len(self.pods) > 1 else ''} {shown})"
        return out

    def to_json(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "field": self.field or None, "pods": list(self.pods)}


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def field_needs(plugin: dict[str, Any], pods: Mapping[str, dict[str, Any] | None]) -> list[tuple[str, Asker]]:
    """(check, asker) for what a plugin's fields ask: the bridge's ``vlan`` (not 0) and ``vlanTrunk`` (any, an empty
    one too: the plugin turns filtering on for it; Debian's 1.1.1 has no vlanTrunk yet, upstream's since 1.3.0:
    cni_needs leaves out a field the plugin found does not read) a
    VLAN-filtering bridge (``preserveDefaultVlan`` only acts with one of them); bandwidth's rates (RATE_NEEDS), its
    config's and each pod's runtimeConfig.bandwidth (``pods``: name -> it, None for a pod without annotations) when
    it declares the capability."""
    kind = plugin.get("type")
    out: list[tuple[str, Asker]] = []
    if kind == "bridge":
        vlan = plugin.get("vlan")
        if isinstance(vlan, int) and not isinstance(vlan, bool) and vlan != 0:
            out.append(("vlan_filtering", Asker("bridge", "vlan")))
        if plugin.get("vlanTrunk") is not None:
            out.append(("vlan_filtering", Asker("bridge", "vlanTrunk")))
    if kind == "bandwidth":
        caps = plugin.get("capabilities")
        given = pods if isinstance(caps, dict) and caps.get("bandwidth") is True else {}
        for rate, checks in RATE_NEEDS.items():
            shaped = tuple(name for name, conf in given.items() if conf and _positive(conf.get(rate)))
            askers = ([Asker("bandwidth", rate)] if _positive(plugin.get(rate)) else []) + \
                ([Asker("bandwidth", rate, shaped)] if shaped else [])
            out += [(check, asker) for asker in askers for check in checks]
    return out


def conflist_needs(plugins: Iterable[dict[str, Any]],
                   pods: Mapping[str, dict[str, Any] | None] | None = None) -> dict[str, list[Asker]]:
    """check name -> what in a chain asks for it (CNI_PLUGIN_NEEDS, field_needs; pods: as field_needs)."""
    out: dict[str, list[Asker]] = {}
    for plugin in plugins:
        asks = [(name, Asker(str(plugin.get("type")))) for name in CNI_PLUGIN_NEEDS.get(str(plugin.get("type")), ())]
        for name, asker in asks + field_needs(plugin, pods or {}):
            if asker not in out.setdefault(name, []):
                out[name].append(asker)
    return out


def cni_needs(lab: Lab) -> dict[str, list[Asker]]:
    """:func:`conflist_needs` of the lab's conflist (``network.cni: {conflist: FILE}``); nothing for the builtin
    network and the reference chain (a bridge, as every lab has), nor for a conflist that cannot be read now (the
    cni-plugins check and ``validate`` say why). A field the plugin found here does not read (Debian 12's bridge
    and ``vlanTrunk``: cni/fields.py) asks for nothing: the plugin never uses what it would need; the doctor's
    plugins line says it has no effect."""
    if lab.cni != "conflist":
        return {}
    from netlab.cni.fields import lab_ignored_fields
    from netlab.model.bandwidth import pod_bandwidth
    from netlab.model.cniconf import ConflistError
    from netlab.plan.cniadd import user_conflist

    try:
        net = user_conflist(lab)
    except (ConflistError, OSError):
        return {}
    unread = {(i.index, i.field) for i in lab_ignored_fields(lab)}
    plugins = [{k: v for k, v in plugin.items() if (i, k) not in unread} for i, plugin in enumerate(net.plugins)]
    return conflist_needs(plugins, {p.name: pod_bandwidth(p.spec) for p in lab.pods})


# The checks whose line names what in the lab's conflist asks for them (what only plugins use, and bandwidth's tbf).
CNI_ASKS = CNI_FEATURES + ("tbf",)
# The impairment options each qdisc serves, and what works without it.
QDISC_OPTIONS = {"netem": (("delay", "jitter"), "rate and loss need no netem"),
                 "tbf": (("rate",), "delay, jitter and loss need no tbf")}


def _conflist_askers(lab: Lab, check: str) -> str:
    """``asked for by the bandwidth plugin's egressRate of FILE``, or nothing when no conflist asks for ``check``."""
    askers = cni_needs(lab).get(check) if check in CNI_ASKS else None
    if not askers:
        return ""
    file = getattr(lab.topo.network.cni, "conflist", "the conflist")
    return f"asked for by {' and '.join(a.words() for a in askers)} of {file}"


def with_askers(lab: Lab, checks: list[Check]) -> list[Check]:
    """The doctor's lines for a lab: each of what its conflist asks for says who asks (its JSON's ``items``: each
    asker's plugin, field and pods)."""
    asks = cni_needs(lab)
    return [_asked(lab, c, asks) for c in checks]


def _asked(lab: Lab, c: Check, asks: Mapping[str, list[Asker]]) -> Check:
    """One line of :func:`with_askers`: a conflist's askers (any status); for a failed hostPort or multipath check,
    the pods and nodes (hostport_askers) or the LoadBalancer Services (load_balancer_askers) that ask."""
    if said := _conflist_askers(lab, c.name):
        return replace(c, detail=f"{c.detail}; {said}", items=tuple(a.to_json() for a in asks[c.name]))
    if c.status == "ok":
        return c
    if c.name == "hostport" and (who := hostport_askers(lab)):
        return replace(c, detail=f"{c.detail}; asked for by {', '.join(who)}")
    if c.name == "multipath" and (who := load_balancer_askers(lab)):
        return replace(c, detail=f"{c.detail}; asked for by LoadBalancer Service{'s' if len(who) > 1 else ''} "
                                 f"{', '.join(who)}")
    return c


def asked_by(lab: Lab, check: str) -> str:
    """What ``up`` adds to a failed check's line: for a missing qdisc (netem, tbf), which interfaces' impairments
    ask for it, and what to leave out to go without it; for the SCTP rules, the policies with SCTP ports; for what
    a conflist's plugins use (a link kind, bandwidth's tbf, ifb and redirect, VLAN filtering, rules: the line says
    who asks, :func:`with_askers`), where `up` would fail without it; nothing for any other check."""
    if check == "hostport" and hostport_askers(lab):
        return ("; without it `up` cannot write portmap's rules for them (leave out the hostPorts, or run on a kernel "
                "that has it)")
    if check == "multipath" and load_balancer_askers(lab):
        return ("; without it `up` cannot route their IPs from the internet gateway to the nodes (leave out "
                "type: LoadBalancer or the internet: section, or run on a kernel that has it)")
    if check == "sctp" and (pols := sctp_policies(lab)):
        return (f"; asked for by the SCTP ports of network policies {', '.join(pols)}: without it their rules cannot "
                "be written (leave out those ports, or run on a kernel that has it)")
    said = _impaired_by(lab, check) if check in QDISC_OPTIONS else ""
    askers = cni_needs(lab).get(check) if check in CNI_ASKS and not said else None
    if askers:
        fields = sorted({a.field for a in askers if a.field})
        instead = f"leave out {' and '.join(fields)}, or use" if all(a.field for a in askers) else \
            "use other plugins, or"
        whose = "that plugin's" if len({a.plugin for a in askers}) == 1 else "those plugins'"
        return f"; without it `up` would fail at {whose} ADD ({instead} a kernel that has it)"
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
