"""Whether a Service's endpoints will answer its traffic, said before the lab is up (pure: the model only).

The EndpointSlice controller makes every pod the selector matches (but a terminated one) an
endpoint of a numeric ``targetPort``, whether or not a container declares
that port (``containerPort`` is informational in Kubernetes): kube-proxy
sends such a pod its share of the connections, and the pod refuses them. A
named ``targetPort`` is the other way round: only the pods that declare a
port of that name and protocol are endpoints (each at its own number), so a
selected pod that declares none is left out of that Service port, and a name
no selected pod declares leaves it without endpoints. A
selector that matches no pod, or no selector at all (in a cluster, someone
else writes such a Service's EndpointSlices; nobody does in a lab), leaves the
Service without endpoints: kube-proxy rejects its connections (KUBE-SVC-...
holds no endpoint; the filter table's REJECT). So does one that matches pods of other namespaces only: a Service
selects pods of its own namespace (the EndpointSlice controller lists the
pods of the Service's namespace), so ``y/web`` selecting ``app: web`` has no
endpoints however many pods of ``x`` carry that label. All are legal and all
are usually a mistake, so ``validate`` and ``up`` say so, as notes, and go on
(``probe`` expects such a Service refused). A pod whose containers have all exited for good (phase Succeeded
or Failed: ``restartPolicy: Never``, or ``OnFailure`` after exit 0; ``get pods`` says Completed or Error) is
no endpoint either (ShouldPodBeInEndpoints): ``Lab.terminal`` names them, from the running lab.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from netlab.model.lab import Lab, PodInfo
from netlab.model.topology import Service, ServicePort
from netlab.model.echo_ports import pod_echo_ports
from netlab.model.places import Key, Note, Places


def unreachable_external_ip(ip: IPv4Address, protocol: str = "TCP") -> str | None:
    """Why no client reaches externalIP ``ip`` (the API server takes it) on a port of ``protocol``, or None:
    tcp_v4_connect refuses a route that is multicast or broadcast with ENETUNREACH, in every pod, node and internet
    host; a UDP datagram to it is sent (to 255.255.255.255 only with SO_BROADCAST); one to a multicast address is
    DNATed by kube-proxy's rule and the endpoint answers (seen in a lab: conntrack, tcpdump in the pod), but the
    answer never reaches the client's socket."""
    multicast = ip.is_multicast
    what = ("a multicast address (224.0.0.0/4)" if multicast else
            "the limited broadcast address" if ip == IPv4Address("255.255.255.255") else None)
    if what is None:
        return None
    if protocol.upper() != "UDP":
        return (f"{what}: no host's kernel connects TCP to it (connect() says Network is unreachable), so no "
                "client reaches the Service there")
    if multicast:
        return (f"{what}: a UDP datagram to it is sent (connect() and send succeed) and kube-proxy's rule passes it to "
                "an endpoint, but the endpoint's answer never reaches the client, so no client gets an answer from "
                "the Service there")
    return (f"{what}: a UDP datagram to it is sent only by a socket with SO_BROADCAST (connect() says Permission "
            "denied without it), and no answer comes back, so no client gets an answer from the Service there")


