"""The cluster DNS add-on's dnsmasq command: the records a kubeadm/minikube CoreDNS answers (pure, no root).

What CoreDNS answers comes from the Kubernetes DNS specification (kubernetes/dns docs/specification.md)
and CoreDNS's plugin/kubernetes with the Corefile ``kubernetes cluster.local in-addr.arpa ip6.arpa {
pods insecure; fallthrough in-addr.arpa ip6.arpa; ttl 30 }``; tests/integration/test_cluster_dns.py
asks the real dnsmasq these questions.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import yaml

from netlab.model import clusterdns as dns
from netlab.model import dnsrecords
from netlab.model.topology import Topology

TOPO = """
name: d
nodes: [{name: n1}, {name: n2}]
namespaces: [{name: shop}]
pods:
  - {name: web-1, node: n1, ip: 10.244.0.2, labels: {app: web}}
  - {name: web-2, node: n2, ip: 10.244.1.2, labels: {app: web}}
  - {name: client, node: n1, ip: 10.244.0.3}
  - {name: cart, node: n2, namespace: other, ip: 10.244.1.3, labels: {app: web}}
services:
  - name: web
    selector: {app: web}
    clusterIP: 10.96.0.20
    ports: [{name: http, port: 80, targetPort: 8080}, {name: metrics, port: 9100, protocol: TCP},
            {port: 7000, protocol: UDP}]
  - {name: web-np, type: NodePort, selector: {app: web}, clusterIP: 10.96.0.21, ports: [{port: 80, targetPort: 8080}]}
  - {name: nobody, selector: {app: none}, clusterIP: 10.96.0.22, ports: [{name: http, port: 80}]}
"""


def argv(text: str = TOPO) -> list[str]:
    topo = dns.with_cluster_dns(Topology.model_validate(yaml.safe_load(text)))
    return next(p for p in topo.pods if p.name == dns.DNS_NAME).containers[0].command


def opts(text: str = TOPO, option: str = "--host-record") -> list[str]:
    """The values of an option of the command; ``--host-record``: the A records of the hosts file dnsmasq reads
    (``name,address``, in its order), where they moved so that dnsmasq re-reads them on SIGHUP."""
    if option == "--host-record":
        return [f"{name},{ip}" for ip, name in hosts(text)]
    return [a.split("=", 1)[1] for a in argv(text) if a.startswith(option + "=")]


def hosts(text: str = TOPO) -> list[tuple[str, str]]:
    """(address, name) of each line of the add-on's hosts file, read as dnsmasq reads one."""
    from netlab.model.lab import resolve

    lab = resolve(Topology.model_validate(yaml.safe_load(text)))
    lines = dnsrecords.hosts_file(dnsrecords.cluster_records(lab.topo, lab.addressing)).splitlines()
    assert lines[0].startswith("# ")
    return [(ip, name) for ip, name in (line.split() for line in lines[1:])]


def test_every_record_has_the_corefiles_ttl_30():
    # dnsmasq gives configured records TTL 0 unless told (--local-ttl); its authoritative answers --auth-ttl
    assert {"--local-ttl=30", "--auth-ttl=30"} <= set(argv())


def test_a_records_of_services_kept_as_before():
    records = opts()
    assert records[:5] == ["web.default.svc.cluster.local,10.96.0.20", "web-np.default.svc.cluster.local,10.96.0.21",
                           "nobody.default.svc.cluster.local,10.96.0.22",
                           "kube-dns.kube-system.svc.cluster.local,10.96.0.10",
                           "kubernetes.default.svc.cluster.local,10.96.0.1"]


