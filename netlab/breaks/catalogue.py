"""The catalogue of faults ``netlab break`` makes: each one real, each one a day someone lost.

A :class:`Scenario` is data: what it breaks (one line), the kernel change,
the symptom ``probe`` shows, the hop and fact ``trace`` names, and the fix.
Most apply to the built-in default lab (two nodes, four pods); those about
Services need a lab with Services (``topologies/services.yaml``), and
``break`` refuses them (exit 2) on a lab where they would change nothing.

The catalogue is plain data and pure functions of the lab's model, so other
parts (a quiz, a watching controller that heals a break, the tests) import
it without touching the kernel::

    from netlab.breaks import catalogue
    for s in catalogue.SCENARIOS: print(s.name, s.breaks)

The symptom and the trace expectation are also functions of the lab and the
target (:func:`expected_failures`, :func:`trace_check`), so a test can check
that exactly the predicted flows fail and that trace blames the predicted hop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `netlab break --help` lists the scenarios without loading the topology's models
    from netlab.model.lab import Lab, NodeInfo, PodInfo

NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")  # lowercase words joined by "-"
SERVICES_EXAMPLE = "topologies/services.yaml"
NETPOL_EXAMPLE = "topologies/netpol-3x3.yaml"


@dataclass(frozen=True)
class Scenario:
    name: str  # lowercase words joined by "-"
    breaks: str  # one line: what it breaks
    target: str  # "node" or "pod": what --target names
    change: str  # the kernel change, and the command a person would type to make it
    symptom: str  # which flows probe shows failing
    hop: str  # where trace must blame it ("node", "pod", "peer node", "the client's node" ...)
    fact: str  # what trace must say there
    fix: str  # how to put it right by hand (`netlab up` does it too)
    needs: tuple[str, ...] = ()  # what a lab must have for it to change something: keys of NEEDS
    example: str = ""  # the topology it needs ("" = the built-in default lab)
    probe: tuple[str, ...] = ()  # options probe needs to see it (e.g. "--mtu": full-size echoes)
    lesson: str = ""  # why this one costs people a day
    trace: str = ""  # the trace's SRC DST and options that show it, {target} the broken one ("": any failing flow)
    # Its change stops a pod's containers: which of the lab's processes run there is read from their namespaces,
    # which root may read only with CAP_SYS_PTRACE (`break` refuses it without, as `up` does); the others' changes
    # are the kernel's objects alone (netlink, a sysctl, a rule table, a conntrack entry)
    processes: bool = False

    def needs_words(self) -> str:
        """What a lab needs for it, in words ("" for any lab): ``break --list`` prints them, and ``break``
        refuses a lab without them (:func:`why_not`), both from ``needs``."""
        return ", ".join(NEEDS[n] for n in self.needs)

    def to_json(self) -> dict:
        return {"name": self.name, "breaks": self.breaks, "target": self.target, "needs": list(self.needs),
                "needs_words": self.needs_words(),
                "example": self.example or "built-in default lab", "change": self.change,
                "symptom": self.symptom, "probe": " ".join(("netlab probe",) + self.probe),
                "trace": {"hop": self.hop, "fact": self.fact}, "fix": self.fix,
                "lesson": self.lesson}


# What a scenario can need of a lab (Scenario.needs), in the words `break --list` says it; why_not checks each.
NEEDS = {
    "vxlan": "a VXLAN overlay",
    "two-nodes": "two nodes",
    "services": "a Service with endpoints",
    "kube-proxy-iptables": "kube-proxy in iptables mode",
    "dns": "the cluster DNS",
    "endpoints": "a Service endpoint pod",
    "service-client": "a node with a pod that is not DNS",
    "dns-client": "a pod that is no endpoint and may query DNS",
    "bridged-pair": "a node with the DNS pod and a client of it, or two pods a NetworkPolicy keeps apart, on a bridge "
                    "of the node (not ptp's routed veths)",
    "planned-bridge": "pods on a bridge netlab plans (not a conflist's)",
}

S = Scenario
SCENARIOS: tuple[Scenario, ...] = (
    S("vxlan-arp-missing",
      "the ARP entry for a remote node's VTEP is missing on flannel.N",
      target="node", needs=("vxlan", "two-nodes"),
      change="delete the PERMANENT neighbour <peer VTEP IP> on flannel.N of the node "
             "(ip -n <node> neigh del 10.244.1.0 dev flannel.N)",
      symptom="every flow between the node's pods (and the node) and the peer node's pods fails, both ways; "
              "same-node flows pass",
      hop="node", fact="no ARP entry for the peer's VTEP address on flannel.N (Flannel adds it; nolearning: "
                       "nothing will answer an ARP request there)",
      fix="ip -n <node> neigh replace <peer VTEP IP> lladdr <peer VTEP MAC> dev flannel.N nud permanent; "
          "or sudo netlab up",
      lesson="flanneld writes these entries from the node's annotations; a restarted flanneld that cannot "
             "read them leaves cross-node traffic dead while everything local works"),
    S("vxlan-fdb-wrong-vtep",
      "the FDB entry for a remote node's VTEP MAC points at the wrong VTEP IP",
      target="node", needs=("vxlan", "two-nodes"),
      change="replace the FDB entry <peer VTEP MAC> dst <peer IP> on flannel.N with dst <an unused underlay IP> "
             "(bridge fdb del ...; bridge fdb replace <mac> dev flannel.N dst 192.168.122.254)",
      symptom="every flow between the node's pods (and the node) and the peer node's pods fails, both ways",
      hop="node", fact="the FDB entry sends the frame to a remote VTEP that is no node of the lab",
      fix="bridge -n <node> fdb replace <peer VTEP MAC> dev flannel.N dst <peer IP> self permanent; or sudo netlab up",
      lesson="a node that changed its IP (a DHCP renewal, a rebuilt VM) but kept its name leaves stale VTEPs "
             "in every other node"),
    S("pod-mtu-too-big",
      "the pods' MTU is bigger than the overlay carries: small packets pass, full-size ones vanish",
      target="node", needs=("vxlan", "two-nodes"), probe=("--mtu",),
      change="lower the MTU of the node's port on the underlay switch by 50 "
             "(ip -n <lab>-underlay link set <port> mtu 1450): the overlay now carries 1400, the pods send 1450",
      symptom="probe --mtu: full-size (DF, the pod's MTU) pings between the node's pods and the other nodes' "
              "pods are lost both ways, and from the node to the other nodes' pods and from the other nodes to "
              "the node's pods; every small probe passes",
      hop="node", fact="trace --size 1422: the encapsulated packet (1500 bytes) is bigger than the MTU of the "
                       "node's port on the underlay (1450), which drops it without an ICMP",
      fix="give the underlay port its MTU back (or lower the pods' MTU to underlay - 50); or sudo netlab up",
      lesson="ping works, curl of a big page hangs: the MTU black hole of every overlay on a smaller underlay "
             "(OpenStack, some clouds' 1460)"),
    S("ip-forward-off",
      "net.ipv4.ip_forward is 0 on a node: it stops routing for its pods",
      target="node", needs=("two-nodes",),
      change="sysctl -w net.ipv4.ip_forward=0 in the node's namespace",
      symptom="every flow the node would forward fails, not only the one a trace shows: every flow between the "
              "node's pods and other nodes' pods, from other nodes to the node's pods, every ClusterIP flow "
              "from the node's pods, whichever endpoint (the node DNATs it, then routes it, even to a pod on its "
              "own bridge), its pods' egress to internet hosts, and every NodePort or LoadBalancer flow from "
              "outside that comes in on the node; pod-to-pod traffic on the bridge (to a pod's IP) and the node "
              "to its own pods pass",
      hop="node", fact="net.ipv4.ip_forward = 0: the node does not forward",
      fix="sysctl -w net.ipv4.ip_forward=1 in the node; or sudo netlab up",
      lesson="a hardening script or a reboot without the sysctl.d file; kubeadm's preflight checks it for this"),
    S("rp-filter-strict",
      "strict rp_filter on a node that a peer reaches by an asymmetric path (direct routing one way only)",
      target="node", needs=("vxlan", "two-nodes"),
      change="the peer routes the node's pod CIDR straight over the underlay (Flannel's DirectRouting on one "
             "node only) while the node routes back through flannel.N, and the node sets "
             "net.ipv4.conf.all.rp_filter=1",
      symptom="every flow between the node's pods and the peer's pods fails both ways, and the node's own "
              "flows to the peer's pods; the peer node still reaches the node's pods, but from its eth0 address "
              "(not its flannel.N one), a source outside the pod network that the peer's Flannel masquerades "
              "(FLANNEL-POSTRTG: MASQUERADE --random-fully, which rewrites the source port), so its TCP and UDP "
              "probes fail the no-NAT check (source port translated), and its own NodePorts reach the node's pods "
              "masqueraded to that eth0 address, not its flannel.N one",
      hop="node", fact="strict rp_filter: the route back to the source leaves by another interface than the "
                       "packet came in on",
      fix="sysctl -w net.ipv4.conf.all.rp_filter=0 (or 2, loose) on the node, and make the paths symmetric; "
          "or sudo netlab up",
      lesson="the default of many distributions is strict (1); asymmetric paths appear with a second NIC, "
             "DirectRouting on some nodes, or a policy route"),
    S("pod-cidr-route-missing",
      "the node's route to a remote node's pod CIDR is missing",
      target="node", needs=("two-nodes",),
      change="delete the node's route to the peer's pod CIDR (VXLAN: <peer pod CIDR> via <peer VTEP> dev "
             "flannel.N onlink; host-gw: <peer pod CIDR> via <peer node IP> dev eth0) "
             "(ip -n <node> route del 10.244.1.0/24)",
      symptom="every flow from the node's pods (and the node) to the peer's pods fails, and the replies to "
              "the peer's pods' requests: so every flow between the two, both ways",
      hop="the nodes' gateway: the underlay's (the internet's in a lab with an internet: section)",
      fact="lost there, as the gateway routes nothing to pods; it came there because the node has no route to the "
           "peer's pod CIDR: its default route sent it out of eth0 (that row names the missing route)",
      fix="ip -n <node> route replace <peer pod CIDR> via <peer VTEP> dev flannel.N onlink (host-gw: "
          "via <peer node IP> dev eth0); or sudo netlab up",
      lesson="Flannel adds the route last, after ARP and FDB; a failed subnet lease leaves it out"),
    S("kube-services-jump-missing",
      "nat PREROUTING's jump to KUBE-SERVICES is gone on a node: it DNATs no Service traffic",
      target="node", needs=("services", "kube-proxy-iptables", "service-client"), example=SERVICES_EXAMPLE,
      change='iptables -t nat -D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES '
             "in the node (iptables-restore --noflush)",
      symptom="every ClusterIP flow from the node's pods fails (DNS too), and NodePorts on the node's IP",
      hop="node", fact="the node did not DNAT: its nat PREROUTING lacks the jump to KUBE-SERVICES",
      fix='iptables -t nat -I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES; '
          "or sudo netlab up",
      lesson="an `iptables -F` or a firewall reload (firewalld, ufw) on a node; kube-proxy puts the jump back "
             "only at its next full sync"),
    S("endpoint-pod-down",
      "an endpoint pod is down while its Service still lists it",
      target="pod", needs=("services", "endpoints"), example=SERVICES_EXAMPLE, processes=True,
      change="stop the pod's containers; the Service's KUBE-SEP chain still DNATs to it",
      symptom="every flow to the pod's served ports fails (connection refused); Service flows fail when "
              "kube-proxy picks it (about 1 in n endpoints), and the spread over endpoints fails",
      hop="pod", fact="the endpoint the Service DNATed to refuses the connection: nothing listens there",
      fix="start the pod again (or take it out of the Service's endpoints); sudo netlab up restarts it",
      lesson="a pod whose readiness probe passes but whose process died, or endpoints not yet updated"),
    S("conntrack-stale-entry",
      "a stale conntrack entry keeps a client's UDP flow to cluster DNS on an endpoint that is gone",
      target="pod", needs=("services", "dns", "dns-client"), example=SERVICES_EXAMPLE,
      change="a UDP conntrack entry in the client's node: client:40053 -> the DNS ClusterIP:53, DNATed to an "
             "address of the DNS pod's node where no pod is (conntrack -I ... --dst-nat), as an endpoint change "
             "leaves it when nobody deletes the old entries",
      symptom="DNS queries from the client's port 40053 get no answer, and each keeps the entry 120 s more "
              "(an answered flow's: nf_conntrack_udp_timeout_stream); 120 s after the last one (10 minutes "
              "after the break if none) it times out and the fault heals by itself; every probe passes (each "
              "uses a new source port, so a new entry and kube-proxy's rules): the fault hides from a fresh "
              "client",
      hop="the client's node", fact="trace --sport 40053: conntrack already holds this flow and DNATs it to an "
                                    "address that is no endpoint of the Service",
      fix="conntrack -D -p udp --orig-dst <DNS ClusterIP> --orig-port-dst 53 --dst-nat <gone address> in the "
          "node; sudo netlab up deletes such entries",
      trace="{target} svc/kube-system/kube-dns --sport 40053",  # a plain trace's fresh source port passes
      lesson="the DNS timeouts after a CoreDNS restart: kube-proxy must delete the UDP entries of removed "
             "endpoints; a client that keeps its port keeps its dead entry alive"),
    S("dns-pod-stopped",
      "the cluster DNS pod (kube-dns) is stopped",
      target="pod", needs=("services", "dns"), example=SERVICES_EXAMPLE, processes=True,
      change="stop the kube-dns pod's dnsmasq",
      symptom="every flow to kube-dns (its pod and its ClusterIP, port 53) fails; everything else passes",
      hop="pod", fact="the query reaches the kube-dns pod and nothing answers: no process listens on port 53",
      fix="start the DNS pod again; sudo netlab up restarts it",
      lesson="'could not resolve host' while every IP works"),
    S("bridge-port-down",
      "a pod's port on its node's bridge cni0 is down",
      target="pod", needs=("planned-bridge",),
      change="ip -n <node> link set <pod's host veth> down",
      symptom="every flow to and from the pod fails",
      hop="node", fact="the pod's bridge port (its veth on cni0) is down",
      fix="ip -n <node> link set <veth> up; or sudo netlab up",
      lesson="a CNI DEL that half ran, or a pod restart whose veth never came up"),
    S("bridge-port-disabled",
      "a pod's port on its node's bridge cni0 is held in STP state disabled, though every link is up",
      target="pod", needs=("planned-bridge",),
      change="set the pod's host veth on cni0 to STP state disabled "
             "(bridge -n <node> link set dev <pod's host veth> state disabled)",
      symptom="every flow to and from the pod fails; ip link shows both ends of its veth up, with carrier",
      hop="node", fact="the pod's bridge port (its veth on cni0) is in state disabled, not forwarding: the bridge "
                       "forwards nothing to or from it",
      fix="bridge -n <node> link set dev <veth> state forwarding; or sudo netlab up",
      lesson="only `bridge link` shows a port's state: an STP daemon or a script that held the port out and "
             "never let it go. With STP off the kernel leaves a disabled port so until its carrier changes "
             "(the forward delay timer moves only listening and learning ports on)"),
    S("bridge-nf-call-off",
      "bridge-nf-call-iptables is 0 on a node: bridged Service replies escape un-DNAT, and bridged pod-to-pod "
      "flows escape NetworkPolicy",
      target="node", needs=("bridged-pair",), example=f"{SERVICES_EXAMPLE} or {NETPOL_EXAMPLE}",
      change="sysctl -w net.bridge.bridge-nf-call-iptables=0 in the node",
      symptom="Service flows from a pod to an endpoint on its own node fail (the reply is bridged, never "
              "un-DNATed: it comes from the pod's address, not the ClusterIP); cross-node Service flows pass, "
              "so a Service with endpoints on both nodes fails about half the time and its spread fails. "
              "Hairpin (a pod to its own Service) still works here: kube-proxy masquerades it to cni0's "
              "address, so the reply is routed, not bridged. And NetworkPolicies stop holding between two pods "
              "of the node: their rules are in FORWARD, which a frame the bridge switches reaches only through "
              "br_netfilter, so a flow a policy denies there connects",
      hop="node", fact="bridge-nf-call-iptables = 0: the reply is bridged without passing iptables, so "
                       "conntrack never un-DNATs it; a flow a policy denies between two pods of the node is "
                       "delivered, its policy verdict NOT STOPPED",
      fix="sysctl -w net.bridge.bridge-nf-call-iptables=1; or sudo netlab up",
      lesson="kubeadm's preflight checks it: br_netfilter not loaded after a reboot, and a bridge CNI's "
             "NetworkPolicies then hold only between nodes"),
    S("forward-policy-drop",
      "the FORWARD policy is DROP on a node, with no Flannel rule to accept pod traffic (Docker's fault)",
      target="node", needs=("two-nodes",),
      change="iptables -P FORWARD DROP, and the jump to FLANNEL-FWD deleted (iptables-restore --noflush)",
      symptom="every flow the node forwards fails: between its pods and other nodes' pods both ways, other "
              "nodes to its pods, and between its own pods (bridged, but br_netfilter sends them through FORWARD)",
      hop="node", fact="the FORWARD chain's policy is DROP and no rule accepts the packet",
      fix="iptables -P FORWARD ACCEPT (or Flannel's FLANNEL-FWD accept rules); or sudo netlab up",
      lesson="Docker 1.13 set FORWARD to DROP on every node where it ran; Flannel added FLANNEL-FWD for it"),
    S("vxlan-wrong-vni",
      "one node's flannel.N has another VNI than the rest of the cluster",
      target="node", needs=("vxlan", "two-nodes"),
      change="make flannel.N again with VNI N+1 (a VXLAN device's VNI cannot change in place), with its "
             "address, ARP and FDB entries and routes",
      symptom="every flow between the node's pods (and the node) and other nodes' pods fails both ways",
      hop="peer node", fact="the VXLAN packet arrives with a VNI that no VXLAN device of the receiving node has",
      fix="on the node, delete flannel.N and make it again with the cluster's VNI (a VXLAN device's VNI cannot "
          "change in place), then add back its address, ARP and FDB entries and routes; sudo netlab up does "
          "exactly that, and changes nothing else",
      lesson="one node with another Flannel config (a VNI or a port: 8472 versus the IANA 4789)"),
)

BY_NAME = {s.name: s for s in SCENARIOS}


def scenario(name: str) -> Scenario | None:
    return BY_NAME.get(name)


def unknown(name: str) -> str:
    """The line for a scenario name there is none of, with the closest one (a typo: vxlan-arp-mising)."""
    import difflib

    close = difflib.get_close_matches(name, sorted(BY_NAME), n=1)
    mean = f" (did you mean {close[0]!r}?)" if close else ""
    return f"no break scenario {name!r}{mean}; `netlab break --list` lists them"


# --- where a scenario applies ----------------------------------------------------------


def _service_endpoints(lab: Lab) -> list[PodInfo]:
    out = []
    for svc in lab.services:
        for port in svc.ports:
            out += [p for p, _ in lab.endpoints(svc, port) if p not in out]
    return out


def dns_pods(lab: Lab) -> list[PodInfo]:
    """The cluster DNS pods: the endpoints of the cluster DNS Service kube-system/kube-dns (the add-on's, or the
    lab's own), the add-on's pod first. Never a pod found by its labels alone: a user's pod labelled
    k8s-app: kube-dns in another namespace is no endpoint of it (a Service selects its own namespace's pods)."""
    from netlab.model.clusterdns import dns_service, is_dns_pod

    svc = dns_service(lab.topo)
    if svc is None:
        return []
    out: list[PodInfo] = []
    for port in svc.ports:
        out += [p for p, _ in lab.endpoints(svc, port) if p not in out]
    return sorted(out, key=lambda p: not is_dns_pod(p.spec))


def dns_pod(lab: Lab) -> PodInfo | None:
    """The DNS pod a scenario stops and a query is sent to: the add-on's kube-system/kube-dns, else the first
    endpoint of the lab's own kube-system/kube-dns Service (None: no cluster DNS answers in this lab)."""
    return next(iter(dns_pods(lab)), None)


def why_not(s: Scenario, lab: Lab) -> str | None:
    """Why the scenario would change nothing on this lab (None: it applies): the first of its needs the lab
    lacks, in catalogue words."""
    where = f"; it needs {s.example}" if s.example else ""
    mode = getattr(lab.topo.cluster, "kube_proxy_mode", "iptables")  # kube-proxy's nftables mode has no such jump
    for need in s.needs:
        if need == "vxlan" and lab.mode != "vxlan":
            return f"{s.name} needs a VXLAN lab; lab {lab.name} is {lab.mode}{where}"
        if need == "two-nodes" and len(lab.nodes) < 2:
            return f"{s.name} needs two nodes; lab {lab.name} has {len(lab.nodes)}{where}"
        if need == "services" and not any(lab.endpoints(svc, p) for svc in lab.services for p in svc.ports):
            return f"{s.name} needs a Service with endpoints; lab {lab.name} has none{where}"
        if need == "kube-proxy-iptables" and mode != "iptables":
            return f"{s.name} needs kube-proxy in iptables mode; lab {lab.name} runs it in {mode} mode"
        if need == "dns" and dns_pod(lab) is None:
            return f"{s.name} needs cluster DNS (a lab with Services); lab {lab.name} has none{where}"
        if need == "endpoints" and not _service_endpoints(lab):
            return f"{s.name} needs a Service endpoint pod; lab {lab.name} has none{where}"
        if need == "planned-bridge" and lab.cni == "conflist":  # the plugins make the pod's port: the plan holds none
            return (f"{s.name} needs pods on a bridge netlab plans (cni0: network.cni builtin or reference); lab "
                    f"{lab.name}'s pods are attached by its own conflist's plugins, whose ports netlab does not plan")
        if need == "dns-client" and not _clients_no_endpoint(lab):
            return (f"{s.name} needs a client pod that is no Service's endpoint (one that runs, and whose DNS "
                    f"queries the NetworkPolicies allow); lab {lab.name} has none{where}")
        if need == "bridged-pair" and _no_pod_bridge(lab):
            return (f"{s.name} needs pods on a bridge of their node; lab {lab.name}'s share none (ptp: each pod's "
                    f"veth is routed alone, so its node's FORWARD judges every flow whatever the sysctl says)")
        if need in NODE_NEEDS and all(target_problem(s, lab, n) for n in lab.nodes):
            return f"{target_problem(s, lab, lab.nodes[0])}, and lab {lab.name} has no such node{where}"
    if s.target == "node" and all(target_problem(s, lab, n) for n in lab.nodes):
        return f"{target_problem(s, lab, lab.nodes[0])}, and lab {lab.name} has no such node{where}"
    return None


def _no_pod_bridge(lab: Lab) -> bool:
    """The lab's pods are ports of no bridge (plan.cniadd.pod_bridge): a conflist's ptp, say."""
    from netlab.plan.cniadd import pod_bridge
    return pod_bridge(lab) is None


def clients(lab: Lab, node: str) -> list[PodInfo]:
    """The pods of ``node`` that a proving trace can start from as a Service's client: all but the DNS pod."""
    dns = dns_pods(lab)
    return [p for p in lab.pods_on(node) if p not in dns]


def _clients_no_endpoint(lab: Lab) -> list[PodInfo]:
    """conntrack-stale-entry's clients: pods that are no Service's endpoint, whose DNS queries the policies allow,
    and that run (not terminal: a Completed or Error pod, ``lab.terminal``, never queries again)."""
    eps = {p.name for p in _service_endpoints(lab)}
    return dns_askers(lab, [p for p in lab.pods if p.name not in eps and p.name not in lab.terminal], "UDP")


def dns_askers(lab: Lab, pods: list[PodInfo], proto: str) -> list[PodInfo]:
    """Those of ``pods`` whose DNS queries (``proto`` to port 53) the lab's NetworkPolicies let reach the DNS
    pod: a scenario shown by a query needs one (a denied query changes nothing)."""
    dns = dns_pod(lab)
    if dns is None or not lab.topo.network_policies:
        return list(pods)
    from netlab.model.netpol import lab_peer, policy_set
    ps = policy_set(lab)  # once: it views every pod of the lab
    server = lab_peer(lab, ps, dns.name)
    out = []
    for pod in pods:
        client = lab_peer(lab, ps, pod.name)
        if client is None or server is None or ps.flow(client, server, proto, 53).allowed:
            out.append(pod)
    return out


NODE_NEEDS = ("service-client", "bridged-pair")  # needs a node of the lab must meet (target_problem)


def target_problem(s: Scenario, lab: Lab, node: NodeInfo) -> str | None:
    """Why a node scenario would show nothing on this node (None: it shows): a Service scenario needs a client
    pod there, and bridge-nf-call-off the DNS pod beside it (the reply the bridge switches)."""
    if "service-client" in s.needs and not clients(lab, node.name):
        return f"{s.name} breaks the Service path of a node's pods: it needs a pod (not DNS) on the node"
    if "bridged-pair" in s.needs and not meets_dns(lab, node.name) and policy_split(lab, node.name) is None:
        return f"{s.name} shows where a pod meets a Service endpoint on its own bridge, or a pod a NetworkPolicy " \
               f"keeps from another: it needs the DNS pod and another pod on the node (one the NetworkPolicies " \
               f"let query it), or two pods there that a policy keeps apart"
    from netlab.breaks.changes import peer_end, peer_node

    if not any(n in s.needs for n in NODE_NEEDS) and peer_end(lab, node) is None:
        return (f"{s.name} is traced from a node across the pod network to its peer: node {node.name}'s, "
                f"{peer_node(lab, node).name}, has no pod, nor cni0 before its first one, nor flannel.1 in host-gw")
    if not any(n in s.needs for n in NODE_NEEDS):  # those say above what the node needs: here, any flow it meets
        from netlab.breaks.flows import meets_a_flow

        if not meets_a_flow(s.name, lab, node):
            return (f"{s.name} breaks what a node sends, forwards or receives for the lab's pods: it needs a node "
                    f"some flow of `netlab probe` crosses there (a pod of its own, a NodePort it forwards, or "
                    f"the node sending to its peer's pods)")
    return None


def meets_dns(lab: Lab, node: str) -> bool:
    """The DNS pod runs on ``node`` beside a client the NetworkPolicies let query it over TCP."""
    dns = dns_pod(lab)
    return dns is not None and dns.node == node and bool(dns_askers(lab, clients(lab, node), "TCP"))


def policy_split(lab: Lab, node: str) -> tuple[str, str, str | None, int | None] | None:
    """Two pods of ``node`` and a flow between them that the NetworkPolicies deny: (source, destination,
    protocol, port), a ping (None, None) where it is denied, else TCP to a port the destination declares.
    None: the policies keep no two pods of the node apart."""
    if not lab.topo.network_policies:
        return None
    from netlab.model.netpol import lab_peer, policy_set
    ps = policy_set(lab)
    pods = lab.pods_on(node)
    for a in pods:
        for b in pods:
            src, dst = lab_peer(lab, ps, a.name), lab_peer(lab, ps, b.name)
            if a is b or src is None or dst is None:
                continue
            for proto, port in [("icmp", None)] + [("tcp", n) for n, pr in b.ports if pr == "TCP"]:
                if not ps.flow(src, dst, proto.upper(), port).allowed:
                    return a.name, b.name, None if proto == "icmp" else proto, port
    return None


def default_target(s: Scenario, lab: Lab) -> str:
    """The node or pod a scenario breaks when --target is not given."""
    if s.target == "node":  # the first that shows it
        return next((n.name for n in lab.nodes if target_problem(s, lab, n) is None), lab.nodes[0].name)
    if s.name == "conntrack-stale-entry":  # a client: a pod that is no endpoint and not DNS
        return (_clients_no_endpoint(lab) or lab.pods)[0].name
    if s.name in ("dns-pod-stopped",):
        return dns_pod(lab).name  # type: ignore[union-attr]
    if s.name == "endpoint-pod-down":  # an application endpoint (not DNS), the last one
        dns = dns_pods(lab)
        apps = [p for p in _service_endpoints(lab) if p not in dns]
        return (apps or _service_endpoints(lab))[-1].name
    return lab.pods[1].name if len(lab.pods) > 1 else lab.pods[0].name


def resolve_target(s: Scenario, lab: Lab, target: str | None) -> NodeInfo | PodInfo:
    """The node or pod to break; raises ValueError with a one-line reason when ``target`` does not fit."""
    name = default_target(s, lab) if target is None else target  # "" (--target "") is a name no node or pod has
    if s.target == "node":
        found = next((n for n in lab.nodes if n.name == name), None)
        if found is None:
            raise ValueError(f"{s.name} breaks a node; lab {lab.name} has no node {name!r} "
                             f"(nodes: {', '.join(n.name for n in lab.nodes)})")
        problem = target_problem(s, lab, found)
        if problem is not None:
            fit = [n.name for n in lab.nodes if target_problem(s, lab, n) is None]
            raise ValueError(f"{problem}; node {name} is not one (nodes that are: {', '.join(fit) or 'none'})")
        return found
    pod = next((p for p in lab.pods if p.name == name), None)
    if pod is None:
        raise ValueError(f"{s.name} breaks a pod; lab {lab.name} has no pod {name!r} "
                         f"(pods: {', '.join(p.name for p in lab.pods)})")
    if s.name == "endpoint-pod-down" and pod not in _service_endpoints(lab):
        raise ValueError(f"{s.name}: pod {name} is no Service's endpoint "
                         f"(endpoints: {', '.join(p.name for p in _service_endpoints(lab))})")
    if s.name == "conntrack-stale-entry" and pod.name in lab.terminal:
        raise ValueError(f"{s.name}: pod {name} is terminal (its containers exited for good): it sends no DNS query "
                         f"a stale entry could catch (pods that do: "
                         f"{', '.join(p.name for p in _clients_no_endpoint(lab)) or 'none'})")
    if s.name == "conntrack-stale-entry" and not dns_askers(lab, [pod], "UDP"):
        raise ValueError(f"{s.name}: the NetworkPolicies deny pod {name}'s DNS queries, so a stale entry for them "
                         f"would change nothing (pods whose queries they allow: "
                         f"{', '.join(p.name for p in _clients_no_endpoint(lab)) or 'none'})")
    if s.name == "dns-pod-stopped" and pod not in dns_pods(lab):
        raise ValueError(f"{s.name}: pod {name} is not the DNS pod (it is {dns_pod(lab).name})")  # type: ignore
    return pod

