"""Who a trace is from and to, and where it captures.

A trace starts in a namespace (a pod, a node, an internet host: something
with a socket) and goes to a name or an address of the lab: a pod, a node
(on a nodePort: the Service behind it), ``svc/NAME`` (the ClusterIP, or from
the internet the LoadBalancer address), an internet host, or any of the
lab's addresses. The packet may cross every
node and the underlay (a Service's DNAT can send it to any endpoint), so all
of them are captured at once, with the endpoints' namespaces and the
internet's gateway and load balancer when the packet may pass them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from netlab.errors import UsageError, netlab_command
from netlab.model import naming
from netlab.model.hostports import port_mappings
from netlab.model.lab import Lab
from netlab.plan.build import build_plan
from netlab.plan.internet import load_balancer_ips
from netlab.plan.services import service_ports
from netlab.trace.flow import is_ip
from netlab.trace.labmap import LabMap
from netlab.model.echo_ports import missing_port, pod_echo_ports, port_protocol
from netlab.probe.matrix import terminated


@dataclass(frozen=True)
class Endpoint:
    """One end of a trace: a lab thing with a namespace and/or an address."""

    name: str
    kind: str  # pod node internet service ip
    ip: str
    netns: str | None = None
    port: int | None = None
    proto: str | None = None
    service: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The end's fields that apply, ``proto`` as ``protocol`` and, deprecated, as itself (docs/json.md)."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if v is not None:
                out.update({"protocol": v, "proto": v} if k == "proto" else {k: v})
        return out

    def flow_json(self, proto: str) -> dict[str, Any]:
        """The destination as a trace of ``proto`` says it (-o json): the flow's ``port`` and ``protocol`` on a TCP
        or UDP trace, given as ``--proto`` or not (a port alone is TCP, or the pod's UDP-only port), neither on a
        ping (a Service's would be its first port, which an ICMP echo does not use). The same flow, the same
        shape (docs/json.md)."""
        out = self.to_json()
        if proto == "icmp":
            return {k: v for k, v in out.items() if k not in ("port", "protocol", "proto")}
        return {**out, "protocol": proto, "proto": proto} if self.proto is None else out


def lab_map(lab: Lab) -> LabMap:
    """The lab as the trace sees it, from its plan."""
    return LabMap.from_lab(lab, build_plan(lab))


def host_ips(lab: Lab) -> dict[str, str]:
    """Internet-side machines (gateway, lb, hosts): the address on their eth0, from the plan."""
    if not lab.internet_hosts:
        return {}
    by_ns = {ns: name for name, ns in lab.internet_hosts}
    out: dict[str, str] = {}
    for r in build_plan(lab).of_kind("address"):
        if r.netns in by_ns and r.dev == "eth0" and by_ns[r.netns] not in out:
            out[by_ns[r.netns]] = str(r.address.ip)
    return out


def resolve_source(lab: Lab, name: str) -> Endpoint:
    for p in lab.pods:
        if p.name == name:
            return Endpoint(p.name, "pod", str(p.ip), p.netns)
    for n in lab.nodes:
        if n.name == name:
            return Endpoint(n.name, "node", str(n.ip), n.netns)
    hosts = host_ips(lab)
    for host, netns in lab.internet_hosts:
        if host == name:
            return Endpoint(host, "internet", hosts.get(host, ""), netns)
    raise UsageError(f"lab {lab.name} has no pod, node or internet host {name!r} to send from ({_names(lab)})")


def resolve_target(lab: Lab, spec: str, proto: str | None, port: int | None, src: Endpoint) -> Endpoint:
    """DST: a pod, a node, ``svc/NAME``, an internet host, or one of the lab's addresses."""
    if spec.startswith(("svc/", "service/")):
        return _service_target(lab, spec.split("/", 1)[1], proto, port, src)
    for p in lab.pods:
        if p.name == spec or str(p.ip) == spec:
            return Endpoint(p.name, "pod", str(p.ip), p.netns, port=_pod_port(p, proto, port),
                            proto=_pod_proto(p, proto, port))
    for n in lab.nodes:
        if n.name == spec or str(n.ip) == spec:
            return _node_target(lab, n.name, str(n.ip), n.netns, proto, port)
    lb = _load_balancer_target(lab, spec, proto, port, src)
    if lb is not None:
        return lb
    hosts = host_ips(lab)
    for host, netns in lab.internet_hosts:
        if host == spec or hosts.get(host) == spec:
            return Endpoint(host, "internet", hosts.get(host, ""), netns, port=port)
    for svc in lab.services:
        if not svc.headless and str(lab.cluster_ip(svc)) == spec:
            return _service_target(lab, f"{svc.namespace}/{svc.name}", proto, port, src)
        if not svc.headless and spec in {str(ip) for ip in svc.external_ips}:
            return _service_target(lab, f"{svc.namespace}/{svc.name}", proto, port, src, via=spec)
    if is_ip(spec) and IPv4Address(spec).is_loopback and src.netns is not None:
        return _loopback_target(lab, spec, proto, port, src)
    if is_ip(spec):
        lm = lab_map(lab)
        if spec in lm.ip_names:
            return Endpoint(lm.ip_names[spec], "ip", spec, None, port=port)
        for (_, name), ip in load_balancer_ips(lab).items():  # on a port that is none of its Service's
            if str(ip) == spec:
                return Endpoint(f"LoadBalancer IP of svc/{name}", "ip", spec, None, port=port)
        for n in lab.nodes if lab.cni != "conflist" else ():
            if str(n.gateway.ip) == spec:  # not in ip_names: no cni0 there (Lab.bridge_nodes)
                raise UsageError(f"{spec} is the {naming.BRIDGE} address node {n.name} would have, but {n.name} has "
                                 f"no {naming.BRIDGE}: no pod ran there yet (the CNI bridge plugin makes it at a "
                                 "node's first pod)")
        raise UsageError(f"{spec} is not an address of lab {lab.name}; netlab only traces packets inside the lab")
    host, _, port_text = spec.rpartition(":")
    named = {p.name for p in lab.pods} | {n.name for n in lab.nodes} | {h for h, _ in lab.internet_hosts}
    if port_text.isdigit() and (is_ip(host) or host in named or host.startswith(("svc/", "service/"))):  # curl's form
        raise UsageError(f"lab {lab.name}: {spec!r} names a port in the destination; trace takes it as --port: "
                         + netlab_command(f"trace --lab {lab.name} {src.name} {shlex.quote(host)} --port {port_text}"))
    raise UsageError(f"lab {lab.name} has no pod, node, internet host or Service {spec!r} "
                     f"({_names(lab)}; Services as svc/NAME)")


def _load_balancer_target(lab: Lab, spec: str, proto: str | None, port: int | None,
                          src: Endpoint) -> Endpoint | None:
    """A LoadBalancer IP on one of its Service's ports (or with no port): that Service at that address. The
    internet's gateway routes the address to the nodes (plan/internet.py), whose kube-proxy DNATs it, as it does
    a pod's or a node's own packet to it (lbpath.py)."""
    for (namespace, name), ip in load_balancer_ips(lab).items():
        svc = lab.find_service(f"{namespace}/{name}")
        if str(ip) != spec or svc is None:
            continue
        if port is not None and not any(p.port == port and proto in (None, "icmp", p.protocol.lower())
                                        for p in svc.ports):
            return None
        target = _service_target(lab, f"{namespace}/{name}", proto, port, src)
        return Endpoint(target.name, target.kind, spec, None, port=target.port, proto=target.proto,
                        service=target.service)
    return None


def _loopback_target(lab: Lab, spec: str, proto: str | None, port: int | None, src: Endpoint) -> Endpoint:
    """127.0.0.0/8 is the sender's own loopback, in its own namespace: a pod's or a host's, where nothing of the lab
    is; a node's, where kube-proxy serves nodePorts too (iptables mode, route_localnet: the nat OUTPUT's
    KUBE-NODEPORTS takes local destinations; nftables mode: not, its nodeport-ips are the node's addresses)."""
    if src.kind == "node":
        node = _node_target(lab, src.name, spec, src.netns or "", proto, port)
        return Endpoint("the node's own loopback", "node", spec, src.netns, port=node.port, proto=node.proto,
                        service=node.service)
    kind = "pod" if src.kind == "pod" else "host"
    return Endpoint(f"the {kind}'s own loopback", "ip", spec, src.netns, port=port)


def _node_target(lab: Lab, name: str, ip: str, netns: str, proto: str | None, port: int | None) -> Endpoint:
    """A node; on a Service's nodePort, that Service: kube-proxy DNATs it to an endpoint, maybe on another node."""
    for sp in service_ports(lab) if port is not None else ():
        if sp.node_port == port and proto in (None, sp.protocol):
            return Endpoint(name, "node", ip, netns, port=port, proto=sp.protocol, service=lab.service_ref(sp.svc))
    return Endpoint(name, "node", ip, netns, port=port)


def _pod_port(pod: Any, proto: str | None, port: int | None) -> int | None:
    if port is not None or proto in (None, "icmp"):
        return port
    served = [p for p, pr in pod.ports if pr.lower() == proto]
    if not served:  # netlab's echo server answers UDP on the pod's TCP ports too (its UDP twins)
        served = sorted(p for p, pr in pod_echo_ports(pod) if pr.lower() == proto)
    return served[0] if served else None


def _pod_proto(pod: Any, proto: str | None, port: int | None) -> str | None:
    """A port without a protocol: TCP (as ``reach`` and ``validate`` take it), or UDP when the pod serves that
    port over UDP only (a ``protocol: UDP`` port); None when a protocol was given or there is no port."""
    return None if proto is not None or port is None else port_protocol(pod, port)


def _service_target(lab: Lab, name: str, proto: str | None, port: int | None, src: Endpoint,
                    via: str | None = None) -> Endpoint:
    """``via``: one of the Service's externalIPs, given as DST (from anywhere); otherwise an internet host goes to
    the balancer's address, else to the first externalIP, and the cluster's own machines to the ClusterIP."""
    # svc/x/web: the Service web of namespace x; svc/web: the one in the client pod's namespace (a node's: the only)
    client_ns = next((p.spec.namespace for p in lab.pods if p.name == src.name), None) if src.kind == "pod" else None
    svc = lab.find_service(name, client_ns)
    if svc is None:
        raise UsageError(lab.service_problem(name, client_ns))
    if svc.headless:
        raise UsageError(lab.headless_problem(svc))
    ports = [p for p in svc.ports if proto in (None, "icmp") or p.protocol.lower() == proto]
    if port is not None:
        chosen = next((p for p in ports if p.port == port), None)
    else:
        chosen = ports[0] if ports else None
    # A port the Service does not have, to its ClusterIP (from a pod or a node): traced as the ping is, no
    # Service packet (trace/clusterip.py): nftables mode's cluster-ips-check rejects it, iptables mode routes it on
    to_cluster_ip = via is None and src.kind != "internet" and (proto == "icmp" or port is not None)
    if chosen is None and not to_cluster_ip:
        have = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports)
        raise UsageError(f"Service {name} has no {missing_port(port, proto)} (ports: {have})")
    ip = str(lab.cluster_ip(svc))
    if via is not None:
        ip = via
    elif src.kind == "internet":
        lb = load_balancer_ips(lab).get((svc.namespace, svc.name))
        if lb is None and not svc.external_ips:
            raise UsageError(f"Service {name} has no address on the internet (only a LoadBalancer or one with "
                             f"externalIPs has one); trace to a node and its nodePort instead: netlab trace --lab "
                             f"{lab.name} {src.name} NODE --proto tcp --port N")
        ip = str(lb) if lb is not None else str(svc.external_ips[0])
    ref = lab.service_ref(svc)  # the lab-wide name (capture_namespaces finds it by that); said as the client types it
    return Endpoint(f"svc/{lab.service_ref_from(svc, client_ns)}", "service", ip, None,
                    port=(chosen.port if chosen else port), proto=chosen.protocol.lower() if chosen else proto,
                    service=ref)


def _names(lab: Lab) -> str:
    names = [p.name for p in lab.pods] + [n.name for n in lab.nodes] + [h for h, _ in lab.internet_hosts]
    text = ", ".join(names[:12])
    return text + (", ..." if len(names) > 12 else "")


def capture_namespaces(lab: Lab, src: Endpoint, dst: Endpoint, released: frozenset[str] = frozenset()) -> list[str]:
    """Every namespace the packet (or its reply) may cross, captured at once: with a Service's endpoints, and the
    pods whose hostPort a node's port is (but those ``released``: a terminal pod's, gone with its stopped sandbox,
    cni/terminated.released_netns)."""
    out = [src.netns] if src.netns else []
    out += [n.netns for n in lab.nodes] + [lab.underlay_netns]
    if dst.netns:
        out.append(dst.netns)
    if dst.service:
        svc = lab.find_service(dst.service)
        for port in svc.ports if svc else ():
            out += [p.netns for p, _ in lab.endpoints(svc, port)]
    elif dst.kind == "node" and dst.port is not None:  # a hostPort: portmap DNATs it to a pod of that node
        out += [p.netns for p in lab.pods if p.node == dst.name and p.netns not in released
                if any(m["hostPort"] == dst.port for m in port_mappings(p.spec))]
    if lab.internet_hosts and (src.kind == "internet" or dst.kind in ("internet", "ip", "service")):
        out += [ns for name, ns in lab.internet_hosts if name == "gateway"]
    seen: list[str] = []
    for ns in out:
        if ns not in seen:
            seen.append(ns)
    return seen


def terminated_notes(lab: Lab, *ends: Endpoint) -> list[str]:
    """What a trace says of each of its ends that is a terminal pod (``lab.terminal``: Completed or Error), in
    probe's words (probe.matrix.terminated), which leaves its flows out: the packet meets the namespace netlab
    keeps, but no process of the pod runs there, and Kubernetes would have torn its sandbox down."""
    return [f"{terminated(e.name)}: nothing runs in it to answer or send, so nothing listens there (Kubernetes "
            f"releases a terminated pod's sandbox; netlab keeps its namespace, whose kernel this packet met)"
            for e in ends if e.kind == "pod" and e.name in lab.terminal]
