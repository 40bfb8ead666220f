"""Which probes a lab gets, and what each is expected to show (judge.py says how a reply is judged).

Pure: no sockets, no root. The default expectation is the Kubernetes network
model, everything reaches everything:

- ICMP echo from every pod to every other pod, and from every node to every pod;
- TCP to every port a pod's containers declare (the echo server's 8080/TCP when
  a container declares none), from every other pod and every node: a completed
  connect is proof, whoever serves the port;
- UDP to every port netlab's echo server listens on (containers without a
  ``command``; a TCP port's UDP twin too, model/echo_ports.py): only it is
  known to answer an arbitrary datagram, so silence
  from anything else proves nothing; and to the cluster DNS add-on's 53/UDP,
  with a real DNS question (dnsq.py) whose answer is checked, as on its 53/TCP;
- with an ``internet:`` section, egress: TCP and UDP from every pod to every
  internet host on the echo port, answered by a temporary echo listener the
  prober starts there (see listeners.py); the host must see the gateway's
  address. Services are probed by services.py.

A topology's ``expect:`` entries override the matching probe (same from, to,
protocol and port) or add one (a node or internet host as source or
destination, a port nobody declared, UDP to a port with its own server).
``reach: true`` needs evidence: a UDP probe to a port that is not the echo
server's fails on silence like any other, with a hint why; ``reach: false``
holds on silence or refusal.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterable

from netlab.errors import in_python_words
from netlab.model.clusterdns import dns_service, fqdn, is_addon_pod
from netlab.model.lab import DEFAULT_ECHO_PORT
from netlab.plan.cniadd import lab_bridge as lab_bridge
from netlab.probe.dnsq import PORT as DNS_PORT, Question
from netlab.probe.policy import policy_judge
from netlab.probe.probes import (ORDER as ORDER, PROTOS as PROTOS, Endpoint as Endpoint, Probe as Probe,
                                 SeenRule as SeenRule)  # the matrix's names too
from netlab.model.echo_ports import pod_echo_ports

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.probe.policy import Judge

ICMP_IP_HEADERS = 20  # the IP header; the pod's MTU minus it is the ICMP message of a full-size echo
ECHO_PORT = DEFAULT_ECHO_PORT[0]  # the echo server's default port; the prober's listeners on internet hosts too


def terminated(name: str) -> str:
    """A terminal pod (workload/terminal.py), as probe, ``policy table``, ``reach`` and ``trace`` name it."""
    return f"pod {name} has terminated (its containers exited for good: Completed or Error)"


def terminated_note(name: str) -> str:
    """What probe, ``policy table`` and ``reach`` say of a terminal pod (workload/terminal.py): Kubernetes tears
    down a Succeeded or Failed pod's sandbox, and no process of it runs to answer or to send."""
    return f"{terminated(name)}: no flow to or from it is probed"


def terminated_notes(lab: "Lab") -> list[str]:
    """:func:`terminated_note` for each terminal pod of ``lab``, in the topology's order."""
    return [terminated_note(p.name) for p in lab.pods if p.name in lab.terminal]


def touches_terminated(lab: "Lab", p: Probe) -> bool:
    """``p`` goes to or from a terminal pod of ``lab``: a flow no process sends or answers."""
    return any(e.kind == "pod" and e.name in lab.terminal for e in (p.source, p.destination))


def endpoints(lab: "Lab") -> dict[str, Endpoint]:
    out: dict[str, Endpoint] = {}
    bridge = lab_bridge(lab)
    for n in lab.nodes:
        out[n.name] = Endpoint(n.name, "node", n.netns, n.ip, node=n.name)
    for p in lab.pods:
        out[p.name] = Endpoint(p.name, "pod", p.netns, p.ip, node=p.node,
                               bridge=f"{p.node}/{bridge}" if bridge else None)
    hosts = {h.name: h.ip for h in lab.topo.internet.hosts} if lab.topo.internet else {}
    for name, netns in lab.internet_hosts:
        if name in hosts:
            out[name] = Endpoint(name, "host", netns, hosts[name])
        elif name == "gateway" and lab.topo.internet is not None:
            out[name] = Endpoint(name, "host", netns, lab.topo.internet.gateway.ip)
    return out


def echo_ports(pod: "PodInfo") -> set[tuple[int, str]]:
    """(port, PROTOCOL) where netlab's echo server listens in this pod: every container
    without a ``command`` serves its declared ports (8080/TCP if it declares none) and
    the UDP twin of each TCP port (one rule with the containers: model/echo_ports.py)."""
    return pod_echo_ports(pod)