def test_srv_per_named_port_and_every_port_under_the_service_name():
    srv = opts(option="--srv-host")
    web = "web.default.svc.cluster.local"
    # _<port>._<proto>.<svc>.<ns>.svc.<zone>: priority 0, weight 100, the port, the Service's name (spec 2.3.2)
    assert f"_http._tcp.{web},{web},80,0,100" in srv
    assert f"_metrics._tcp.{web},{web},9100,0,100" in srv
    assert not [s for s in srv if s.startswith("_._") or "7000" in s and s.startswith("_")]  # unnamed: none
    # the bare name: each port, the answer's weight of 100 shared (CoreDNS plugin.SRV: floor(100/3))
    assert [s for s in srv if s.startswith(web)] == [f"{web},{web},{p},0,33" for p in (80, 9100, 7000)]
    dns_svc = "kube-dns.kube-system.svc.cluster.local"
    assert f"_dns._udp.{dns_svc},{dns_svc},53,0,100" in srv and f"_dns-tcp._tcp.{dns_svc},{dns_svc},53,0,100" in srv
    # 53/UDP and 53/TCP are one record (same target and port), the weight counted before the duplicate goes
    assert [s for s in srv if s.startswith(dns_svc)] == [f"{dns_svc},{dns_svc},53,0,50"]


def test_endpoints_have_names_after_their_address_and_their_ptr_after_the_cluster_ips():
    records = opts()
    ends = [r for r in records if r[0].isdigit()]
    # the pods of the Service's own namespace its selector matches (cart, in namespace other, is not one)
    assert ends[:2] == ["10-244-0-2.web.default.svc.cluster.local,10.244.0.2",
                        "10-244-1-2.web.default.svc.cluster.local,10.244.1.2"]
    assert "10-244-1-3.web.default.svc.cluster.local,10.244.1.3" not in records
    # dnsmasq gives an address the PTR of its first --host-record: ClusterIPs, then endpoints, Services in order
    assert records.index("web.default.svc.cluster.local,10.96.0.20") < records.index(ends[0])
    assert records.index(ends[0]) < records.index("10-244-0-2.web-np.default.svc.cluster.local,10.244.0.2")
    # the SOA's MNAME, after kube-dns's own PTR; only the SRV-form names' A records after it
    assert [r for r in records if not r.startswith("_")][-1] == "ns.dns.cluster.local,10.96.0.10"
    assert records.index("ns.dns.cluster.local,10.96.0.10") < min(i for i, r in enumerate(records) if r[0] == "_")
    assert not [r for r in records if "nobody" in r and r[0].isdigit()]


def test_pod_names_any_address_in_every_namespace_that_exists():
    synth = opts(option="--synth-domain")
    assert synth == [f"{ns}.pod.cluster.local,0.0.0.0,255.255.255.255"
                     for ns in ("default", "kube-node-lease", "kube-public", "kube-system", "other", "shop")]


def test_authoritative_for_the_cluster_zone_and_its_reverse_zones():
    args = argv()
    assert "--auth-server=ns.dns.cluster.local,eth0" in args
    assert "--auth-soa=0,hostmaster.cluster.local,7200,1800,86400" in args
    # reverse: the pod and service CIDRs in a zone apart from pod.cluster.local (no synthesized PTR); then
    # cluster.local, last because dnsmasq looks its zones up last first
    assert args[-2:] == ["--auth-zone=svc.cluster.local,10.96.0.0/12,10.244.0.0/16", "--auth-zone=cluster.local"]
    assert "--txt-record=dns-version.cluster.local,1.1.0" in args


def test_kubernetes_service_unless_the_topology_has_one_or_its_address_is_taken():
    api = "kubernetes.default.svc.cluster.local"
    assert f"{api},10.96.0.1" in opts()
    assert f"_https._tcp.{api},{api},443,0,100" in opts(option="--srv-host")
    own = TOPO.replace("  - {name: web-np,", "  - {name: kubernetes, clusterIP: 10.96.0.7, ports: [{port: 443}]}\n"
                                             "  - {name: web-np,")
    assert [r for r in opts(own) if r.startswith(api)] == [f"{api},10.96.0.7"]


