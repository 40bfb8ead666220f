"""A headless Service (``clusterIP: None``) on a real lab (root), in both kube-proxy modes: no ClusterIP and no
kube-proxy rule on any node; the cluster DNS answers its name with its endpoints' pod IPs (and SRV with each
endpoint's own port), which a pod resolves through its resolv.conf and connects to directly; ``get`` shows
None; ``trace svc/NAME`` says in one line why it cannot, and ``probe`` passes.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from dns_query import ask
from helpers import in_netns, netlab, probe_failures

pytestmark = pytest.mark.root

DNS = "10.96.0.10"
FQDN = "db.default.svc.cluster.local"
TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: db-0, node: n1, labels: {{app: db}}, containers: [{{name: c, ports: [{{containerPort: 8080, name: pg}}]}}]}}
  - {{name: db-1, node: n2, labels: {{app: db}}, containers: [{{name: c, ports: [{{containerPort: 9090, name: pg}}]}}]}}
  - {{name: client, node: n1}}
services:
  - {{name: db, selector: {{app: db}}, clusterIP: None, ports: [{{name: pg, port: 5432, targetPort: pg}}]}}
  - {{name: empty, selector: {{app: none}}, clusterIP: None, ports: [{{port: 80}}]}}
"""

# Connects to each ADDR:PORT given; prints the echo server's pod and server address, one a line.
CONNECT = """
import json, socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=3)
    s.sendall(b"hi\\n")
    reply = json.loads(s.recv(4096))
    print(reply["pod"], reply["server"])
    s.close()
"""


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_its_name_answers_the_pods_and_kube_proxy_has_no_rule(labs, mode):
    lab = labs.name("nsv")
    labs.up(TOPOLOGY.format(lab=lab, mode=mode))
    ips = {p["name"]: p["ip"] for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    client = f"{lab}-client"

    # The cluster DNS: one A record per endpoint, SRV at each endpoint's name and its own port.
    a, srv = ask(client, DNS, FQDN, f"_pg._tcp.{FQDN} SRV")
    assert a["status"] == "NOERROR" and sorted(a["answer"]) == sorted(
        f"{FQDN}. 30 IN A {ips[p]}" for p in ("db-0", "db-1")), a
    # One without endpoints: NXDOMAIN, as CoreDNS's findServices answers a headless Service no address backs.
    [none] = ask(client, DNS, "empty.default.svc.cluster.local")
    assert none["status"] == "NXDOMAIN" and not none["answer"], none
    dashed = {p: ips[p].replace(".", "-") for p in ips}
    assert sorted(srv["answer"]) == sorted([f"_pg._tcp.{FQDN}. 30 IN SRV 0 50 8080 {dashed['db-0']}.{FQDN}.",
                                            f"_pg._tcp.{FQDN}. 30 IN SRV 0 50 9090 {dashed['db-1']}.{FQDN}."]), srv
    # What an application gets through the pod's resolv.conf (search default.svc.cluster.local), and where its
    # connections go: to the pods themselves, nothing translated.
    got = in_netns(client, "getent", "ahostsv4", "db", check=True).stdout
    assert {line.split()[0] for line in got.splitlines()} == {ips["db-0"], ips["db-1"]}, got
    reached = in_netns(client, "python3", "-c", CONNECT, f"{ips['db-0']}:8080", f"{ips['db-1']}:9090",
                       check=True).stdout.split("\n")
    assert reached[:2] == [f"db-0 {ips['db-0']}:8080", f"db-1 {ips['db-1']}:9090"], reached

    # No kube-proxy rule names it, on any node, in either mode.
    for node in ("n1", "n2"):
        rules = in_netns(f"{lab}-{node}", "iptables-save", check=True).stdout
        if mode == "nftables":
            rules += in_netns(f"{lab}-{node}", "nft", "-j", "list", "ruleset", check=True).stdout
            assert "kube-system/kube-dns" in rules  # the listing is kube-proxy's, with the DNS Service in it
        else:
            assert "kube-system/kube-dns" in rules
        assert "default/db" not in rules and ":8080" not in rules and ":9090" not in rules

    # get shows None as kubectl does; trace refuses svc/db in one line; probe passes and says why it skipped it.
    (svc,) = [s for s in json.loads(netlab("get", "services", "--lab", lab, "-o", "json").stdout)["items"]
              if s["name"] == "db"]
    assert svc["cluster_ip"] == "None" and [e["port"] for e in svc["ports"][0]["endpoints"]] == [8080, 9090]
    table = netlab("get", "services", "--lab", lab).stdout
    assert any(line.split()[:3] == ["db", "ClusterIP", "None"] for line in table.splitlines()), table
    proc = netlab("trace", "--lab", lab, "client", "svc/db", check=False)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "svc/db is headless (clusterIP: None): it has no ClusterIP" in proc.stderr
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, probe_failures(report)
    assert any(n.startswith("svc/db: not probed: headless") for n in report["not_probed"]), report["not_probed"]


STATEFUL = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: web-0, node: n1, hostname: web-0, subdomain: nginx, labels: {{app: nginx}}}}
  - {{name: web-1, node: n1, hostname: web-1, subdomain: nginx, labels: {{app: nginx}}}}
  - {{name: client, node: n1}}
