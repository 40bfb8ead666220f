"""The Service environment variables a container starts with, as the kubelet gives them (pkg/kubelet/envvars).

For each Service it links into a pod (those of the pod's namespace while the pod's ``enableServiceLinks`` is
true, the default, and always the API server's ``default/kubernetes``) that has a ClusterIP (a headless Service
has none and gets no variables), with ``NAME`` the Service's name in capitals, ``-`` as ``_``:

- ``NAME_SERVICE_HOST``: the ClusterIP; ``NAME_SERVICE_PORT``: the first port's number;
  ``NAME_SERVICE_PORT_<PORTNAME>``: each named port's number;
- Docker's link variables: ``NAME_PORT`` (the first port, ``tcp://IP:PORT``) and, for each port,
  ``NAME_PORT_<port>_<PROTO>`` (``tcp://IP:PORT``), its ``_PROTO`` (``tcp``), ``_PORT`` and ``_ADDR``.

The variables are the Services the lab has when the container starts: one added later reaches it at its next
start, as in Kubernetes. A lab has no API server: it gets ``KUBERNETES_SERVICE_*`` only from a Service
``default/kubernetes`` of its own topology. Pure: the topology and its addressing only.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Iterable, Sequence

from netlab.model.topology import Service

API_NAMESPACE, API_NAME = "default", "kubernetes"  # the kubelet's master Service, linked into every pod

Port = tuple[str | None, int, str]  # (name, port, protocol) as the Service lists them


def env_name(name: str) -> str:
    """A Service's or port's name as a variable's: capitals, ``-`` as ``_`` (``redis-master``: REDIS_MASTER)."""
    return name.upper().replace("-", "_")


def service_variables(name: str, cluster_ip: IPv4Address | str, ports: Sequence[Port]) -> list[tuple[str, str]]:
    """The variables of one Service with a ClusterIP and at least one port, in the kubelet's order."""
    if not ports:
        return []
    prefix = env_name(name)
    out = [(f"{prefix}_SERVICE_HOST", str(cluster_ip)), (f"{prefix}_SERVICE_PORT", str(ports[0][1]))]
    out += [(f"{prefix}_SERVICE_PORT_{env_name(pname)}", str(port)) for pname, port, _ in ports if pname]
    for i, (_, port, protocol) in enumerate(ports):
        url = f"{protocol.lower()}://{cluster_ip}:{port}"
        if i == 0:
            out.append((f"{prefix}_PORT", url))  # Docker's special case: the first port alone
        each = f"{prefix}_PORT_{port}_{protocol.upper()}"
        out += [(each, url), (f"{each}_PROTO", protocol.lower()), (f"{each}_PORT", str(port)),
                (f"{each}_ADDR", str(cluster_ip))]
    return out


def linked(services: Iterable[Service], namespace: str, enable_links: bool) -> list[Service]:
    """The Services the kubelet links into a pod of ``namespace``: the API server's ``default/kubernetes`` always
    (unless one of the pod's own namespace has its name: it wins), and, with ``enable_links``, every Service of the
    pod's namespace; headless ones are left out (no ClusterIP). One per name, in the order given."""
    by_name: dict[str, Service] = {}
    for svc in services:
        if svc.headless:
            continue
        if (svc.namespace, svc.name) == (API_NAMESPACE, API_NAME):
            by_name.setdefault(svc.name, svc)
        elif svc.namespace == namespace and enable_links:
            by_name[svc.name] = svc
    return list(by_name.values())


def pod_service_env(services: Iterable[Service], cluster_ips: dict[tuple[str, str], IPv4Address], namespace: str,
                    enable_links: bool = True) -> dict[str, str]:
    """Every Service variable of a container of a pod in ``namespace`` (``cluster_ips``: the addressing's
    ClusterIP of each (namespace, name); a Service without one yet gets none)."""
    out: dict[str, str] = {}
    for svc in linked(services, namespace, enable_links):
        ip = cluster_ips.get((svc.namespace, svc.name))
        if ip is not None:
            out.update(service_variables(svc.name, ip, [(p.name, p.port, p.protocol) for p in svc.ports]))
    return out