def probe_ports(pod: "PodInfo") -> list[tuple[int, str, bool]]:
    """(port, proto, echo) the default matrix probes on a pod: TCP on every port it serves
    (a connect is proof), UDP wherever the echo server listens (a declared UDP port or the
    UDP twin of its TCP port: it answers every datagram there), and the cluster DNS's 53/UDP
    (asked a DNS question: :func:`asks_dns`). Declared ports first, then the twins."""
    echo = echo_ports(pod)
    silent = set(silent_udp_ports(pod))
    out = [(port, protocol.lower(), (port, protocol) in echo) for port, protocol in pod.ports
           if not (protocol == "UDP" and port in silent)]
    declared = set(pod.ports)
    out += [(port, "udp", True) for port, protocol in sorted(echo) if protocol == "UDP" and (port, protocol)
            not in declared]
    return out


def silent_udp_ports(pod: "PodInfo") -> list[int]:
    """The pod's declared UDP ports the matrix leaves out: its own command serves them, not netlab's echo server
    nor the cluster DNS, and a silent UDP server cannot be told from a lost packet."""
    echo = echo_ports(pod)
    return [port for port, protocol in pod.ports
            if protocol == "UDP" and (port, protocol) not in echo and not asks_dns(pod, port, protocol)]


def nothing_to_probe(lab: "Lab", protos: Iterable[str]) -> str:
    """Why a run of ``protos`` holds no probe, in one line: a run that checks nothing passed nothing (it said
    "0/0 probes as expected" and exit 0)."""
    chosen = [p for p in ORDER if p in set(protos)]
    if not lab.pods:
        why = f"lab {lab.name} has no pods"
    else:
        served = {proto for pod in lab.pods for _, proto, _ in probe_ports(pod)}
        why = "; ".join(f"no pod serves a {proto.upper()} port" + (
            " netlab's echo server listens on (UDP is probed only there and at the cluster DNS: another "
            "server's silence proves nothing)" if proto == "udp" else "") for proto in chosen if proto not in served)
    option = f"protos={chosen!r}" if in_python_words() else f"--proto {','.join(chosen)}"  # lab.probe's argument
    return f"nothing to probe in lab {lab.name} with {option}: {why or 'no probe was built'}"


def asks_dns(pod: "PodInfo", port: int | None, protocol: str) -> bool:
    """A probe to ``pod`` on this port asks a DNS question: the add-on's dnsmasq on 53/UDP or 53/TCP."""
    return port == DNS_PORT and protocol.upper() in ("UDP", "TCP") and is_addon_pod(pod.spec)


def dns_question(lab: "Lab") -> Question | None:
    """What a probe asks the cluster DNS: its own Service's name, whose A record is the Service's ClusterIP
    (None: the lab has no DNS add-on)."""
    svc = dns_service(lab.topo)
    ip = lab.cluster_ip(svc) if svc is not None else None
    if ip is None or not any(is_addon_pod(p.spec) for p in lab.pods):
        return None
    return Question(fqdn(svc), str(ip))


def dns_asker(lab: "Lab") -> Callable[[Endpoint, str, int | None], Question | None]:
    """``ask(dst, proto, port)``: the DNS question a probe of ``proto``/``port`` to ``dst`` asks (None: it sends
    the echo line). The lab is read once, not per probe."""
    question = dns_question(lab)
    asks = {p.name for p in lab.pods if asks_dns(p, DNS_PORT, "UDP")} if question is not None else set()

    def ask(dst: Endpoint, proto: str, port: int | None) -> Question | None:
        return question if dst.kind == "pod" and dst.name in asks and proto in ("udp", "tcp") and \
            port == DNS_PORT else None
    return ask


def egress_rule(lab: "Lab") -> SeenRule | None:
    """What an internet host must see of a connection from inside the cluster."""
    inet = lab.topo.internet
    if inet is None:
        return None
    gw = str(inet.gateway.ip)
    return SeenRule("*", (gw,), f"egress is masqueraded by the node and again by the gateway: the host sees "
                                f"the gateway's {gw}, never a pod's address")


def egress_section(lab: "Lab", proto: str) -> str:
    gw = lab.topo.internet.gateway.ip if lab.topo.internet else "?"
    # The hosts run nothing of their own: what answers is netlab's echo server, run there for the probe only
    # (listeners.py), as trace runs it for its one packet.
    return (f"egress {proto}/{ECHO_PORT} (pods to internet hosts, seen as the gateway {gw}; each host answers "
            "with a temporary echo listener)")