services:
  - {{name: nginx, selector: {{app: nginx}}, clusterIP: None, ports: [{{name: web, port: 8080}}]}}
"""


def test_a_pod_with_hostname_and_subdomain_has_its_own_name_its_hostname_and_its_ptr(labs):
    """A StatefulSet's pods behind their headless Service: `hostname` in the pod prints spec.hostname, and the
    cluster DNS names each one <hostname>.<subdomain>.<namespace>.svc.cluster.local (A, SRV target, PTR), which
    a client resolves through its search path as `web-0.nginx` and connects to."""
    from dns_query import reverse
    from netlab.workload.uts import uts_path

    lab = labs.name("sts")
    path, _ = labs.up(STATEFUL.format(lab=lab))
    items = json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]
    ips = {p["name"]: p["ip"] for p in items}
    assert [(p["hostname"], p["subdomain"]) for p in items if p["name"] in ("web-0", "client")] == [
        ("web-0", "nginx"), (None, None)]
    fqdn = "nginx.default.svc.cluster.local"
    client = f"{lab}-client"
    a0, srv, ptr = ask(client, DNS, f"web-0.{fqdn}", f"_web._tcp.{fqdn} SRV", f"{reverse(ips['web-1'])} PTR")
    assert a0["status"] == "NOERROR" and a0["answer"] == [f"web-0.{fqdn}. 30 IN A {ips['web-0']}"], a0
    assert sorted(srv["answer"]) == [f"_web._tcp.{fqdn}. 30 IN SRV 0 50 8080 web-{i}.{fqdn}." for i in (0, 1)], srv
    assert ptr["answer"] == [f"{reverse(ips['web-1'])}. 30 IN PTR web-1.{fqdn}."], ptr
    # the endpoint's name answers SRV too, with its own port, as CoreDNS's findServices (QA qd59 7)
    [own] = ask(client, DNS, f"web-0.{fqdn} SRV")
    assert own["answer"] == [f"web-0.{fqdn}. 30 IN SRV 0 100 8080 web-0.{fqdn}."], own
    got = in_netns(client, "getent", "ahostsv4", "web-1.nginx", check=True).stdout  # search default.svc...
    assert {line.split()[0] for line in got.splitlines()} == {ips["web-1"]}, got
    reached = in_netns(client, "python3", "-c", CONNECT, f"{ips['web-1']}:8080", check=True).stdout.split("\n")
    assert reached[0] == f"web-1 {ips['web-1']}:8080", reached
    assert netlab("exec", "--lab", lab, "web-0", "--", "hostname").stdout.strip() == "web-0"
    # its full name from its own hosts file, as the kubelet writes it (no DNS asked)
    assert netlab("exec", "--lab", lab, "web-0", "--", "hostname", "-f").stdout.strip() == f"web-0.{fqdn}"
    # The topology gives web-1 another hostname: up sets it in the pod's UTS namespace, and its DNS name follows.
    with open(path) as fh:
        text = fh.read()
    with open(path, "w") as fh:
        fh.write(text.replace("hostname: web-1,", "hostname: db-1,"))
    up = netlab("up", "-t", path)
    assert "set pod web-1's hostname to db-1" in up.stdout, up.stdout
    assert netlab("exec", "--lab", lab, "web-1", "--", "hostname").stdout.strip() == "db-1"
    assert netlab("exec", "--lab", lab, "web-1", "--", "hostname", "-f").stdout.strip() == f"db-1.{fqdn}"
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    [a1] = ask(client, DNS, f"db-1.{fqdn}")
    assert a1["answer"] == [f"db-1.{fqdn}. 30 IN A {ips['web-1']}"], a1
    # A hostname changed by hand in a pod or a node is drift, and up sets it back.
    subprocess.run(["nsenter", f"--uts={uts_path(lab, 'web-0')}", "hostname", "hacked"], check=True)
    subprocess.run(["nsenter", f"--uts={uts_path(lab, 'n1')}", "hostname", "box"], check=True)
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1 and "containers: pod web-0: hostname is hacked, not web-0; up sets it" in st.stdout, st.stdout
    assert "uts: node n1: hostname is box, not n1; up sets it again" in st.stdout, st.stdout
    up = netlab("up", "-t", path).stdout
    assert "set pod web-0's hostname to web-0" in up and "set node n1's hostname to n1" in up, up
    assert netlab("exec", "--lab", lab, "web-0", "--", "hostname").stdout.strip() == "web-0"
    assert netlab("exec", "--lab", lab, "n1", "--", "hostname").stdout.strip() == "n1"


SHARED_HOSTNAME = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: db-0, node: n1, hostname: db, subdomain: dbs, labels: {{app: db}}}}
  - {{name: db-1, node: n1, hostname: db, subdomain: dbs, labels: {{app: db}}}}
  - {{name: client, node: n1}}
services:
  - {{name: dbs, clusterIP: None, selector: {{app: db}},
     ports: [{{name: pg, port: 5432}}, {{name: pgu, port: 5432, protocol: UDP}}]}}
"""