def test_the_api_servers_and_the_dns_services_addresses_are_refused_to_other_services(tmp_path):
    """A cluster made default/kubernetes (the service CIDR's first address) and kube-system/kube-dns (kubeadm:
    the 10th) before any user's Service: one asking for either address later is refused by the API server's
    allocator, so validation refuses it, naming the file, line and field. (The DNS Service moved to the next
    free address, and kubernetes.default lost its record.)"""
    from netlab.errors import TopologyError
    from netlab.model.load import load_topology
    import pytest

    def refusal(text: str) -> str:
        path = tmp_path / "t.yaml"
        path.write_text(text)
        with pytest.raises(TopologyError) as exc:
            load_topology(str(path))
        return str(exc.value)

    text = ("name: d\nnodes: [{name: n1}]\npods: [{name: web-1, node: n1, labels: {app: web}}]\nservices:\n"
            "  - {name: a, selector: {app: web}, ports: [{port: 80}]}\n"
            "  - name: b\n    selector: {app: web}\n    clusterIP: 10.96.0.30\n    ports: [{port: 80}]\n")
    api = refusal(text.replace("10.96.0.30", "10.96.0.1"))
    assert api.startswith(f"{tmp_path}/t.yaml:8: services[1].clusterIP: 10.96.0.1 is allocated to the API server's "
                          "Service default/kubernetes"), api
    assert "provided IP is already allocated" in api
    kube_dns = refusal(text.replace("10.96.0.30", "10.96.0.10"))
    assert kube_dns.startswith(f"{tmp_path}/t.yaml:8: services[1].clusterIP: 10.96.0.10 is allocated to the "
                               "cluster DNS Service kube-system/kube-dns"), kube_dns
    path = tmp_path / "fine.yaml"
    path.write_text(text)
    assert [str(s.cluster_ip) for s in load_topology(str(path)).services if s.name == "b"] == ["10.96.0.30"]
    # default/kubernetes itself takes the first address; with the user's own kube-system/kube-dns elsewhere, the
    # 10th is anyone's.
    mine = TOPO.replace("  - {name: web-np,", "  - {name: kubernetes, clusterIP: 10.96.0.1, ports: [{port: 443}]}\n"
                                              "  - {name: web-np,")
    assert [r for r in opts(mine) if r.startswith("kubernetes.default")] == [
        "kubernetes.default.svc.cluster.local,10.96.0.1"]
    path = tmp_path / "own.yaml"
    path.write_text("name: d\nnodes: [{name: n1}]\npods: [{name: web-1, node: n1, labels: {app: web}}]\nservices:\n"
                    "  - {name: kube-dns, namespace: kube-system, clusterIP: 10.96.0.53, selector: {app: web}, "
                    "ports: [{port: 53, protocol: UDP}]}\n"
                    "  - {name: web, clusterIP: 10.96.0.10, selector: {app: web}, ports: [{port: 80}]}\n")
    assert {s.name: str(s.cluster_ip) for s in load_topology(str(path)).services} == {
        "kube-dns": "10.96.0.53", "web": "10.96.0.10"}


def test_records_of_other_cidrs():
    text = TOPO.replace("name: d\n", "name: d\ncluster: {podCIDR: 10.32.0.0/16, serviceCIDR: 172.20.0.0/24}\n")
    text = text.replace("10.244.", "10.32.").replace("10.96.0.", "172.20.0.")
    topo = dns.with_cluster_dns(Topology.model_validate(yaml.safe_load(text)))
    from netlab.model.addressing import allocate

    records = dnsrecords.cluster_records(topo, allocate(topo)[0])
    assert records.networks == (IPv4Network("10.32.0.0/16"), IPv4Network("172.20.0.0/24"))
    assert records.nameserver == IPv4Address("172.20.0.10")
    assert "--auth-zone=svc.cluster.local,10.32.0.0/16,172.20.0.0/24" in dnsrecords.dnsmasq_argv(records)


# --- only kube-system/kube-dns replaces the add-on ----------------------------------------------

OWN_KUBE_DNS = """
name: d
nodes: [{name: n1}]
pods:
  - {name: web-1, node: n1, labels: {app: web}}
  - {name: client, node: n1}
services:
  - {name: kube-dns, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
"""


