"""Cluster DNS: the names a kubeadm or minikube cluster's CoreDNS answers, from dnsmasq.

Like a real cluster's DNS add-on, it is an ordinary pod behind an ordinary
Service, so the path of a query is the Service path of the rest of the lab::

    pod (resolv.conf: nameserver 10.96.0.10, search default.svc.cluster.local ...)
      -> UDP 10.96.0.10:53 -> node: KUBE-SERVICES -> KUBE-SVC-... -> DNAT
      -> pod kube-dns (dnsmasq, on the first node) -> answer, un-DNATed by conntrack

The add-on is added to the topology (:func:`with_cluster_dns`) whenever the
topology has Services and does not bring its own ``kube-system/kube-dns``
Service (Services are namespaced, as in Kubernetes: a user's ``default/kube-dns``
is another object, with a ClusterIP of its own beside the add-on's). It is:

- pod ``kube-dns`` (label ``k8s-app: kube-dns``) on the first node that has
  room, IP allocated like any pod's; its one container runs dnsmasq from
  Debian. Its A and PTR records (Services' ClusterIPs, endpoints, headless
  Services' addresses: what changes when a pod comes or goes) are in a hosts
  file of the lab's state directory (dnsrecords.hosts_file; netlab.workload.dns_records
  writes it, and ``up`` has dnsmasq read it again with SIGHUP, as CoreDNS's
  kubernetes plugin follows the API server without a restart); the records
  dnsmasq takes only on its command line (SRV, the namespaces' pod names, the
  reverse zones) are there (dnsrecords.dnsmasq_argv), so a change of those
  restarts it, and ``get pods`` counts that restart
  (that also gives ``netlab logs kube-dns``, where ``--log-queries`` shows
  every query, ``auth[A] web.default.svc.cluster.local from 10.244.0.3``;
  every probe asks it, so its log starts over past 10 MiB as every
  container's does, kept by the lab's server);
- Service ``kube-system/kube-dns``, ports 53/UDP and 53/TCP, ClusterIP the
  10th address of the service CIDR (10.96.0.10, as kubeadm picks). A cluster
  made it before any user's Service, so a user's Service that asks for that
  address is refused, as the API server refuses it ("provided IP is already
  allocated"); one without ``clusterIP`` gets the next free one. A service
  CIDR too small to have a 10th address gives it the lowest free one.

A node, pod or internet host named ``kube-dns`` would be the add-on pod's
network namespace ``<lab>-kube-dns`` (they share namespace names): refused,
when the add-on is added.

What it answers, as CoreDNS answers it, and how dnsmasq is told to: :mod:`netlab.model.dnsrecords`.

Pods find it the way kubelet's ``dnsPolicy: ClusterFirst`` tells them: a
``resolv.conf`` with the ClusterIP and the search domains, written by
:mod:`netlab.services.lifecycle` to ``/etc/netns/<pod namespace>/resolv.conf``,
which ``ip netns exec`` (and netlab's own exec and containers) bind-mount over
``/etc/resolv.conf``.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from netlab.model.addressing import BRIDGE_PORT_LIMIT, Addressing, Held, allocate, pod_capacity
from netlab.model.dnsrecords import DNS_NAME as DNS_NAME
from netlab.model.dnsrecords import DNS_NAMESPACE as DNS_NAMESPACE
from netlab.model.dnsrecords import NETLAB_DNSMASQ, cluster_records, dnsmasq_argv
from netlab.model.location import Loc
from netlab.model.naming import CLUSTER_DOMAIN as CLUSTER_DOMAIN
from netlab.model.naming import pod_file_marker
from netlab.model.topology import Pod, Service, Topology

DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_CONTAINER = "dnsmasq"
DNS_IP_OFFSET = 10  # kubeadm: the 10th address of the service CIDR
NDOTS = 5


def fqdn(svc: Service) -> str:
    return f"{svc.name}.{svc.namespace}.svc.{CLUSTER_DOMAIN}"


def search_domains(namespace: str = "default") -> list[str]:
    return [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]


def is_dns_service(svc: Service) -> bool:
    return svc.name == DNS_NAME and svc.namespace == DNS_NAMESPACE


def is_dns_pod(pod: Pod) -> bool:
    """The add-on's pod: kube-system/kube-dns, by namespace and name. Not by its labels: any pod may carry
    k8s-app: kube-dns (only one of kube-system would be an endpoint of the DNS Service)."""
    return pod.name == DNS_NAME and pod.namespace == DNS_NAMESPACE


def is_addon_pod(pod: Pod) -> bool:
    """The add-on's own pod, as :func:`add_cluster_dns` makes it: kube-system/kube-dns, labelled
    ``k8s-app: kube-dns``, its one container running netlab's dnsmasq (a user's own DNS pod is not)."""
    return (is_dns_pod(pod) and dict(pod.labels) == DNS_LABELS and len(pod.containers) == 1
            and pod.containers[0].name == DNS_CONTAINER and (pod.containers[0].command or [""])[0] == "dnsmasq")


def dns_service(topo: Topology) -> Service | None:
    """The cluster DNS Service (added by :func:`with_cluster_dns` or the user's own)."""
    return next((s for s in topo.services if is_dns_service(s)), None)


def needs_cluster_dns(topo: Topology) -> bool:
    """A topology with Services gets the add-on, unless it brings its own ``kube-system/kube-dns`` Service.

    Only that Service replaces it: a ``kube-dns`` Service of another namespace
    (``default/kube-dns``) is a user's Service like any other, and a pod or node
    of that name is refused (:func:`_name_taken`), not taken for the add-on.
    """
    return bool(topo.services) and dns_service(topo) is None


def _name_taken(topo: Topology) -> list[tuple[Loc, str]]:
    """The add-on's pod is the network namespace ``<lab>-kube-dns``: a node, pod or internet host of that name
    (nodes, pods and hosts share namespace names) would be the same namespace."""
    things: list[tuple[Loc, str, str]] = [(("nodes", i, "name"), "node", n.name) for i, n in enumerate(topo.nodes)]
    things += [(("pods", i, "name"), "pod", p.name) for i, p in enumerate(topo.pods)]
    if topo.internet:
        things += [(("internet", "hosts", i, "name"), "internet host", h.name)
                   for i, h in enumerate(topo.internet.hosts)]
    return [(loc, f"{DNS_NAME!r} is the name of the cluster DNS pod netlab adds to a lab with Services (nodes, "
                  "pods and internet hosts share namespace names); rename this "
                  f"{what}, or declare your own Service {DNS_NAMESPACE}/{DNS_NAME}")
            for loc, what, name in things if name == DNS_NAME]


def with_cluster_dns(topo: Topology) -> Topology:
    """The topology plus the DNS add-on (pod and Service), when it has Services.

    Pure and idempotent: a topology that already has a ``kube-system/kube-dns``
    Service (the user's, or added before) comes back unchanged. A topology
    where the add-on does not fit (no node has room for one more pod, the
    service CIDR is full, a node, pod or internet host is named ``kube-dns``)
    is refused by validation (:func:`problems`); here it raises ValueError.
    """
    added, _, problems = add_cluster_dns(topo)
    if problems:
        raise ValueError(f"cluster DNS does not fit: {problems[0][1]}")
    return added


def add_cluster_dns(topo: Topology, addressing: Addressing | None = None, held: Held | None = None
                    ) -> tuple[Topology, Addressing | None, list[tuple[Loc, str]]]:
    """(topology with the add-on, its addressing, problems), in time linear in the topology.

    ``addressing``: the topology's own, when the caller has it. The pod goes on
    the first node with room, like a scheduler filling nodes in order (in a running lab: the node it runs on,
    while that has room); the Service gets the 10th address of the service CIDR (a user's Service that asks
    for it is refused), or in a CIDR too small for that the lowest free one. Everything is decided from one
    allocation, and checked by a second one of the result, which keeps what a running lab's pods and
    Services hold (``held``: the add-on's own pod and Service too), so its records are that lab's addresses.
    """
    if not needs_cluster_dns(topo):
        return topo, addressing, []
    if _last and _last[0] is topo and _last[1] == held:  # validate, then resolve, ask about the same (frozen) one
        return _last[2]
    result = _add_cluster_dns(topo, addressing, held)
    _last[:] = [topo, held, result]
    return result


_last: list = []  # [topology, held, add_cluster_dns(topology, held=held)]: the last answer, for the same object


def _add_cluster_dns(topo: Topology, addressing: Addressing | None, held: Held | None
                     ) -> tuple[Topology, Addressing | None, list[tuple[Loc, str]]]:
    taken_name = _name_taken(topo)
    if taken_name:
        return topo, None, taken_name
    if addressing is None:
        addressing, problems = allocate(topo)
        if problems:
            return topo, None, problems
    count: dict[str, int] = {}
    for pod in topo.pods:
        count[pod.node] = count.get(pod.node, 0) + 1
    room = [n for n in topo.nodes
            if count.get(n.name, 0) < min(pod_capacity(addressing.node_pod_cidr[n.name]), BRIDGE_PORT_LIMIT)]
    was = held.pods.get(DNS_NAME) if held is not None else None
    # A running cluster DNS pod stays on its node (Kubernetes never moves a pod), while it has room there.
    node = next((n for n in room if was is not None and (was.namespace, was.node) == (DNS_NAMESPACE, n.name)),
                room[0] if room else None)
    if node is None:
        return topo, None, [(("pods",), f"no node has room for the cluster DNS pod {DNS_NAME} (added because the "
                                        "topology has Services): every node's pod CIDR or bridge is full; "
                                        "lower cluster.nodeMask or add a node")]
    scidr = topo.cluster.service_cidr
    wanted_ip = scidr.network_address + DNS_IP_OFFSET
    taken = {s.cluster_ip for s in topo.services if isinstance(s.cluster_ip, IPv4Address)}
    if wanted_ip in taken and scidr.num_addresses > DNS_IP_OFFSET + 1:
        # A cluster made the DNS Service with this address before any user's Service; asking for it later is
        # refused by the API server's allocator ("provided IP is already allocated").
        i = next(i for i, s in enumerate(topo.services) if s.cluster_ip == wanted_ip)
        return topo, None, [(("services", i, "clusterIP"),
                             f"{wanted_ip} is allocated to the cluster DNS Service {DNS_NAMESPACE}/{DNS_NAME}, which "
                             "netlab adds to a lab with Services at the service CIDR's 10th address, as kubeadm does "
                             "(a cluster refuses it: provided IP is already allocated); pick another or leave "
                             f"clusterIP out, or declare your own Service {DNS_NAMESPACE}/{DNS_NAME}")]
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
    final, problems = allocate(candidate, held)
    if problems:
        return topo, None, [(("cluster", "serviceCIDR"),
                             f"cluster.serviceCIDR {scidr} is full: the cluster DNS Service "
                             f"{DNS_NAMESPACE}/{DNS_NAME} (added because the topology has Services) needs one more "
                             "address; widen it")]
    pod_data["containers"][0]["command"] = dnsmasq_argv(cluster_records(candidate, final))
    added = topo.model_copy(update={"pods": [*topo.pods, Pod.model_validate(pod_data)],
                                    "services": [*topo.services, svc]})
    return added, final, []


def with_dns_records(topo: Topology, addressing: Addressing, terminal: frozenset[str]) -> Topology:
    """The topology whose cluster DNS add-on answers without the ``terminal`` pods (its dnsmasq's SRV records
    are on its command line); one without the add-on comes back as it is."""
    i = next((i for i, p in enumerate(topo.pods) if is_addon_pod(p)), None)
    if i is None:
        return topo
    pod = topo.pods[i]
    argv = dnsmasq_argv(cluster_records(topo, addressing, terminal))
    pod = pod.model_copy(update={"containers": [pod.containers[0].model_copy(update={"command": argv}),
                                                *pod.containers[1:]]})
    return topo.model_copy(update={"pods": [*topo.pods[:i], pod, *topo.pods[i + 1:]]})


def renewed_addon(topo: Topology, held: Held | None) -> Topology:
    """A running lab's saved topology with its add-on's dnsmasq on the command this netlab gives it, as the lab's
    file resolves (an upgrade's new command is the lab's to converge to, not the release's that saved it)."""
    pod = next((p for p in topo.pods if is_addon_pod(p)), None)
    if pod is None or tuple((pod.containers[0].command or [])[:len(NETLAB_DNSMASQ)]) != NETLAB_DNSMASQ:
        return topo  # no add-on, or a dnsmasq of the user's own
    addressing, problems = allocate(topo, held)
    return topo if problems else with_dns_records(topo, addressing, frozenset())


def problems(topo: Topology, addressing: Addressing) -> list[tuple[Loc, str]]:
    """Why the cluster DNS add-on does not fit this (otherwise valid) topology; [] when it does."""
    return add_cluster_dns(topo, addressing)[2]


def resolv_conf(lab_name: str, nameserver: IPv4Address, namespace: str = "default") -> str:
    """What kubelet writes for ``dnsPolicy: ClusterFirst``, with netlab's ownership line."""
    return (f"{pod_file_marker(lab_name)} cluster DNS (Service {DNS_NAMESPACE}/{DNS_NAME}), like kubelet's "
            "ClusterFirst\n"
            f"search {' '.join(search_domains(namespace))}\n"
            f"nameserver {nameserver}\n"
            f"options ndots:{NDOTS}\n")
