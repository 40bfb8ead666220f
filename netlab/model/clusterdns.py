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

from netlab.model.topology import Service, Topology

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


def with_cluster_dns(topo: Topology) -> Topology:
    """The topology plus the DNS add-on (pod and Service), when it has Services.

    Pure and idempotent: a topology that already has a ``kube-dns`` Service or
    pod (the user's, or added before) comes back unchanged, and so does one
    where no node has room for one more pod.
    """
    from netlab.model.addressing import allocate
    from netlab.model.topology import check_topology

    if not topo.services or any(s.name == DNS_NAME for s in topo.services):
        return topo
    if any(x.name == DNS_NAME for x in (*topo.nodes, *topo.pods)):
        return topo
    base: dict[str, Any] = topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    scidr = topo.cluster.service_cidr
    wanted_ip = scidr.network_address + DNS_IP_OFFSET
    taken = {s.cluster_ip for s in topo.services if s.cluster_ip is not None}
    svc: dict[str, Any] = {
        "name": DNS_NAME, "namespace": DNS_NAMESPACE, "selector": dict(DNS_LABELS),
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
    }
    if wanted_ip not in taken and wanted_ip in scidr and scidr.num_addresses > DNS_IP_OFFSET + 1:
        svc["clusterIP"] = str(wanted_ip)
    for node in topo.nodes:
        pod: dict[str, Any] = {
            "name": DNS_NAME, "node": node.name, "labels": dict(DNS_LABELS),
            "containers": [{"name": DNS_CONTAINER, "command": ["dnsmasq"],
                            "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns"},
                                      {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}]}],
        }
        data = dict(base, pods=list(base.get("pods", [])) + [pod], services=list(base["services"]) + [svc])
        candidate = Topology.model_validate(data)
        if check_topology(candidate):
            continue  # this node is full (or the CIDRs are): try the next one
        addressing, _ = allocate(candidate)
        records = [(fqdn(s), addressing.service_ip[s.name]) for s in candidate.services]
        pod["containers"][0]["command"] = dnsmasq_argv(records)
        return Topology.model_validate(data)
    return topo


def resolv_conf(lab_name: str, nameserver: IPv4Address, namespace: str = "default") -> str:
    """What kubelet writes for ``dnsPolicy: ClusterFirst``, with netlab's ownership line."""
    return (f"# netlab {lab_name}: cluster DNS (Service {DNS_NAMESPACE}/{DNS_NAME}), like kubelet's ClusterFirst\n"
            f"search {' '.join(search_domains(namespace))}\n"
            f"nameserver {nameserver}\n"
            f"options ndots:{NDOTS}\n")
