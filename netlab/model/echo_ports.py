"""Which ports netlab's echo server listens on in a pod: one rule for the containers and the prober.

Pure: workload.lifecycle starts the servers with it, model.endpoints says with it which endpoints answer, and
probe.matrix decides with it which probes an echo server answers.

- A container without ``command`` runs the echo server on its declared ports,
  or on 8080/TCP when it declares none (``DEFAULT_ECHO_PORT``).
- Every TCP port also gets its UDP twin, the same number over UDP, so the
  server answers "every TCP connection and UDP datagram" on its port
  (``nc -u <pod> 8080`` works as ``nc <pod> 8080`` does). ``protocol: TCP`` is
  Kubernetes' default, written or not, so it cannot mean "TCP only".
- A port declared ``protocol: UDP`` is UDP only: writing UDP is a choice (a
  DNS-like server, a UDP Service's target), and a topology may expect TCP to
  that port to be refused. Declare the port twice, TCP and UDP, for both.
- A twin is left out when another container of the same pod declares that
  port over UDP (or is a port-less echo server, which holds 8080/UDP): it is
  that container's port, and taking it would make one of them fail with
  "Address already in use".

The twin is not a declared port (``PodInfo.ports``), but it listens: ``get pods``
lists it, and the probe matrix probes it over UDP as it probes every echo port
(probe.matrix.probe_ports). A Service's endpoints are the pods its selector
matches, declared port or not (model.lab.Lab.endpoints), and a UDP Service's
traffic to a twin is answered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

ECHO_DEFAULT_PORT = 8080  # a container without command and ports runs the echo server here
DEFAULT_ECHO_PORT = (ECHO_DEFAULT_PORT, "TCP")

if TYPE_CHECKING:
    from netlab.model.lab import PodInfo
    from netlab.model.topology import Container


def declared_echo_ports(container: "Container") -> list[tuple[int, str]]:
    """The ports an echo container declares, or the default 8080/TCP."""
    return [(p.container_port, p.protocol) for p in container.ports] or [DEFAULT_ECHO_PORT]


def _held_by_others(containers: list["Container"], me: "Container") -> set[tuple[int, str]]:
    held: set[tuple[int, str]] = set()
    for c in containers:
        if c.name == me.name:  # names are unique in a pod (PodInfo.containers makes a new default each call)
            continue
        if c.command is None:
            held |= set(declared_echo_ports(c))
            if not c.ports:
                held.add((DEFAULT_ECHO_PORT[0], "UDP"))
        else:
            held |= {(p.container_port, p.protocol) for p in c.ports}
    return held


def echo_ports(containers: list["Container"], container: "Container") -> list[tuple[int, str]]:
    """(port, PROTOCOL) the echo server of ``container`` (one of ``containers``, its pod's) listens on."""
    declared = declared_echo_ports(container)
    held = _held_by_others(containers, container)
    out = list(dict.fromkeys(declared))
    for port, protocol in declared:
        twin = (port, "UDP")
        if protocol == "TCP" and twin not in out and twin not in held:
            out.append(twin)
    return out


def pod_echo_ports(pod: "PodInfo") -> set[tuple[int, str]]:
    """Every (port, PROTOCOL) an echo server of this pod listens on."""
    containers = pod.containers
    out: set[tuple[int, str]] = set()
    for c in containers:
        if c.command is None:
            out |= set(echo_ports(containers, c))
    return out


def silent(pod: "PodInfo", port: int, protocol: str) -> bool:
    """Nothing of this pod can listen on (port, PROTOCOL): every container runs netlab's echo server (no
    ``command`` of the user's, which might listen where it declares nothing) and none listens there. A TCP
    connection sent to it is refused (the pod's kernel answers RST), a UDP datagram is answered with ICMP
    port unreachable."""
    return all(c.command is None for c in pod.containers) and (port, protocol) not in pod_echo_ports(pod)


def port_protocol(pod: "PodInfo", port: int) -> str:
    """What a port given without a protocol means on this pod (trace, reach): tcp, or udp where the pod serves
    that port over UDP only (a ``protocol: UDP`` port)."""
    served = {protocol for p, protocol in [*pod.ports, *pod_echo_ports(pod)] if p == port}
    return "udp" if served == {"UDP"} else "tcp"


def missing_port(port: int | None, proto: str | None) -> str:
    """A port a Service or pod lacks, as the user asked for it: ``port 82/TCP``, ``port 82``, ``UDP port`` (only a
    protocol asked: it said "no port /UDP")."""
    if port is None:
        return f"{proto.upper()} port" if proto else "port"
    return f"port {port}/{proto.upper()}" if proto else f"port {port}"