def test_a_users_kube_dns_of_another_namespace_keeps_the_add_on_each_with_its_own_cluster_ip():
    """default/kube-dns and kube-system/kube-dns are two objects, as in Kubernetes: the add-on stays (its pod,
    its Service at 10.96.0.10, where kubeadm puts it) and the user's Service gets the next free address."""
    from netlab.model.lab import resolve

    lab = resolve(Topology.model_validate(yaml.safe_load(OWN_KUBE_DNS)))
    ips = {(s.namespace, s.name): str(lab.cluster_ip(s)) for s in lab.services}
    assert ips == {("default", "kube-dns"): "10.96.0.11", ("kube-system", "kube-dns"): "10.96.0.10"}
    assert [p.name for p in lab.pods] == ["web-1", "client", dns.DNS_NAME]
    dns_svc = dns.dns_service(lab.topo)
    assert dns_svc is not None and dns_svc.namespace == "kube-system"
    records = opts(OWN_KUBE_DNS)
    assert "kube-dns.default.svc.cluster.local,10.96.0.11" in records
    assert "kube-dns.kube-system.svc.cluster.local,10.96.0.10" in records
    # the same in any namespace but kube-system; there, the user's own DNS Service replaces the add-on
    shop = OWN_KUBE_DNS.replace("{name: kube-dns,", "{name: kube-dns, namespace: shop,")
    assert dns.dns_service(resolve(Topology.model_validate(yaml.safe_load(shop))).topo) is not None
    own = OWN_KUBE_DNS.replace("{name: kube-dns,", "{name: kube-dns, namespace: kube-system,")
    topo = Topology.model_validate(yaml.safe_load(own))
    assert dns.with_cluster_dns(topo) is topo


def test_a_node_pod_or_internet_host_named_kube_dns_is_refused_where_the_add_on_comes():
    """The add-on's pod is the network namespace <lab>-kube-dns: a pod, node or host of that name would be it."""
    from netlab.model.checks import check_topology

    def problems(text: str) -> list:
        return check_topology(Topology.model_validate(yaml.safe_load(text)))

    pod = OWN_KUBE_DNS.replace("name: web-1", "name: kube-dns")
    ((loc, msg),) = problems(pod)
    assert loc == ("pods", 0, "name")
    assert msg.startswith("'kube-dns' is the name of the cluster DNS pod netlab adds to a lab with Services")
    assert msg.endswith("rename this pod, or declare your own Service kube-system/kube-dns")
    assert [loc for loc, _ in problems(OWN_KUBE_DNS.replace("{name: n1}", "{name: kube-dns}")
                                       .replace("node: n1", "node: kube-dns"))] == [("nodes", 0, "name")]
    host = OWN_KUBE_DNS + "internet: {hosts: [{name: kube-dns, ip: 203.0.113.9}]}\n"
    assert [loc for loc, _ in problems(host)] == [("internet", "hosts", 0, "name")]
    # no Services, no add-on: the name is free; with the user's own kube-system/kube-dns, too
    assert problems(pod.split("services:")[0]) == []
    own = pod.replace("kube-dns,", "kube-dns, namespace: kube-system,")  # the user's DNS pod and Service
    assert problems(own) == []


STATEFUL = """
name: d
nodes: [{name: n1}]
pods:
  - {name: web-0, node: n1, ip: 10.244.0.2, hostname: web-0, subdomain: nginx, labels: {app: nginx}}
  - {name: web-1, node: n1, ip: 10.244.0.3, hostname: web-1, subdomain: nginx, labels: {app: nginx}}
  - {name: stray, node: n1, ip: 10.244.0.4, subdomain: nginx, labels: {app: nginx}}
  - {name: other, node: n1, ip: 10.244.0.5, hostname: box, subdomain: elsewhere, labels: {app: nginx}}
  - {name: apart, node: n1, namespace: shop, ip: 10.244.0.6, hostname: web-9, subdomain: nginx, labels: {app: nginx}}
services:
  - {name: nginx, selector: {app: nginx}, clusterIP: None, ports: [{name: web, port: 80}]}
  - {name: plain, selector: {app: nginx}, clusterIP: 10.96.0.30, ports: [{port: 80}]}
"""