def service_notes(lab: Lab, places: Places | None = None) -> list[Note]:
    """One line per Service port whose endpoints will not answer, or that has none, and per externalIP no client
    reaches; at the field it is about when ``places`` knows where the Service was written."""
    places = places if places is not None else Places()
    out = []
    serves: dict[str, set[tuple[int, str]]] = {}  # what each pod serves, found once, not once per Service
    deaf_of: dict[tuple, list[str]] = {}
    for svc in lab.services:
        key: Key = ("Service", svc.namespace, svc.name)
        for k, ip in enumerate(svc.external_ips):
            protos = sorted({p.protocol.upper() for p in svc.ports} & {"TCP", "UDP"} or {"TCP"})
            for proto in protos:  # TCP's reason first, then UDP's, where it has both
                if (why := unreachable_external_ip(ip, proto)) is not None:
                    on = f" (its {proto} ports)" if len(protos) > 1 else ""
                    out.append(places.note(key, ("externalIPs", k), f"service {svc.namespace}/{svc.name} externalIP "
                                                                       f"{ip}{on} is {why}; probe leaves it out"))
        # what a client gets from a port without endpoints: kube-proxy's REJECT, or from a headless Service's name
        # (no ClusterIP, no rule) no address at all
        none = "its name answers no address" if svc.headless else "kube-proxy rejects its connections"
        if not svc.selector:  # in a cluster, someone writes its EndpointSlices; in a lab nobody does
            ports = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports)
            ports = f"port {ports}" if ports else "(no ports)"
            out.append(places.note(key, ("selector",), f"service {svc.namespace}/{svc.name} {ports}: no selector, "
                                                       "so no endpoints (netlab writes no EndpointSlice for it): "
                                                       f"{none}"))
            continue
        if not svc.ports and not lab.serving(svc):  # headless, no ports: its endpoints are of no port
            labels = ",".join(f"{k}={v}" for k, v in svc.selector.items())
            out.append(places.note(key, ("selector",), f"service {svc.namespace}/{svc.name} (no ports): no pod of "
                                                       f"namespace {svc.namespace} has the labels {labels}"
                                                       f"{_elsewhere(lab, svc)}: no endpoints, so {none}"))
        for at, port in enumerate(svc.ports):
            eps = lab.endpoints(svc, port)
            name = f"service {svc.namespace}/{svc.name} port {port.port}/{port.protocol}"
            lacking = _lacking(lab, svc, port, eps)
            if lacking:  # a named targetPort: the selected pods that do not declare it are left out
                many = len(lacking) > 1
                names = ", ".join(lacking[:3]) + (", ..." if len(lacking) > 3 else "")
                out.append(places.note(key, ("ports", at, "targetPort"),
                                       f"{name}: targetPort {port.target_port}: selected {'pods' if many else 'pod'} "
                                       f"{names} declare{'' if many else 's'} no {port.protocol} port of that name: "
                                       + (f"no endpoints, so {none}" if not eps else
                                          f"{'they are not endpoints' if many else 'it is not an endpoint'} of this "
                                          "port")))
                continue
            if not eps and lab.selection.selected(svc):  # every pod it selects has terminated
                done = [p.name for p in lab.selection.selected(svc)]
                out.append(places.note(key, ("ports", at), f"{name}: its pods ({', '.join(done[:3])}"
                                                           f"{', ...' if len(done) > 3 else ''}) have terminated "
                                                           f"(Completed or Error), and a terminated pod is no "
                                                           f"endpoint: no endpoints, so {none}"))
                continue
            if not eps:
                labels = ",".join(f"{k}={v}" for k, v in svc.selector.items())
                out.append(places.note(key, ("selector",), f"{name}: no pod of namespace {svc.namespace} has the "
                                                           f"labels {labels}{_elsewhere(lab, svc)}: no endpoints, so "
                                                           f"{none}"))
                continue
            if svc.headless:  # clients dial the pods' addresses on ports of their own choosing
                continue
            # what a pod serves: its declared ports, and the UDP twins its echo server answers on too
            same = (svc.namespace, frozenset(svc.selector.items()), port.target_port or port.port, port.protocol)
            if same not in deaf_of:  # the same endpoints as a Service port already looked at: the same answer
                deaf_of[same] = [p.name for p, target in eps if (target, port.protocol) not in _serves(serves, p)]
            deaf = deaf_of[same]
            if deaf:
                target = port.target_port or port.port
                which = f"endpoints {', '.join(deaf)} declare" if len(deaf) > 1 else f"endpoint {deaf[0]} declares"
                out.append(places.note(key, ("ports", at), f"{name}: {which} no {target}/{port.protocol}: kube-proxy "
                                                           f"sends {'them' if len(deaf) > 1 else 'it'} its share of "
                                                           "the connections anyway, and nothing listens there "
                                                           "(declare the port, or serve it with a command)"))
    return out


def _serves(known: dict[str, set[tuple[int, str]]], pod: PodInfo) -> set[tuple[int, str]]:
    """(port, PROTOCOL) a pod serves: its declared ports and its echo servers' (kept in ``known``)."""
    if pod.name not in known:
        known[pod.name] = set(pod.ports) | pod_echo_ports(pod)
    return known[pod.name]


def _lacking(lab: Lab, svc: Service, port: ServicePort, eps: list[tuple[PodInfo, int]]) -> list[str]:
    """The pods a Service selects that are no endpoint of this port: those that declare no port of its named
    targetPort's name and protocol (a numeric targetPort leaves none out)."""
    if isinstance(port.target_port if port.target_port is not None else port.port, int):
        return []  # a numeric targetPort makes every pod it selects an endpoint
    chosen = {p.name for p, _ in eps}
    return [p.name for p in lab.serving(svc) if p.name not in chosen]


def _elsewhere(lab: Lab, svc: Service) -> str:
    """The pods of other namespaces the selector matches, said as such: they are not endpoints."""
    matching = lab.selection.matching(svc)
    if not matching:
        return ""
    names = ", ".join(f"{p.spec.namespace}/{p.name}" for p in matching[:3]) + (", ..." if len(matching) > 3 else "")
    return (f" ({names} {'match' if len(matching) > 1 else 'matches'}, in other namespaces: a Service selects "
            "pods of its own namespace only)")
