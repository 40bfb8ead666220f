"""The life of a packet: ``netlab trace``, ``netlab capture`` and ``netlab inspect``.

A trace, in order:

1. open a packet socket in every namespace the packet may cross (the source,
   every node, the underlay, the destination, a Service's endpoints, the
   internet's gateway), all before anything is sent;
2. send one real, marked packet from a socket inside the source namespace, and
   wait (bounded) for the reply on that socket;
3. read the conntrack entries of the namespaces that NAT (nodes, gateway,
   load balancer) while the connection still exists: they say which endpoint a
   Service DNAT picked and how replies are translated back;
4. walk the path asking each namespace's kernel for its decisions (walk.py,
   kernel.py), the reply's path too;
5. match the captured frames to the rows: seen or not seen, and for a lost
   packet the first hop where it disappeared and the kernel's reason;
6. optionally write every captured frame of the packet to a pcapng file.

Modules: flow.py (the packet), facts.py (the kernel's answers and the
questions), labmap.py (the lab's plan as the trace sees it), hops.py (rows),
walk.py (the walk), verdict.py (seen or not, where it was lost), render.py
(text and JSON): all pure; kernel.py (netlink, conntrack, iptables; inspect),
capture.py (sockets, the marked packet, frame decoding, pcaps).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Callable

from netlab.errors import UsageError
from netlab.model.lab import Lab
from netlab.trace.flow import Flow, is_ip
from netlab.trace.hops import Walk
from netlab.trace.labmap import LabMap
from netlab.trace.render import TraceResult, label, number
from netlab.trace.verdict import Verdict, explain, mark_seen, matches
from netlab.trace.walk import walk

Progress = Callable[[str, int, int], None]
DEFAULT_TIMEOUT = 1.0


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
        return {k: v for k, v in self.__dict__.items() if v is not None}


def lab_map(lab: Lab) -> LabMap:
    from netlab.plan.build import build_plan

    return LabMap.from_lab(lab, build_plan(lab))


def _host_ips(lab: Lab) -> dict[str, str]:
    """Internet-side machines (gateway, lb, hosts): the address on their eth0, from the plan."""
    if not lab.internet_hosts:
        return {}
    from netlab.plan.build import build_plan

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
    hosts = _host_ips(lab)
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
            return Endpoint(p.name, "pod", str(p.ip), p.netns, port=_pod_port(p, proto, port))
    for n in lab.nodes:
        if n.name == spec or str(n.ip) == spec:
            return Endpoint(n.name, "node", str(n.ip), n.netns, port=port)
    hosts = _host_ips(lab)
    for host, netns in lab.internet_hosts:
        if host == spec or hosts.get(host) == spec:
            return Endpoint(host, "internet", hosts.get(host, ""), netns, port=port)
    for svc in lab.services:
        ip = str(lab.addressing.service_ip.get(svc.name, ""))
        if ip == spec:
            return _service_target(lab, svc.name, proto, port, src)
    if is_ip(spec):
        lm = lab_map(lab)
        if spec in lm.ip_names:
            return Endpoint(lm.ip_names[spec], "ip", spec, None, port=port)
        raise UsageError(f"{spec} is not an address of lab {lab.name}; netlab only traces packets inside the lab")
    raise UsageError(f"lab {lab.name} has no pod, node, internet host or Service {spec!r} "
                     f"({_names(lab)}; Services as svc/NAME)")


def _pod_port(pod: Any, proto: str | None, port: int | None) -> int | None:
    if port is not None or proto in (None, "icmp"):
        return port
    served = [p for p, pr in pod.ports if pr.lower() == proto]
    return served[0] if served else None


def _service_target(lab: Lab, name: str, proto: str | None, port: int | None, src: Endpoint) -> Endpoint:
    svc = next((s for s in lab.services if s.name == name), None)
    if svc is None:
        names = ", ".join("svc/" + s.name for s in lab.services) or "none"
        raise UsageError(f"lab {lab.name} has no Service {name!r} (Services: {names})")
    ports = [p for p in svc.ports if proto in (None, "icmp") or p.protocol.lower() == proto]
    if port is not None:
        chosen = next((p for p in ports if p.port == port), None)
    else:
        chosen = ports[0] if ports else None
    if chosen is None and proto != "icmp":
        have = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports)
        raise UsageError(f"Service {name} has no port {port or ''}{'/' + proto if proto else ''} (ports: {have})")
    ip = str(lab.addressing.service_ip[svc.name])
    if src.kind == "internet":
        from netlab.plan.internet import load_balancer_ips

        lb = load_balancer_ips(lab).get((svc.namespace, svc.name))
        if lb is None:
            raise UsageError(f"Service {name} has no address on the internet (only a LoadBalancer has one); trace "
                             f"to a node and its nodePort instead: netlab trace {src.name} NODE --proto tcp --port N")
        ip = str(lb)
    return Endpoint(f"svc/{name}", "service", ip, None, port=(chosen.port if chosen else port),
                    proto=chosen.protocol.lower() if chosen else proto, service=svc.name)


def _names(lab: Lab) -> str:
    names = [p.name for p in lab.pods] + [n.name for n in lab.nodes] + [h for h, _ in lab.internet_hosts]
    text = ", ".join(names[:12])
    return text + (", ..." if len(names) > 12 else "")


def capture_namespaces(lab: Lab, src: Endpoint, dst: Endpoint) -> list[str]:
    """Every namespace the packet (or its reply) may cross, captured at once."""
    out = [src.netns] if src.netns else []
    out += [n.netns for n in lab.nodes] + [lab.underlay_netns]
    if dst.netns:
        out.append(dst.netns)
    if dst.service:
        svc = next(s for s in lab.services if s.name == dst.service)
        for port in svc.ports:
            out += [p.netns for p, _ in lab.endpoints(svc, port)]
    if lab.internet_hosts and (src.kind == "internet" or dst.kind in ("internet", "ip", "service")):
        out += [ns for name, ns in lab.internet_hosts if name in ("gateway", "lb")]
    seen: list[str] = []
    for ns in out:
        if ns not in seen:
            seen.append(ns)
    return seen


def run(lab: Lab, src_name: str, dst_spec: str, proto: str | None = None, port: int | None = None,
        timeout: float = DEFAULT_TIMEOUT, pcap: str | None = None, progress: Progress | None = None) -> TraceResult:
    """Trace one packet from ``src_name`` to ``dst_spec`` through a running lab."""
    from netlab.kernel import netns as nsmod

    step = (lambda i: progress("trace", i, 5)) if progress else (lambda i: None)
    src = resolve_source(lab, src_name)
    dst = resolve_target(lab, dst_spec, proto, port, src)
    proto = proto or dst.proto or "icmp"
    port = dst.port if proto != "icmp" else None
    if proto in ("tcp", "udp") and port is None:
        raise UsageError(f"{dst.name} serves no {proto.upper()} port netlab knows of; give one with --port N")
    lm = lab_map(lab)
    namespaces = capture_namespaces(lab, src, dst)
    missing = [ns for ns in namespaces if not nsmod.is_netns_mount(ns)]
    if missing:
        raise UsageError(f"namespace {missing[0]} of lab {lab.name} does not exist; is the lab up? (`sudo netlab status`)")

    step(0)
    try:
        return _run(lab, lm, src, dst, proto, port, timeout, pcap, namespaces, step)
    except FileNotFoundError as exc:  # a namespace vanished under us
        raise UsageError(f"{exc.filename or 'a namespace'} vanished during the trace: is lab {lab.name} being "
                         "taken down? (`sudo netlab status`)") from None


def _run(lab: Lab, lm: LabMap, src: Endpoint, dst: Endpoint, proto: str, port: int | None, timeout: float,
         pcap: str | None, namespaces: list[str], step: Callable[[int], None]) -> TraceResult:
    from netlab.trace import capture as cap
    from netlab.trace.kernel import LiveKernel

    vx_port = lab.topo.network.vxlan.port if lab.mode == "vxlan" else 8472
    nonce = secrets.token_hex(4)
    kernel = LiveKernel()
    try:
        with cap.Capture(namespaces) as capture:
            capture.settle()
            step(1)
            sent = cap.send_marked(src.netns, proto, dst.ip, port, nonce)
            try:
                cap.wait_reply(sent, timeout)
                kernel.snapshot_conntrack([ns for ns in namespaces if ns in lm.nat_netns], proto)
                step(2)
            finally:
                sent.close()
            capture.settle()
            frames = capture.drain()
        step(3)
        flow = Flow.icmp(None, dst.ip, sent.sport) if proto == "icmp" else Flow(proto, sent.src, dst.ip, sent.sport, port)
        fwd = walk(kernel, lm, src.netns, flow)
        back: Walk | None = None
        if fwd.outcome == "delivered" and fwd.final is not None and fwd.end_netns:
            back = walk(kernel, lm, fwd.end_netns, fwd.final.reversed(), role="reply", direction="reply")
    finally:
        kernel.close()
    step(4)

    flows = {h.observe.flow for h in fwd.hops + (back.hops if back else []) if h.observe}
    packets, ours = [], []
    for frame, d in cap.frames_in(frames, [vx_port]):
        p = cap.classify(d, frame.netns, frame.ifname, frame.direction, frame.ts, sent.marker, flows)
        if p is not None:
            packets.append(p)
            ours.append((frame, p))
    captured = set(namespaces)
    ip_packets = [p for p in packets if p.flow is not None]
    mark_seen(fwd.hops, ip_packets, captured)
    fverdict = explain(fwd)
    bverdict: Verdict | None = None
    if back is not None:
        mark_seen(back.hops, ip_packets, captured)
        bverdict = explain(back)
        if not bverdict.delivered and not any(h.seen for h in back.hops):
            why = f"{dst.name} sent no reply"
            if sent.error:
                why += f" ({sent.error})"
            elif proto == "udp":
                why += " (nothing answered the datagram: is a server listening on that port?)"
            bverdict = Verdict(False, bverdict.lost_at, why, never_sent=True)
    result = TraceResult(
        lab=lab.name, src=src.to_json(), dst=dst.to_json(), proto=proto, port=port, marker=sent.marker.decode(),
        forward=fwd, reply=back, verdict=fverdict, reply_verdict=bverdict, reply_received=sent.reply,
        reply_text=sent.reply_text, captured_netns=namespaces, vxlan_port=vx_port,
        packets=sum(1 for p in packets if p.flow is not None and p.role in ("request", "reply", "error")))
    number(result)
    result.icmp_errors = [dict(p.icmp_error, netns=p.netns, ifname=p.ifname) for p in packets if p.icmp_error]
    result.icmp_errors = _unique(result.icmp_errors, ("from", "text", "about"))
    result.arp = _arp_story(fwd, packets)
    if pcap:
        keep = [(frame, _comment(frame, p, fwd.hops + (back.hops if back else []))) for frame, p in ours
                if p.flow is not None or _arp_relevant(p, fwd)]
        cap.write_pcapng(pcap, keep, vx_port)
        result.pcap = pcap
    step(5)
    return result


def _unique(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for item in items:
        k = tuple(item.get(x) for x in keys)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def _neigh_ips(w: Walk) -> set[tuple[str, str, str]]:
    return {(h.netns, h.device, h.facts["ip"]) for h in w.hops if h.kind == "neigh" and "ip" in h.facts}


def _arp_relevant(p: Any, w: Walk) -> bool:
    if p.arp is None:
        return False
    ips = {ip for _, _, ip in _neigh_ips(w)}
    return p.arp["tpa"] in ips or p.arp["spa"] in ips


def _arp_story(w: Walk, packets: list[Any]) -> list[dict[str, Any]]:
    """For every next hop whose ARP entry is missing: the requests the kernel sent, and whether anyone answered."""
    out = []
    for h in w.hops:
        if h.kind != "neigh" or not h.problem or "ip" not in h.facts:
            continue
        ip = h.facts["ip"]
        asks = [p for p in packets if p.arp and p.arp["op"] == 1 and p.arp["tpa"] == ip and p.netns == h.netns
                and p.ifname == h.device and p.direction == "out"]
        answers = [p for p in packets if p.arp and p.arp["op"] == 2 and p.arp["spa"] == ip and p.netns == h.netns]
        if asks or answers:
            out.append({"text": asks[0].summary if asks else f"who-has {ip}", "count": len(asks),
                        "netns": h.netns, "ifname": h.device, "answered": bool(answers)})
    return out


def _comment(frame: Any, p: Any, hops: list[Any]) -> str:
    rows = [h for h in hops if h.observe is not None and matches(p, h.observe)]
    where = f"{frame.netns} {frame.ifname} {frame.direction}"
    if rows:
        return f"hop {label(rows[0])}: {where}: {rows[0].kind}: {rows[0].decision}"[:400]
    return f"{where}: {p.summary}"


__all__ = ["run", "resolve_source", "resolve_target", "lab_map", "Endpoint", "TraceResult"]