def test_endpoints_of_one_hostname_answer_one_srv_record(labs):
    """QA qd59 3: two pods of one hostname and subdomain are two endpoints of one name; CoreDNS answers a named
    port's SRV with one record of that target and port (the duplicate dropped after the weights were shared),
    where dnsmasq answered two alike."""
    lab = labs.name("dnh")
    labs.up(SHARED_HOSTNAME.format(lab=lab))
    ips = {p["name"]: p["ip"] for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    fqdn = "dbs.default.svc.cluster.local"
    pg, pgu, bare, a = ask(f"{lab}-client", DNS, f"_pg._tcp.{fqdn} SRV", f"_pgu._udp.{fqdn} SRV", f"{fqdn} SRV",
                           f"db.{fqdn}")
    assert pg["answer"] == [f"_pg._tcp.{fqdn}. 30 IN SRV 0 50 5432 db.{fqdn}."], pg
    assert pgu["answer"] == [f"_pgu._udp.{fqdn}. 30 IN SRV 0 50 5432 db.{fqdn}."], pgu
    assert bare["answer"] == [f"{fqdn}. 30 IN SRV 0 25 5432 db.{fqdn}."], bare
    assert sorted(a["answer"]) == sorted(f"db.{fqdn}. 30 IN A {ips[p]}" for p in ("db-0", "db-1")), a


PTR_ORDER = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: web-a, node: n1, labels: {{app: web}}}}
  - {{name: web-b, node: n1, hostname: web-0, subdomain: hl, labels: {{app: web}}}}
  - {{name: client, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{name: http, port: 80}}]}}
  - {{name: hl, selector: {{app: web}}, clusterIP: None, ports: [{{name: http, port: 80}}]}}
"""


def test_a_pods_ptr_is_its_hostname_name_though_a_cluster_ip_service_comes_first(labs):
    """QA qd59 4: the PTR of an endpoint a headless Service names by its hostname is <hostname>.<subdomain>.<ns>
    .svc.cluster.local (spec 2.4.3), also when a ClusterIP Service that selects the pod comes first in the
    topology (it was 10-244-...web.default...); a pod without one: its name under the first Service."""
    from dns_query import reverse

    lab = labs.name("dnp")
    labs.up(PTR_ORDER.format(lab=lab))
    ips = {p["name"]: p["ip"] for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    named, plain = ask(f"{lab}-client", DNS, f"{reverse(ips['web-b'])} PTR", f"{reverse(ips['web-a'])} PTR")
    assert named["answer"] == [f"{reverse(ips['web-b'])}. 30 IN PTR web-0.hl.default.svc.cluster.local."], named
    dashed = ips["web-a"].replace(".", "-")
    assert plain["answer"] == [f"{reverse(ips['web-a'])}. 30 IN PTR {dashed}.web.default.svc.cluster.local."], plain