def internet_host_names(lab: "Lab") -> list[str]:
    return [h.name for h in lab.topo.internet.hosts] if lab.topo.internet else []


def judged(policy: "Judge | None", p: Probe) -> Probe:
    """A probe that expects the default ("everything reaches everything") with the NetworkPolicies' verdict
    instead (``policy``: :func:`netlab.probe.policy.policy_judge`, None without policies). One function for the
    matrix and for ``lab.reach`` (api/reach.py) of a flow the matrix does not hold: a pod's egress to a node is
    judged too (the pod's egress chain, from INPUT). ``expect:`` entries keep their own expectation."""
    if policy is not None and p.reason == "default" and p.destination.kind in ("pod", "host", "node"):
        expected, why = policy(p.source, p.destination, p.proto, p.port)
        return replace(p, expected=expected, reason=why)
    return p


def build_matrix(lab: "Lab", protos: Iterable[str] = PROTOS, egress: bool = True) -> list[Probe]:
    """Every probe of a lab, in a stable order: sources as in the topology (pods, then nodes).

    ``egress``: with an ``internet:`` section, TCP and UDP from every pod to every
    internet host's echo port (the prober starts the listener there).
    """
    want = set(protos)
    eps = endpoints(lab)
    pods = [eps[p.name] for p in lab.pods]
    nodes = [eps[n.name] for n in lab.nodes]
    ports = {p.name: probe_ports(p) for p in lab.pods}
    echo = {p.name: echo_ports(p) for p in lab.pods}
    question_to = dns_asker(lab)  # the cluster DNS's port 53 is asked a question
    hosts = [eps[h] for h in internet_host_names(lab) if h in eps]
    out_rule = egress_rule(lab)
    policy = policy_judge(lab)  # NetworkPolicies: the evaluator's verdict instead of "reaches"
    host_gw = lab.mode == "host-gw"

    def port_kept(src: Endpoint, dst: Endpoint) -> bool:  # see Probe.port_kept
        return not (host_gw and src.kind == "node" and dst.kind == "pod" and dst.node != src.name)
    probes: dict[tuple, Probe] = {}

    def add(p: Probe) -> None:
        probes[p.key] = judged(policy, p)

    for src in pods + nodes:
        for dst in pods:
            if src.name == dst.name:
                continue
            if "icmp" in want:
                add(Probe(src, dst, "icmp", None, True))
            if "mtu" in want:
                add(Probe(src, dst, "mtu", None, True, size=lab.pod_mtu - ICMP_IP_HEADERS))
            kept = port_kept(src, dst)
            for port, proto, is_echo in ports[dst.name]:
                if proto in want:
                    add(Probe(src, dst, proto, port, True, echo=is_echo, question=question_to(dst, proto, port),
                              port_kept=kept))
    if egress and out_rule is not None:
        for proto in ("tcp", "udp"):
            if proto not in want:
                continue
            for src in pods:
                for dst in hosts:
                    add(Probe(src, dst, proto, ECHO_PORT, True, section=egress_section(lab, proto),
                              rules=(out_rule,), echo=True))
    host_names = {h.name for h in hosts}
    for i, exp in enumerate(lab.topo.expect):
        if exp.proto not in want:
            continue
        src, dst = eps.get(exp.source), eps.get(exp.to)
        if src is None or dst is None:  # the loader reports unknown names; skip defensively
            continue
        port = None if exp.proto == "icmp" else exp.port
        old = probes.get((src.name, dst.name, exp.proto, port))
        q = None
        if old is not None:
            section, rules, is_echo, q = old.section, old.rules, old.echo, old.question
        else:
            section, rules, is_echo = None, (), None
            if dst.kind == "pod" and port is not None:
                is_echo = (port, exp.proto.upper()) in echo[dst.name]
                q = question_to(dst, exp.proto, port)
            elif dst.name in host_names and port is not None:
                is_echo = port == ECHO_PORT  # the prober's listener
                if src.kind in ("pod", "node") and out_rule is not None:
                    rules = (out_rule,)
        kept = old.port_kept if old is not None else port_kept(src, dst)
        add(Probe(src, dst, exp.proto, port, exp.reach, reason=f"expect[{i}]", section=section, rules=rules,
                  echo=is_echo, question=q, port_kept=kept))
    order: dict[str, int] = {}
    for name in [p.name for p in pods] + [n.name for n in nodes] + list(eps):
        order.setdefault(name, len(order))
    return sorted(probes.values(), key=lambda p: (ORDER.index(p.proto), p.port or 0, order[p.source.name],
                                                  order[p.destination.name]))