def test_a_pod_with_hostname_and_subdomain_is_named_by_its_hostname_under_that_service_only():
    """The EndpointSlice controller gives an endpoint a hostname when its pod has spec.hostname and its
    spec.subdomain is the Service's name, in one namespace (ShouldSetHostname); CoreDNS then names the endpoint
    by it (A, SRV target, PTR), as a StatefulSet's pods behind their headless Service: web-0.nginx.default.svc."""
    records = opts(STATEFUL)
    svc = "nginx.default.svc.cluster.local"
    assert f"web-0.{svc},10.244.0.2" in records and f"web-1.{svc},10.244.0.3" in records
    assert f"10-244-0-4.{svc},10.244.0.4" in records  # subdomain without hostname: by its address
    assert f"10-244-0-5.{svc},10.244.0.5" in records and not [r for r in records if r.startswith("box.")]
    assert not [r for r in records if "web-9" in r]  # another namespace's pod is no endpoint of this Service
    # under another Service (its subdomain is not that one's name) the pod goes by its address
    assert "10-244-0-2.plain.default.svc.cluster.local,10.244.0.2" in records
    # its PTR: the first --host-record of its address, the headless Service's (before plain's endpoints)
    assert records.index(f"web-0.{svc},10.244.0.2") < records.index("10-244-0-2.plain.default.svc.cluster.local,"
                                                                   "10.244.0.2")
    srv = opts(STATEFUL, "--srv-host")
    assert f"_web._tcp.{svc},web-0.{svc},80,0,25" in srv and f"_web._tcp.{svc},web-1.{svc},80,0,25" in srv
    assert f"_web._tcp.{svc},10-244-0-4.{svc},80,0,25" in srv


def test_the_name_of_a_named_port_answers_a_with_the_cluster_ip_or_its_endpoints():
    """CoreDNS's findServices matches ``_<port>._<proto>`` for any type: A answers the ClusterIP (a headless
    Service's endpoints of that port), where the name owned only SRV records (NODATA); never an address's PTR."""
    text = TOPO + """  - {name: hl, clusterIP: None, selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}
"""
    records = opts(text)
    web = "web.default.svc.cluster.local"
    assert [r for r in records if r.endswith(web + ",10.96.0.20") and r[0] == "_"] == [
        f"_http._tcp.{web},10.96.0.20", f"_metrics._tcp.{web},10.96.0.20"]  # the unnamed 7000/UDP: none
    hl = "hl.default.svc.cluster.local"
    assert [r for r in records if r.startswith("_http._tcp." + hl)] == [
        f"_http._tcp.{hl},10.244.0.2", f"_http._tcp.{hl},10.244.1.2"]
    first = {}
    for r in records:
        name, ip = r.rsplit(",", 1)
        first.setdefault(ip, name)
    assert not [name for name in first.values() if name.startswith("_")]


def test_every_namespace_that_exists_has_its_svc_and_pod_names():
    """``<ns>.svc.cluster.local`` and ``<ns>.pod.cluster.local`` of a namespace that exists are NODATA in CoreDNS
    (findServices/findPods: an empty name in a namespace that exists), NXDOMAIN otherwise: a record of a
    private-use type on each makes dnsmasq answer NODATA for every type a client asks."""
    names = [f"{ns}.{kind}.cluster.local,{dnsrecords.NAMESPACE_RR_TYPE}"
             for ns in ("default", "kube-node-lease", "kube-public", "kube-system", "other", "shop")
             for kind in ("svc", "pod")]
    assert opts(option="--dns-rr") == names
    assert 65280 <= dnsrecords.NAMESPACE_RR_TYPE <= 65534  # RFC 6895: private use


