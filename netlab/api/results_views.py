"""What a lab holds, as ``get`` and ``inspect`` give it (netlab.api.results says what they are)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContainerPortInfo:
    """A port a container listens on, as a Service's port is given (``ServicePortInfo``): its name where the
    topology names it (a containerPort's name; None for the echo server's default 8080 and a TCP port's UDP
    twin, which listen undeclared), the number and the protocol."""

    name: str | None
    container_port: int
    protocol: str  # TCP | UDP


RUN_CONTAINER_ERROR = "RunContainerError"  # the kubelet's ErrRunContainer: a start failed, the next sync retries


def waiting_of(restart_policy: str, start_error: str | None) -> tuple[str | None, str | None]:
    """The kubelet's waiting state of a container whose command could not be started (``start_error``): one its
    pod's restartPolicy starts again (Always, OnFailure: a start that failed is a failure) waits, reason
    RunContainerError with the start's error as its message; a Never pod's stays terminated (StartError) and
    waits for nothing: (None, None), as for any container that started."""
    if start_error is None or restart_policy == "Never":
        return None, None
    return RUN_CONTAINER_ERROR, start_error


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    state: str  # running | stopped | exited | not started | failed
    # A command container's process; an echo container's thread in the lab's one echo process (a signal sent to
    # it, kill -9 included, reaches that whole process: every echo container of the lab).
    pid: int | None
    command: tuple[str, ...] | None  # None: netlab's echo server
    ports: tuple[ContainerPortInfo, ...]  # what listens: {"name", "container_port": 8080, "protocol": "TCP"}
    exit_code: int | None = None  # exited: its code (128 + signal when killed), when the kernel kept it
    restarts: int = 0  # how often up (or up --watch) started it again; a changed command is a new one, from 0
    # How the run before this one exited, where known: the kubelet's lastState.terminated.exitCode. exit_code is
    # this run's (its state.terminated.exitCode), None while it runs; neither is ever another run's.
    last_exit_code: int | None = None
    # Exited (or could not start) and held back by ``up --watch``'s back-off: the kubelet's state.waiting, reason
    # CrashLoopBackOff and message "back-off 10s restarting failed container=main pod=crash_default", and when
    # the back-off ends (RFC 3339 UTC, to the millisecond); None otherwise, and once no watcher holds it.
    # A command that could not start, where its pod's restartPolicy restarts it (Always, OnFailure): the kubelet's
    # state.waiting, reason RunContainerError and the runtime's error as the message (:func:`waiting_of`).
    waiting_reason: str | None = None
    waiting_message: str | None = None
    back_off_until: str | None = None
    # failed: why its command could not be started, as `up` said it (state.terminated.message of StartError in
    # Kubernetes), whatever the restartPolicy; None otherwise
    start_error: str | None = None

    @property
    def reason(self) -> str | None:
        """The kubelet's reason for a container that does not run, as kubectl's STATUS shows it (None: it runs,
        or is stopped by SIGSTOP, which the kubelet would see as running, not ready): CrashLoopBackOff (the
        watcher holds it back until its back-off ends), ContainerCreating (not started yet), RunContainerError (its
        command could not be started and its restartPolicy starts it again: the kubelet's waiting reason),
        StartError (its command could not be started, a Never pod's: containerd's word), Completed (exit 0),
        Error (any other code), ContainerStatusUnknown (it exited, how nobody knows: a kernel before 6.15 that
        keeps no exit status, or an echo container whose server is gone; one the server stopped serving is Error,
        code 143, as a container the kubelet stops with SIGTERM)."""
        if self.waiting_reason is not None and self.state != "running":
            return self.waiting_reason
        if self.state == "not started":
            return "ContainerCreating"
        if self.state == "failed":
            return "StartError"
        if self.state != "exited":
            return None
        if self.exit_code is None:
            return "ContainerStatusUnknown"
        return "Completed" if self.exit_code == 0 else "Error"


@dataclass(frozen=True)
class PodInfo:
    """A pod (``netlab get pods -o json``)."""

    name: str
    node: str
    ip: str
    netns: str | None  # None: a terminal pod whose network namespace up removed with its stopped sandbox
    mac: str
    labels: Mapping[str, str]
    containers: tuple[ContainerInfo, ...]
    added: bool = False  # made by netlab, not in the topology (the cluster DNS pod kube-dns)
    namespace: str = "default"  # the pod's Kubernetes namespace (netns is its network namespace)
    created: str | None = None  # when up first made it (UTC, RFC 3339: creationTimestamp; a new sandbox keeps it)
    # Its network namespace, the pod's sandbox, was deleted under it (``ip netns del``), maybe made again:
    # its containers run on, if they do, in the old one; ``get pods`` says SandboxChanged and READY 0/N, ``up``
    # remakes it.
    netns_gone: bool = False
    # It has no network from its CNI plugins (realize.attachments.detached): never attached (an `up` stopped before
    # its ADD: no record, or "adding"), its re-attach was cut short between its DEL and its ADD (the record's phase
    # "detaching"), or it was left detached by a re-attach whose ADD failed, and then the ADD with the config it had
    # ("deleted"): no eth0, no address (ip is "", as a pod's status.podIP is
    # empty while its sandbox has no network); ``get pods`` says ContainerCreating and READY 0/N (no container of a
    # pod without its network is ready, whatever runs), as kubectl says a pod whose sandbox's network is being set
    # up, and ``up`` ADDs it.
    network_detached: bool = False
    hostname: str | None = None  # spec.hostname, when the topology gives one (`hostname` in the pod prints it)
    subdomain: str | None = None  # spec.subdomain: with hostname, its name under the Service of that name
    __json_properties__ = ("ready", "status", "restarts")  # get pods' READY, STATUS and RESTARTS, in -o json too

    @property
    def ready(self) -> str:
        """Running containers out of all, as kubectl's READY column: ``1/1``; none of a pod with no network from
        its CNI plugins (``network_detached``: ``0/1``, whatever runs in it, as its status says ContainerCreating),
        nor of one whose sandbox is gone (``netns_gone``: SandboxChanged, its containers running on in the old
        namespace are not ready until ``up`` makes it again, as the kubelet's are not)."""
        running = 0 if self.network_detached or self.netns_gone else sum(c.state == 'running' for c in self.containers)
        return f"{running}/{len(self.containers)}"

    @property
    def restarts(self) -> int:
        """Its containers' restarts, together, as kubectl's RESTARTS column."""
        return sum(c.restarts for c in self.containers)

    @property
    def status(self) -> str:
        """kubectl's STATUS, as its printer works it out: the reason of the first container (in the pod's
        order) that does not run (ContainerInfo.reason: CrashLoopBackOff, Error, StartError, ContainerCreating,
        ContainerStatusUnknown), else Running. Completed only when every container that does not run
        completed (kubectl's printer would say Completed for a first container that did, beside one in Error:
        the failure is said here); beside a container that still runs it is NotReady (the pod is not Ready: a
        Job's main container done, its sidecar running). A pod whose network namespace was
        deleted under it is SandboxChanged, whatever its containers do: the kubelet's reason when a pod's
        sandbox dies ("Pod sandbox changed, it will be killed and re-created"), which ``up`` does. The
        containers' own states are in -o wide's CONTAINERS (and -o json's containers). A pod with no network
        from its CNI plugins (network_detached: no eth0, no IP) is ContainerCreating, whatever its containers
        do: kubectl's STATUS for a pod whose sandbox's network the CNI has not (yet) set up, which ``up`` does."""
        if self.netns_gone:
            return "SandboxChanged"
        if self.network_detached:
            return "ContainerCreating"
        reasons = [r for r in (c.reason for c in self.containers) if r is not None]
        if not reasons:
            return "Running"
        failing = next((r for r in reasons if r != "Completed"), None)  # before a Completed one, unlike kubectl
        if failing is not None:
            return failing
        return "NotReady" if any(c.state == "running" for c in self.containers) else "Completed"


@dataclass(frozen=True)
class NodeInfo:
    """A node (``netlab get nodes -o json``)."""

    name: str
    ip: str
    pod_cidr: str
    netns: str
    cni0: str | None  # the pods' gateway: cni0's address; None: no cni0 yet (no pod: the bridge plugin makes it)
    vtep: str | None  # flannel.1's address in vxlan mode
    pods: tuple[str, ...]
    created: str | None = None  # when its network namespace was made (UTC, RFC 3339: creationTimestamp)


@dataclass(frozen=True)
class EndpointInfo:
    """One endpoint of a Service port: a pod its selector matches, at the port the traffic is DNATed to.
    What an EndpointSlice's endpoint says (its targetRef's name, nodeName, addresses) with the port."""

    pod: str
    node: str
    ip: str
    port: int  # the target port, on the pod's IP


@dataclass(frozen=True)
class ServicePortInfo:
    name: str | None
    port: int
    target_port: int | str  # a number, or a container port's name (each endpoint's port is its number)
    protocol: str
    node_port: int | None
    endpoints: tuple[EndpointInfo, ...]  # in kube-proxy's order ("IP:port" strings)


@dataclass(frozen=True)
class ServiceInfo:
    """A Service (``netlab get services -o json``)."""

    name: str
    namespace: str
    type: str
    cluster_ip: str
    external_ip: str | None
    session_affinity: str
    selector: Mapping[str, str]
    ports: tuple[ServicePortInfo, ...]
    dns: str  # <name>.<namespace>.svc.cluster.local
    added: bool = False  # made by netlab (the cluster DNS Service kube-system/kube-dns)
    # NodePort and LoadBalancer: Cluster or Local (None for a ClusterIP Service, as the API server leaves it)
    external_traffic_policy: str | None = None
    health_check_node_port: int | None = None  # LoadBalancer with externalTrafficPolicy Local
    internal_traffic_policy: str = "Cluster"  # Local: the ClusterIP goes to the client's node's endpoints only
    # a headless Service without ports: its endpoints' addresses, of no port (the pods it selects)
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class NftTableInfo:
    """One nftables table of the lab in a namespace, as ``netlab inspect`` shows it (kube-proxy's ``ip
    kube-proxy`` on a node in nftables mode)."""

    family: str  # ip
    name: str  # kube-proxy
    listing: tuple[str, ...]  # `nft list table FAMILY NAME`, line by line as nft prints it (counters in place)
    # From `nft -j list table`, in the kernel's order. A chain: name, and for a base chain type, hook,
    # priority, policy (else None); rules: [{rule, packets, bytes}], the rule in kube-proxy's words (as
    # `netlab status` and `netlab plan` print it), packets/bytes of its `counter` (None: the rule has none,
    # as no rule kube-proxy writes does).
    chains: tuple[Mapping[str, Any], ...]
    # Sets and maps: name, kind (set | map), type ("ipv4_addr . inet_proto . inet_service : verdict"),
    # flags, timeout (seconds or None), elements ("10.96.0.20 . tcp . 80 : goto service-...").
    sets: tuple[Mapping[str, Any], ...]

    def chain(self, name: str) -> Mapping[str, Any] | None:
        """The chain of that name, or None."""
        return next((c for c in self.chains if c["name"] == name), None)

    def elements(self, name: str) -> tuple[str, ...]:
        """The elements of the set or map of that name (none when there is no such set)."""
        return next((tuple(s["elements"]) for s in self.sets if s["name"] == name), ())


@dataclass(frozen=True)
class Inspection:
    """What ``netlab inspect -o json`` shows for one namespace; sections not asked for (or that do not apply: ``cni``
    of a pod the builtin wiring made, ``unreadable`` when every section was read) are None, and left out of the
    JSON, as the CLI leaves them out."""

    __json_omit_none__ = True

    lab: str
    name: str
    netns: str
    what: str
    links: tuple[Mapping[str, Any], ...] | None = None
    addresses: tuple[Mapping[str, Any], ...] | None = None
    # the main table (`ip -j route`'s words): dst, gateway, dev, prefsrc, protocol (the route's origin; proto beside
    # it, deprecated), scope, type, onlink, text
    routes: tuple[Mapping[str, Any], ...] | None = None
    neighbours: tuple[Mapping[str, Any], ...] | None = None
    fdb: tuple[Mapping[str, Any], ...] | None = None
    bridge_ports: tuple[Mapping[str, Any], ...] | None = None
    # TCP's listening sockets and UDP's bound ones (`ss -ltun`): protocol (proto beside it, deprecated), state,
    # address, port, text
    sockets: tuple[Mapping[str, Any], ...] | None = None
    sysctls: Mapping[str, str | None] | None = None
    iptables: Mapping[str, tuple[str, ...]] | None = None
    # the lab's nftables tables here, keyed "ip kube-proxy"; {}: none (iptables mode, a pod)
    nftables: Mapping[str, NftTableInfo] | None = None
    conntrack: Mapping[str, Any] | None = None
    # a node's Flannel files, or a pod's /etc/resolv.conf and /etc/hosts as it sees them: path -> kept, content
    files: Mapping[str, Mapping[str, str | None]] | None = None
    cni: Mapping[str, Any] | None = None  # a CNI pod's cached result (network.cni: reference or a conflist)
    # sections asked for that the tools could not read (iptables, nftables), with why; they are empty
    unreadable: Mapping[str, str] | None = None
