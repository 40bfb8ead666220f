"""The cluster DNS's records: what CoreDNS answers for a cluster's Services, pods and namespaces, and the dnsmasq
command and hosts file that answer the same (the add-on pod that runs it: :mod:`netlab.model.clusterdns`).

What it answers is what CoreDNS answers with the Corefile of kubeadm and
minikube (``kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure;
fallthrough in-addr.arpa ip6.arpa; ttl 30 }``), after the Kubernetes DNS
specification (github.com/kubernetes/dns docs/specification.md) and CoreDNS's
plugin/kubernetes (kubernetes.go findServices/findPods, reverse.go,
plugin/backend_lookup.go SRV and SOA):

==========================================================  =============================================
``web.default.svc.cluster.local`` A                         the ClusterIP, TTL 30; a headless Service's
                                                            (clusterIP: None): each endpoint's address,
                                                            none: NXDOMAIN (findServices clears its
                                                            errNoItems only for an endpoint address)
``_http._tcp.web.default.svc.cluster.local`` SRV            ``0 100 80 web.default.svc.cluster.local.``
                                                            per named port; the bare name: every port;
                                                            headless: each endpoint's name and own port
``_http._tcp.web.default.svc.cluster.local`` A              the ClusterIP; headless: the endpoints of that port
``z.svc.cluster.local``, ``z.pod.cluster.local``            no data (NOERROR) for a namespace z that exists
``10-244-0-2.web.default.svc.cluster.local`` A              an endpoint of the Service, by its dashed IP
``web-0.nginx.default.svc.cluster.local`` A                 an endpoint by its hostname: a pod with
                                                            ``hostname: web-0`` and ``subdomain: nginx``
                                                            (its SRV target and PTR too)
``web-0.nginx.default.svc.cluster.local`` SRV               a headless Service's endpoint: ``0 100 8080
                                                            web-0.nginx...`` per port it has
``10-244-0-2.default.pod.cluster.local`` A                  the IP it spells, any IP (``pods insecure``),
                                                            in a namespace that exists
``20.0.96.10.in-addr.arpa`` PTR                             ``web.default.svc.cluster.local.``
``2.0.244.10.in-addr.arpa`` PTR                             an endpoint: ``10-244-0-2.web.default.svc...``;
                                                            a pod no Service selects: NXDOMAIN
``kubernetes.default.svc.cluster.local`` A                  10.96.0.1, the first address (see below)
``dns-version.cluster.local`` TXT                           ``1.1.0``, the schema CoreDNS implements (TTL
                                                            30: CoreDNS's is 28800)
a name or address of the cluster it does not know           NXDOMAIN with the SOA of ``cluster.local``
                                                            (minimum 30), authoritative, no recursion
==========================================================  =============================================

dnsmasq answers the questions that arrive on the pod's eth0 (all of the
lab's) as an authoritative server (``--auth-server``, ``--auth-zone``): that
gives CoreDNS's flags (``aa``, no ``ra``), its SOA on negative answers, NODATA
for a name that exists without the asked type, and NXDOMAIN, not REFUSED, for
an address of the pod or service CIDR it has no name for. It answers a reverse
question only with a name inside the zone whose subnets hold the address: the
pod and service CIDRs belong to the zone ``svc.cluster.local``, so the pod
names it makes up (``--synth-domain``, under ``pod.cluster.local``) answer
forward only, as ``pods insecure`` does. Names outside the cluster get REFUSED
(a real cluster forwards them upstream; a lab has no upstream). What dnsmasq
cannot do as CoreDNS does (docs/fidelity.md): an address has one PTR, its
hostname's name when a Service names it so, else its name under the first
Service (topology order) that selects it, where CoreDNS has one per Service; a
pod name's AAAA is NXDOMAIN (CoreDNS: no data); a namespace's own names hold a record of a private-use type
(:data:`NAMESPACE_RR_TYPE`, so that they exist: CoreDNS has none, a question of that type shows it; ANY does not,
dnsmasq's authority answers it with no data at every name, as CoreDNS does); every
answer names the zone's
NS in its authority section, and an SRV answer has no A record of its target
in the additional one; an NS answer names ``ns.dns.cluster.local`` (dnsmasq's
one server name is its SOA's MNAME too), with no address; every record has TTL
30 (``--auth-ttl``), the schema version's too; over TCP, an answer to a question
with EDNS carries the extended error 17 "Filtered" (dnsmasq 2.90's TCP path takes
it from a variable its authoritative answers never set: nothing is filtered).

Every cluster has the Service ``default/kubernetes`` of the API server at the
first address of the service CIDR (netlab never hands that address out). A
lab has no API server, but the name answers all the same: it is the first
step of Kubernetes' "Debugging DNS Resolution" (``nslookup kubernetes.default``)
and the name the DNS specification's examples use. Nothing answers at
10.96.0.1:443 (no kube-proxy rule: the packet leaves by the node's default
route), which docs/fidelity.md and the README say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from netlab.model.addressing import Addressing
from netlab.model.naming import CLUSTER_DOMAIN
from netlab.model.selection import SelectorIndex
from netlab.model.topology import Pod, Topology

# The cluster DNS Service, kube-system/kube-dns: its ClusterIP is every pod's nameserver (and NS_NAME's address)
DNS_NAME = "kube-dns"
DNS_NAMESPACE = "kube-system"
TTL = 30  # the Corefile's `ttl 30`: every record's TTL and the SOA's minimum (how long a "no" is cached)
SCHEMA_VERSION = "1.1.0"  # CoreDNS plugin/kubernetes DNSSchemaVersion, the TXT of dns-version.<zone>
NS_NAME = f"ns.dns.{CLUSTER_DOMAIN}"  # CoreDNS's SOA MNAME; its A record is the DNS Service's ClusterIP
HOSTMASTER = f"hostmaster.{CLUSTER_DOMAIN}"  # CoreDNS's SOA RNAME
SOA_TIMERS = (7200, 1800, 86400)  # CoreDNS's SOA refresh, retry, expire (plugin/backend_lookup.go SOA)
API_NAMESPACE, API_NAME = "default", "kubernetes"  # the API server's Service, at the service CIDR's first address
API_PORT = ("https", 443, "TCP")  # kubeadm's: port https 443/TCP (targetPort 6443 on the control plane)
# Namespaces every cluster has: `pods insecure` answers a pod name only in a namespace that exists.
BUILTIN_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
NAMESPACE_RR_TYPE = 65280  # the first private-use RR type: the record that makes a namespace's names exist
SRV_WEIGHT = 100  # CoreDNS: 100 shared among the records of one answer, floor(100 / n) each, at least 1


def dashed(ip: IPv4Address) -> str:
    """How CoreDNS spells an address in a name: 10.244.0.2 is ``10-244-0-2``."""
    return str(ip).replace(".", "-")


@dataclass(frozen=True)
class DnsService:
    """What CoreDNS's kubernetes plugin knows of one Service: ClusterIP, ports, endpoint addresses."""

    namespace: str
    name: str
    ip: IPv4Address | None  # None: headless (clusterIP: None), whose name answers its endpoints' addresses
    ports: tuple[tuple[str | None, int, str], ...]  # (name, port, protocol) as the Service lists them
    endpoints: tuple[IPv4Address, ...] = ()
    # headless only: (port name, protocol, endpoint address, its port) of every endpoint of every port, for SRV
    targets: tuple[tuple[str | None, str, IPv4Address, int], ...] = ()
    # (endpoint address, hostname) of the endpoints the EndpointSlice controller gives a hostname: a pod with
    # spec.hostname whose spec.subdomain is this Service's name (ShouldSetHostname); the others go by their address
    hostnames: tuple[tuple[IPv4Address, str], ...] = ()

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.{CLUSTER_DOMAIN}"

    def port_addresses(self) -> list[tuple[str, IPv4Address]]:
        """(``_<port>._<proto>.<svc>...`` name, address) of each named port: the ClusterIP; headless: the address
        of each endpoint that has the port (the A records CoreDNS answers for the name an SRV record owns)."""
        if self.ip is not None:
            names = dict.fromkeys(f"_{name}._{proto.lower()}.{self.fqdn}" for name, _, proto in self.ports if name)
            return [(name, self.ip) for name in names]
        return list(dict.fromkeys((f"_{name}._{proto.lower()}.{self.fqdn}", ip)
                                  for name, proto, ip, _ in self.targets if name))

    def endpoint_name(self, ip: IPv4Address) -> str:
        """An endpoint's name under the Service, as CoreDNS's endpointHostname spells it: ``web-0.nginx.default.svc
        .cluster.local`` for a pod with hostname web-0 and subdomain nginx, else ``10-244-0-2.nginx...``."""
        return f"{dict(self.hostnames).get(ip) or dashed(ip)}.{self.fqdn}"

    def srv(self) -> list[tuple[str, str, int, int]]:
        """(owner name, target, weight, port) of each SRV record, as CoreDNS answers them.

        ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` per named port (unnamed ports
        have none, the specification says); the Service's own name answers SRV
        too, with every port: the n records of one answer share a weight of 100
        (floor(100 / n)), and a record listed twice (53/UDP and 53/TCP: one
        target and port; two endpoints of one hostname) is one, the duplicate
        dropped after the weights are counted (backend_lookup.go SRV, isDuplicate).
        A ClusterIP Service's records aim at its own name and port; a
        headless one's at each endpoint's name (its dashed address under the
        Service's, or its hostname) and the endpoint's own port, one record each.
        A headless Service's endpoint name answers SRV too (findServices matches
        an endpoint by it), at itself with each of its ports; a ClusterIP
        Service's endpoint name has none here (its records would change with the
        endpoints, which would then restart dnsmasq: docs/fidelity.md).
        """
        if self.ip is None:
            recs = [(name, proto, self.endpoint_name(ip), port) for name, proto, ip, port in self.targets]
        else:
            recs = [(name, proto, self.fqdn, port) for name, port, proto in self.ports]
        out = []
        for name, proto in dict.fromkeys((name, proto) for name, proto, _, _ in recs if name):
            mine = [(target, port) for n, p, target, port in recs if (n, p) == (name, proto)]
            out += [(f"_{name}._{proto.lower()}.{self.fqdn}", target, max(SRV_WEIGHT // len(mine), 1), port)
                    for target, port in dict.fromkeys(mine)]
        weight = max(SRV_WEIGHT // len(recs), 1) if recs else SRV_WEIGHT
        for target, port in dict.fromkeys((target, port) for _, _, target, port in recs):
            out.append((self.fqdn, target, weight, port))
        owners: dict[str, list[int]] = {}  # endpoint name: its ports (of both endpoints of one hostname)
        for _, _, target, port in recs if self.ip is None else []:
            owners.setdefault(target, []).append(port)
        for owner, ports in owners.items():
            out += [(owner, owner, max(SRV_WEIGHT // len(ports), 1), port) for port in dict.fromkeys(ports)]
        return out


@dataclass(frozen=True)
class ClusterRecords:
    """Everything the cluster DNS answers: Services (with their endpoints), namespaces, the cluster's networks."""

    services: tuple[DnsService, ...]
    namespaces: tuple[str, ...]
    networks: tuple[IPv4Network, ...]  # pod and service CIDRs: the reverse zones it answers for, NXDOMAIN included
    nameserver: IPv4Address  # the DNS Service's ClusterIP, the A record of ns.dns.cluster.local


def cluster_records(topo: Topology, addressing: Addressing, terminal: frozenset[str] = frozenset()) -> ClusterRecords:
    """The records of a topology that holds the DNS Service, with its addressing (``allocate`` of it).

    A Service's endpoints are the pods of its namespace its selector matches
    (model/lab.py's ``endpoints``, which kube-proxy's rules use), of at least one of its ports, but for the
    ``terminal`` ones (Succeeded or Failed), which no EndpointSlice holds, so CoreDNS answers them not. The API
    server's Service ``default/kubernetes`` is added at the first address of
    the service CIDR unless the topology has its own (no other Service may hold that address: addressing.py).
    """
    services = []
    index = SelectorIndex(topo.pods, lambda p: p.labels, lambda p: p.namespace)
    # the pods by address as integers, once: IPv4Address's own comparison is Python code, and every Service
    # sorting its endpoints with it took 2,000 Services x 4,000 pods 13 s
    rank = {name: int(ip) for name, ip in addressing.pod_ip.items()}
    # Services of one namespace with the same selector and the same targetPorts have the same endpoints: found once
    shared: dict[tuple, tuple[list[Pod], tuple[IPv4Address, ...], list[Pod]]] = {}
    for svc in topo.services:
        key = (svc.namespace, frozenset(svc.selector.items()),
               tuple((p.port if p.target_port is None else p.target_port, p.protocol) for p in svc.ports))
        if key not in shared:
            # a pod a named targetPort leaves out of every port is in no EndpointSlice's ports: CoreDNS names it
            # not; a headless Service without ports has every selected pod as an endpoint, of no port
            pods = [p for p in index.selected(svc) if p.name not in terminal
                    and (not svc.ports or any(port.target(p) is not None for port in svc.ports))]
            by_ip = sorted(pods, key=lambda p: rank[p.name])
            shared[key] = (by_ip, _distinct(addressing.pod_ip[p.name] for p in by_ip),
                           [p for p in by_ip if p.hostname and p.subdomain])
        by_ip, ips, named = shared[key]
        targets = [(port.name, port.protocol, addressing.pod_ip[p.name], t) for port in svc.ports
                   for p in by_ip if (t := port.target(p)) is not None] if svc.headless else []
        hostnames = tuple((addressing.pod_ip[p.name], p.hostname) for p in named
                          if p.subdomain == svc.name)  # the namespace: selected() keeps to it
        services.append(DnsService(svc.namespace, svc.name, addressing.service_ip.get((svc.namespace, svc.name)),
                                   tuple((p.name, p.port, p.protocol) for p in svc.ports), ips,
                                   tuple(targets), hostnames))
    scidr = topo.cluster.service_cidr
    api_ip = scidr.network_address + 1
    if (api_ip < scidr.broadcast_address and api_ip not in addressing.service_ip.values()
            and not any((s.namespace, s.name) == (API_NAMESPACE, API_NAME) for s in topo.services)):
        services.append(DnsService(API_NAMESPACE, API_NAME, api_ip, (API_PORT,)))
    namespaces = existing_namespaces(topo)
    networks = collapse_addresses([topo.cluster.pod_cidr, *addressing.node_pod_cidr.values(), scidr])
    nameserver = next(s.ip for s in services if (s.namespace, s.name) == (DNS_NAMESPACE, DNS_NAME))
    return ClusterRecords(tuple(services), tuple(sorted(namespaces)), tuple(networks), nameserver)


def _distinct(ips: Iterable[IPv4Address]) -> tuple[IPv4Address, ...]:
    """Addresses given in order, each once (a pod on its node's network shares the node's)."""
    out: list[IPv4Address] = []
    for ip in ips:
        if not out or out[-1] != ip:
            out.append(ip)
    return tuple(out)


def host_records(records: ClusterRecords) -> list[tuple[IPv4Address, str]]:
    """(address, name) of every A record, in the order that gives each address its PTR (dnsmasq gives an address
    the PTR of its first line in a hosts file): the ClusterIPs first, then the endpoints, the Services in topology
    order, those a hostname names (``web-0.nginx...``, spec 2.4.3: that is a headless Service's endpoint's PTR,
    whatever Service selects the pod before it) before the others; a headless Service's name (an A record per
    endpoint) after its endpoints' names, which keep their PTRs; last the SOA's MNAME, after kube-dns's own name."""
    out = [(s.ip, s.fqdn) for s in records.services if s.ip is not None]
    named = {(s.namespace, s.name): dict(s.hostnames) for s in records.services}
    out += [(ip, s.endpoint_name(ip)) for s in records.services for ip in s.endpoints
            if ip in named[s.namespace, s.name]]
    out += [(ip, s.endpoint_name(ip)) for s in records.services for ip in s.endpoints
            if ip not in named[s.namespace, s.name]]
    out += [(ip, s.fqdn) for s in records.services if s.ip is None for ip in s.endpoints]
    out.append((records.nameserver, NS_NAME))
    # the SRV-form names answer A too (CoreDNS's findServices matches the port and protocol for any type): the
    # ClusterIP, a headless Service's endpoints of that port; last, so that no address takes its PTR from them
    out += [(ip, name) for s in records.services for name, ip in s.port_addresses()]
    return out


def hosts_file(records: ClusterRecords) -> str:
    """The hosts file of the A and PTR records, which dnsmasq reads with ``--addn-hosts`` and again on SIGHUP."""
    return ("# netlab: the cluster DNS's A and PTR records (dnsmasq --addn-hosts; read again on SIGHUP)\n"
            + "".join(f"{ip} {name}\n" for ip, name in host_records(records)))


def existing_namespaces(topo: Topology) -> set[str]:
    """The namespaces the lab's cluster has: every cluster's own, those ``namespaces:`` declares, and those its
    pods and Services live in (netlab makes a namespace for them, as the user would before applying them)."""
    return {*BUILTIN_NAMESPACES, *(n.name for n in topo.namespaces), *(p.namespace for p in topo.pods),
            *(s.namespace for s in topo.services)}


# How every release's add-on dnsmasq command begins: a saved topology's add-on is netlab's by it
# (clusterdns.renewed_addon)
NETLAB_DNSMASQ = ("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--log-facility=-", "--log-queries",
                  "--no-resolv", "--no-hosts", "--no-poll", "--pid-file=")


def dnsmasq_argv(records: ClusterRecords) -> list[str]:
    """dnsmasq in the foreground, logging to the container log, answering like CoreDNS (see the module's table).

    What is here is what dnsmasq takes only from its command line (a change restarts it): SRV records, the
    namespaces' pod names, the zones. The A and PTR records are in the hosts file (:func:`hosts_file`) the
    containers feature adds with ``--addn-hosts``, read as root (``--user=root``: the lab's state directory is
    root's; dnsmasq would read it as nobody on SIGHUP). No upstream servers (the lab has no real internet).
    dnsmasq consults its ``--auth-zone`` list last first (so ``cluster.local``, last, is the zone of every
    forward name and the SOA of its negative answers; ``svc.cluster.local`` holds only the reverse zones).
    """
    argv = [*NETLAB_DNSMASQ, "--user=root", f"--local=/{CLUSTER_DOMAIN}/",
            "--domain-needed", f"--local-ttl={TTL}", f"--auth-ttl={TTL}",
            # serial 0: dnsmasq puts its start time there, as CoreDNS puts the time of the last change
            f"--auth-soa=0,{HOSTMASTER},{','.join(map(str, SOA_TIMERS))}",
            f"--auth-server={NS_NAME},eth0"]
    argv += [f"--srv-host={name},{target},{port},0,{weight}"  # target, port, priority, weight
             for s in records.services for name, target, weight, port in s.srv()]
    argv.append(f"--txt-record=dns-version.{CLUSTER_DOMAIN},{SCHEMA_VERSION}")
    # pods insecure: <a-b-c-d>.<namespace>.pod.<zone> is a.b.c.d, any address (0.0.0.0/0 is not a range dnsmasq
    # takes: the first and last addresses are)
    argv += [f"--synth-domain={ns}.pod.{CLUSTER_DOMAIN},0.0.0.0,255.255.255.255" for ns in records.namespaces]
    # a namespace's own names exist (CoreDNS: NODATA, not NXDOMAIN, for <ns>.svc and <ns>.pod of a namespace that
    # exists): one record of a private-use type (RFC 6895) on each, which no client asks for, makes them so
    argv += [f"--dns-rr={ns}.{kind}.{CLUSTER_DOMAIN},{NAMESPACE_RR_TYPE}"
             for ns in records.namespaces for kind in ("svc", "pod")]
    argv.append(f"--auth-zone=svc.{CLUSTER_DOMAIN},{','.join(map(str, records.networks))}")
    argv.append(f"--auth-zone={CLUSTER_DOMAIN}")
    return argv