def test_endpoints_of_one_hostname_give_one_srv_record_of_a_named_port():
    """QA qd59 3: two pods of one hostname and subdomain (db-0 and db-1, both `hostname: db`) behind their headless
    Service are two endpoints of one name: CoreDNS's SRV drops a record whose target and port it has already given
    (backend_lookup.go isDuplicate), after the weights were shared among both; dnsmasq got the --srv-host twice."""
    text = """
name: d
nodes: [{name: n1}]
namespaces: [{name: quiet}]
pods:
  - {name: db-0, node: n1, namespace: quiet, ip: 10.244.0.2, hostname: db, subdomain: dbs, labels: {app: db}}
  - {name: db-1, node: n1, namespace: quiet, ip: 10.244.0.3, hostname: db, subdomain: dbs, labels: {app: db}}
services:
  - name: dbs
    namespace: quiet
    clusterIP: None
    selector: {app: db}
    ports: [{name: pg, port: 5432}, {name: pgu, port: 5432, protocol: UDP}]
"""
    svc = "dbs.quiet.svc.cluster.local"
    assert [r for r in opts(text, "--srv-host") if svc in r] == [
        f"_pg._tcp.{svc},db.{svc},5432,0,50", f"_pgu._udp.{svc},db.{svc},5432,0,50", f"{svc},db.{svc},5432,0,25",
        f"db.{svc},db.{svc},5432,0,25"]  # the endpoint name's own, of both endpoints
    # both addresses answer the name, each with its PTR
    assert [r for r in opts(text) if r.startswith(f"db.{svc},")] == [f"db.{svc},10.244.0.2", f"db.{svc},10.244.0.3"]


def test_an_endpoint_named_by_its_hostname_has_that_ptr_whatever_the_services_order():
    """QA qd59 4: a pod with hostname and subdomain behind its headless Service has the PTR
    <hostname>.<subdomain>.<ns>.svc.<zone> (spec 2.4.3); a ClusterIP Service that selects it too, listed first in
    the topology, gave it its dashed name under that Service instead (dnsmasq: the first line of an address)."""
    pods, services = STATEFUL.split("services:\n")
    first = pods + "services:\n" + "".join(reversed(services.splitlines(keepends=True)))  # plain, then nginx
    assert first.index("name: plain") < first.index("name: nginx")
    ptr = {}
    for ip, name in hosts(first):
        ptr.setdefault(ip, name)
    svc = "nginx.default.svc.cluster.local"
    assert ptr["10.244.0.2"] == f"web-0.{svc}" and ptr["10.244.0.3"] == f"web-1.{svc}"
    # one without a hostname of that Service: its dashed name under the first Service that selects it
    assert ptr["10.244.0.4"] == "10-244-0-4.plain.default.svc.cluster.local"
    assert ptr["10.244.0.5"] == "10-244-0-5.plain.default.svc.cluster.local"


def test_a_headless_services_endpoint_name_answers_srv_with_its_own_ports():
    """QA qd59 7: CoreDNS's findServices matches an endpoint by its name for any type, so `SRV
    web-0.nginx.default.svc.cluster.local` answers one record per port of the endpoint, at itself (backend_lookup.go
    SRV: weights shared, a target and port given twice dropped); dnsmasq had none (NODATA). A ClusterIP Service's
    endpoint names have none: their records would restart dnsmasq at every endpoint change (docs/fidelity.md)."""
    srv = opts(STATEFUL, "--srv-host")
    svc = "nginx.default.svc.cluster.local"
    assert [r for r in srv if r.startswith(("web-", "10-"))] == [
        f"web-0.{svc},web-0.{svc},80,0,100", f"web-1.{svc},web-1.{svc},80,0,100",
        f"10-244-0-4.{svc},10-244-0-4.{svc},80,0,100", f"10-244-0-5.{svc},10-244-0-5.{svc},80,0,100"]
    text = STATEFUL.replace("ports: [{name: web, port: 80}]", "ports: [{name: web, port: 80}, {port: 81}, "
                                                                "{name: webu, port: 80, protocol: UDP}]")
    assert [r for r in opts(text, "--srv-host") if r.startswith(f"web-0.{svc},")] == [
        f"web-0.{svc},web-0.{svc},80,0,33", f"web-0.{svc},web-0.{svc},81,0,33"]
    assert not [r for r in srv if r.startswith("10-244-0-2.plain.")]
