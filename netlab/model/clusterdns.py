"""Cluster DNS: ``<service>.<namespace>.svc.cluster.local`` answers with the ClusterIP.

Like a real cluster's DNS add-on, it is an ordinary pod behind an ordinary
Service, so the path of a query is the Service path of the rest of the lab::

    pod (resolv.conf: nameserver 10.96.0.10, search default.svc.cluster.local ...)
      -> UDP 10.96.0.10:53 -> node: KUBE-SERVICES -> KUBE-SVC-... -> DNAT
      -> pod kube-dns (dnsmasq, on the first node) -> answer, un-DNATed by conntrack

The add-on is added to the topology (:func:`with_cluster_dns`) whenever the
topology has Services and does not bring its own ``kube-dns`` Service:

- pod ``kube-dns`` (label ``k8s-app: kube-dns``) on the first node that has
  room, IP allocated like any pod's; its one container runs dnsmasq from
  Debian with one ``--host-record`` per Service, so the container's command
  changes when the Services change and the containers feature restarts it
  (that also gives ``netlab logs kube-dns``, where ``--log-queries`` shows
  every query);
- Service ``kube-system/kube-dns``, ports 53/UDP and 53/TCP, ClusterIP the
  10th address of the service CIDR (10.96.0.10, as kubeadm picks) unless a
  user's Service holds it explicitly.

Pods find it the way kubelet's ``dnsPolicy: ClusterFirst`` tells them: a
``resolv.conf`` with the ClusterIP and the search domains, written by
:mod:`netlab.services.lifecycle` to ``/etc/netns/<pod namespace>/resolv.conf``,
which ``ip netns exec`` (and netlab's own exec and containers) bind-mount over
``/etc/resolv.conf``.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from netlab.model.addressing import BRIDGE_PORT_LIMIT, Addressing, allocate, pod_capacity
from netlab.model.location import Loc
from netlab.model.topology import Pod, Service, Topology

CLUSTER_DOMAIN = "cluster.local"
DNS_NAME = "kube-dns"
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_CONTAINER = "dnsmasq"
DNS_IP_OFFSET = 10  # kubeadm: the 10th address of the service CIDR
NDOTS = 5


def fqdn(svc: Service) -> str:
    return f"{svc.name}.{svc.namespace}.svc.{CLUSTER_DOMAIN}"


def search_domains(namespace: str = "default") -> list[str]:
    return [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]


def dnsmasq_argv(records: list[tuple[str, IPv4Address]]) -> list[str]:
    """dnsmasq in the foreground, logging to the container log, answering only ``records``.

    No upstream servers (the lab has no real internet); names under
    cluster.local it does not know get NXDOMAIN at once (``--local``).
    """
    argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--log-facility=-", "--log-queries",
            "--no-resolv", "--no-hosts", "--no-poll", "--pid-file=", f"--local=/{CLUSTER_DOMAIN}/",
            "--domain-needed"]
    argv += [f"--host-record={name},{ip}" for name, ip in sorted(records)]
    return argv


def is_dns_service(svc: Service) -> bool:
    return svc.name == DNS_NAME and svc.namespace == DNS_NAMESPACE


def dns_service(topo: Topology) -> Service | None:
    """The cluster DNS Service (added by :func:`with_cluster_dns` or the user's own)."""
    return next((s for s in topo.services if is_dns_service(s)), None)


def needs_cluster_dns(topo: Topology) -> bool:
    """A topology with Services gets the add-on, unless it brings its own ``kube-dns``."""
    if not topo.services or any(s.name == DNS_NAME for s in topo.services):
        return False
    return not any(x.name == DNS_NAME for x in (*topo.nodes, *topo.pods))


def with_cluster_dns(topo: Topology) -> Topology:
    """The topology plus the DNS add-on (pod and Service), when it has Services.

    Pure and idempotent: a topology that already has a ``kube-dns`` Service or
    pod (the user's, or added before) comes back unchanged. A topology where
    the add-on does not fit (no node has room for one more pod, the service
    CIDR is full) is refused by validation (:func:`problems`); here it raises
    ValueError.
    """
    added, _, problems = add_cluster_dns(topo)
    if problems:
        raise ValueError(f"cluster DNS does not fit: {problems[0][1]}")
    return added


def add_cluster_dns(topo: Topology, addressing: Addressing | None = None
                    ) -> tuple[Topology, Addressing | None, list[tuple[Loc, str]]]:
    """(topology with the add-on, its addressing, problems), in time linear in the topology.

    ``addressing``: the topology's own, when the caller has it. The pod goes on
    the first node with room, like a scheduler filling nodes in order; the
    Service gets the 10th address of the service CIDR unless a user's Service
    holds it, then the lowest free one. Everything is decided from one
    allocation, and checked by a second one of the result.
    """
    if not needs_cluster_dns(topo):
        return topo, addressing, []
    if _last and _last[0] is topo:  # validate, then resolve, ask about the same (frozen) topology
        return _last[1]
    result = _add_cluster_dns(topo, addressing)
    _last[:] = [topo, result]
    return result


_last: list = []  # [topology, add_cluster_dns(topology)]: the last answer, for the same object


def _add_cluster_dns(topo: Topology, addressing: Addressing | None
                     ) -> tuple[Topology, Addressing | None, list[tuple[Loc, str]]]:
    if addressing is None:
        addressing, problems = allocate(topo)
        if problems:
            return topo, None, problems
    count: dict[str, int] = {}
    for pod in topo.pods:
        count[pod.node] = count.get(pod.node, 0) + 1
    node = next((n for n in topo.nodes
                 if count.get(n.name, 0) < min(pod_capacity(addressing.node_pod_cidr[n.name]), BRIDGE_PORT_LIMIT)),
                None)
    if node is None:
        return topo, None, [(("pods",), f"no node has room for the cluster DNS pod {DNS_NAME} (added because the "
                                        "topology has Services): every node's pod CIDR or bridge is full; "
                                        "lower cluster.nodeMask or add a node")]
    scidr = topo.cluster.service_cidr
    wanted_ip = scidr.network_address + DNS_IP_OFFSET
    taken = {s.cluster_ip for s in topo.services if s.cluster_ip is not None}
    svc = Service.model_validate({
        "name": DNS_NAME, "namespace": DNS_NAMESPACE, "selector": dict(DNS_LABELS),
        **({"clusterIP": str(wanted_ip)}
           if wanted_ip not in taken and wanted_ip in scidr and scidr.num_addresses > DNS_IP_OFFSET + 1 else {}),
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
    })
    pod_data: dict[str, Any] = {
        "name": DNS_NAME, "namespace": DNS_NAMESPACE, "node": node.name, "labels": dict(DNS_LABELS),
        "containers": [{"name": DNS_CONTAINER, "command": ["dnsmasq"],
                        "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns"},
                                  {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}]}],
    }
    candidate = topo.model_copy(update={"pods": [*topo.pods, Pod.model_validate(pod_data)],
                                        "services": [*topo.services, svc]})
    final, problems = allocate(candidate)
    if problems:
        return topo, None, [(("cluster", "serviceCIDR"),
                             f"cluster.serviceCIDR {scidr} is full: the cluster DNS Service "
                             f"{DNS_NAMESPACE}/{DNS_NAME} (added because the topology has Services) needs one more "
                             "address; widen it")]
    records = [(fqdn(s), final.service_ip[(s.namespace, s.name)]) for s in candidate.services]
    pod_data["containers"][0]["command"] = dnsmasq_argv(records)
    added = topo.model_copy(update={"pods": [*topo.pods, Pod.model_validate(pod_data)],
                                    "services": [*topo.services, svc]})
    return added, final, []


def problems(topo: Topology, addressing: Addressing) -> list[tuple[Loc, str]]:
    """Why the cluster DNS add-on does not fit this (otherwise valid) topology; [] when it does."""
    return add_cluster_dns(topo, addressing)[2]


def resolv_conf(lab_name: str, nameserver: IPv4Address, namespace: str = "default") -> str:
    """What kubelet writes for ``dnsPolicy: ClusterFirst``, with netlab's ownership line."""
    return (f"# netlab {lab_name}: cluster DNS (Service {DNS_NAMESPACE}/{DNS_NAME}), like kubelet's ClusterFirst\n"
            f"search {' '.join(search_domains(namespace))}\n"
            f"nameserver {nameserver}\n"
            f"options ndots:{NDOTS}\n")
