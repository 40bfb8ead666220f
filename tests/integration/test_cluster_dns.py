"""Cluster DNS answers as a kubeadm/minikube CoreDNS does (root): real questions from a pod, through the
DNS Service's ClusterIP (kube-proxy's DNAT to the kube-dns pod), read record by record.

What CoreDNS answers: the Kubernetes DNS specification (kubernetes/dns docs/specification.md) and
CoreDNS's plugin/kubernetes with the Corefile ``kubernetes cluster.local in-addr.arpa ip6.arpa { pods
insecure; fallthrough in-addr.arpa ip6.arpa; ttl 30 }`` (the plugin's kubernetes.go findServices and
findPods, reverse.go, and plugin/backend_lookup.go SRV and SOA). Flags ``qr aa rd``, no ``ra``: the
kubernetes plugin answers as the authority and does not recurse. docs/fidelity.md shows the same answers
beside CoreDNS's (tests/integration/test_fidelity.py).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest

from dns_query import ask, dig, reverse
from helpers import NETLAB, diff_snapshots, host_snapshot, in_netns, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

DNS = "10.96.0.10"
WEB = "web.default.svc.cluster.local"
TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
namespaces: [{{name: shop}}]
pods:
  - {{name: web-1, node: n1, ip: 10.244.0.2, labels: {{app: web}}}}
  - {{name: client, node: n1, ip: 10.244.0.3}}
  - {{name: cart-1, node: n1, ip: 10.244.0.5, namespace: shop, labels: {{app: cart}}}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: 10.96.0.20
    ports: [{{name: http, port: 80, targetPort: 8080}}, {{name: metrics, port: 9100, targetPort: 8080}}]
  - {{name: web-np, type: NodePort, selector: {{app: web}}, clusterIP: 10.96.0.21,
     ports: [{{port: 80, targetPort: 8080, nodePort: 30080}}]}}
  - {{name: cart, namespace: shop, selector: {{app: cart}}, clusterIP: 10.96.0.30,
     ports: [{{port: 80, targetPort: 8080}}]}}
"""
SOA = "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. <serial> 7200 1800 86400 30"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("dns")
    before = host_snapshot()
    path = write_topology(tmp_path_factory.mktemp("cluster-dns"), TOPOLOGY.format(lab=name))
    with lab_up(path, name):
        yield name
    assert diff_snapshots(before, host_snapshot()) == []


def q(lab: str, *questions: str, tcp: bool = False) -> list[dict]:
    return ask(f"{lab}-client", DNS, *questions, tcp=tcp)


def answers(lab: str, question: str) -> list[str]:
    (a,) = q(lab, question)
    assert a["status"] == "NOERROR" and a["flags"] == "qr aa rd", a
    return sorted(a["answer"])


def test_a_service_name_is_its_cluster_ip_for_30_seconds(lab):
    (a,) = q(lab, "web.default.svc.cluster.local")
    assert dig(a, "answer") == "status: NOERROR, flags: qr aa rd\n" \
                               "ANSWER: web.default.svc.cluster.local. 30 IN A 10.96.0.20\n"
    # the same over TCP (53/TCP is the DNS Service's second port)
    (t,) = q(lab, "web.default.svc.cluster.local", tcp=True)
    assert t["answer"] == a["answer"]


def test_srv_per_named_port_and_every_port_under_the_service_name(lab):
    web = "web.default.svc.cluster.local"
    assert answers(lab, f"_http._tcp.{web} SRV") == [f"_http._tcp.{web}. 30 IN SRV 0 100 80 {web}."]
    assert answers(lab, f"_metrics._tcp.{web} SRV") == [f"_metrics._tcp.{web}. 30 IN SRV 0 100 9100 {web}."]
    assert answers(lab, f"{web} SRV") == [f"{web}. 30 IN SRV 0 50 80 {web}.", f"{web}. 30 IN SRV 0 50 9100 {web}."]
    kube_dns = "kube-dns.kube-system.svc.cluster.local"
    assert answers(lab, f"_dns._udp.{kube_dns} SRV") == [f"_dns._udp.{kube_dns}. 30 IN SRV 0 100 53 {kube_dns}."]
    # no such port, and an unnamed port has no _<port>._<proto> name
    assert [a["status"] for a in q(lab, f"_https._tcp.{web} SRV", f"_http._udp.{web} SRV")] == ["NXDOMAIN"] * 2


def test_a_pod_name_spells_any_address_in_a_namespace_that_exists(lab):
    assert answers(lab, "10-244-0-3.default.pod.cluster.local") == [
        "10-244-0-3.default.pod.cluster.local. 30 IN A 10.244.0.3"]
    assert answers(lab, "192-0-2-7.shop.pod.cluster.local") == ["192-0-2-7.shop.pod.cluster.local. 30 IN A 192.0.2.7"]
    (nowhere,) = q(lab, "10-244-0-3.nowhere.pod.cluster.local")
    assert nowhere["status"] == "NXDOMAIN" and nowhere["authority"][0].startswith("cluster.local. 30 IN SOA")


def test_ptr_of_cluster_ips_endpoints_and_other_pods(lab):
    assert answers(lab, f"{reverse('10.96.0.20')} PTR") == [
        f"{reverse('10.96.0.20')}. 30 IN PTR web.default.svc.cluster.local."]
    # an endpoint: <dashed IP>.<svc>.<ns>.svc.<zone>, a name that answers forward too (dnsmasq keeps one PTR
    # an address: the first Service's; CoreDNS gives one for each Service that selects the pod)
    assert answers(lab, f"{reverse('10.244.0.2')} PTR") == [
        f"{reverse('10.244.0.2')}. 30 IN PTR 10-244-0-2.web.default.svc.cluster.local."]
    assert answers(lab, "10-244-0-2.web-np.default.svc.cluster.local") == [
        "10-244-0-2.web-np.default.svc.cluster.local. 30 IN A 10.244.0.2"]
    assert answers(lab, f"{reverse('10.244.0.5')} PTR") == [
        f"{reverse('10.244.0.5')}. 30 IN PTR 10-244-0-5.cart.shop.svc.cluster.local."]
    # a pod no Service selects, and a service address no Service holds: NXDOMAIN from the cluster's own
    # reverse zones (it was REFUSED), never a synthesized pod name
    client, unused = q(lab, f"{reverse('10.244.0.3')} PTR", f"{reverse('10.96.0.99')} PTR")
    assert dig(client, "answer", "authority") == (
        "status: NXDOMAIN, flags: qr aa rd\n"
        "AUTHORITY: 244.10.in-addr.arpa. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. <serial> "
        "7200 1800 86400 30\n")
    assert unused["status"] == "NXDOMAIN" and not unused["answer"]


def test_kubernetes_default_answers_although_no_api_server_does(lab):
    api = "kubernetes.default.svc.cluster.local"
    assert answers(lab, api) == [f"{api}. 30 IN A 10.96.0.1"]
    assert answers(lab, f"_https._tcp.{api} SRV") == [f"_https._tcp.{api}. 30 IN SRV 0 100 443 {api}."]
    assert answers(lab, f"{reverse('10.96.0.1')} PTR") == [f"{reverse('10.96.0.1')}. 30 IN PTR {api}."]
    # Kubernetes' "Debugging DNS Resolution", first step: nslookup kubernetes.default (through the search path)
    assert in_netns(f"{lab}-client", "getent", "hosts", "kubernetes.default").stdout.split() == ["10.96.0.1", api]
    # ... and nothing answers at the address: no kube-proxy rule, the packet leaves by the node's default route
    proc = in_netns(f"{lab}-client", sys.executable, "-c",
                    "import socket; socket.create_connection(('10.96.0.1', 443), timeout=3)")
    assert proc.returncode != 0 and ("OSError" in proc.stderr or "timed out" in proc.stderr), proc.stderr


def test_negative_answers_carry_corednss_soa(lab):
    nope, aaaa, txt, outside = q(lab, "nope.default.svc.cluster.local", "web.default.svc.cluster.local AAAA",
                                 "dns-version.cluster.local TXT", "example.com")
    assert dig(nope, "answer", "authority") == f"status: NXDOMAIN, flags: qr aa rd\nAUTHORITY: {SOA}\n"
    # the name exists, not with that type: NODATA, no NXDOMAIN
    assert dig(aaaa, "answer", "authority") == f"status: NOERROR, flags: qr aa rd\nAUTHORITY: {SOA}\n"
    assert txt["answer"] == ['dns-version.cluster.local. 30 IN TXT "1.1.0"']
    # outside the cluster: a real cluster forwards upstream; the lab has no upstream
    assert outside["status"] == "REFUSED"


def test_a_namespace_that_exists_has_names_with_no_data_and_one_that_does_not_none(lab):
    """CoreDNS findServices/findPods: an empty Service or pod name is NODATA in a namespace that exists (kube-public,
    every cluster's; shop; default.pod, under which every pod name answers), NXDOMAIN in one that does not."""
    nodata = f"status: NOERROR, flags: qr aa rd\nAUTHORITY: {SOA}\n"
    for name in ("kube-public.svc.cluster.local", "kube-public.svc.cluster.local AAAA", "shop.pod.cluster.local",
                 "default.pod.cluster.local", "default.pod.cluster.local TXT", "kube-node-lease.svc.cluster.local"):
        (a,) = q(lab, name)
        assert dig(a, "answer", "authority") == nodata, name
    for name in ("nowhere.svc.cluster.local", "nowhere.pod.cluster.local"):
        (a,) = q(lab, name)
        assert dig(a, "answer", "authority") == f"status: NXDOMAIN, flags: qr aa rd\nAUTHORITY: {SOA}\n", name
    # ANY (scapy's ALL, type 255) is NODATA as in CoreDNS (handler.go: no records for another type), also where
    # dnsmasq holds the private-use record that makes a namespace's name exist: only a TYPE65280 question shows
    # it (README said ANY did too, QA qd59 8); a Service's name too
    for name in ("default.svc.cluster.local ALL", "shop.pod.cluster.local ALL", f"{WEB} ALL"):
        (a,) = q(lab, name)
        assert dig(a, "answer", "authority") == nodata, name


def test_the_name_of_a_named_port_answers_a_with_the_cluster_ip(lab):
    """CoreDNS findServices matches _<port>._<proto> for every type: A is the ClusterIP (it was NODATA)."""
    assert answers(lab, f"_http._tcp.{WEB}") == [f"_http._tcp.{WEB}. 30 IN A 10.96.0.20"]
    (udp,) = q(lab, f"_http._udp.{WEB}")
    assert udp["status"] == "NXDOMAIN"
    # the ClusterIP's PTR stays the Service's own name
    assert answers(lab, f"{reverse('10.96.0.20')} PTR") == [f"{reverse('10.96.0.20')}. 30 IN PTR {WEB}."]


def test_names_through_the_search_path_of_each_namespace(lab):
    for name, ip in (("web", "10.96.0.20"), ("web.default", "10.96.0.20"), ("cart.shop", "10.96.0.30"),
                     ("kube-dns.kube-system", DNS)):
        out = in_netns(f"{lab}-client", "getent", "hosts", name)
        assert out.returncode == 0 and out.stdout.split()[0] == ip, (name, out.stdout, out.stderr)
    # from a pod of namespace shop, its own Service by its short name
    out = in_netns(f"{lab}-cart-1", "getent", "hosts", "cart")
    assert out.stdout.split() == ["10.96.0.30", "cart.shop.svc.cluster.local"], out.stdout + out.stderr
    assert in_netns(f"{lab}-cart-1", "getent", "hosts", "web").returncode != 0  # not in shop


def test_the_dns_pod_logs_each_question_as_its_authority(lab):
    q(lab, "web.default.svc.cluster.local")
    log = subprocess.run([sys.executable, "-m", "netlab", "logs", "--lab", lab, "kube-dns"], capture_output=True,
                         text=True, timeout=30).stdout
    assert "auth[A] web.default.svc.cluster.local from 10.244.0.3" in log


def test_probe_asks_the_dns_pod_and_its_cluster_ip_a_real_question_and_checks_the_answer(lab):
    """`probe` sends a DNS question to port 53 of the add-on, over UDP and TCP (it sent an echo line dnsmasq drops,
    so it left 53/UDP out, and a connect alone on 53/TCP): every pod and the node to the pod, every pod to the
    ClusterIP; each answer must be the DNS Service's own A record, and dnsmasq's log shows each question arrive
    from its sender's own address."""
    report = json.loads(netlab("probe", "--lab", lab, "-o", "json").stdout)
    asked = [r for r in report["probes"] if r["dns"] is not None]
    pods, node_ip = {"web-1": "10.244.0.2", "client": "10.244.0.3", "cart-1": "10.244.0.5"}, "10.244.0.1"
    assert sorted((r["source"], r["destination"], r["destination_ip"], r["protocol"]) for r in asked) == sorted(
        [(s, "kube-dns", "10.244.0.4", proto) for s in [*pods, "n1"] for proto in ("udp", "tcp")]
        + [(s, "kube-dns", DNS, proto) for s in [*pods, "kube-dns"] for proto in ("udp", "tcp")])  # as `get` names
    for r in asked:
        assert (r["port"], r["outcome"], r["as_expected"]) == (53, "reply", True), r
        assert r["dns"] == {"question": "A kube-dns.kube-system.svc.cluster.local", "expected_a": DNS,
                            "answer": {"rcode": "NOERROR", "a": [DNS]}}, r
    log = subprocess.run([sys.executable, "-m", "netlab", "logs", "--lab", lab, "kube-dns"], capture_output=True,
                         text=True, timeout=30).stdout
    for sender in [*pods.values(), node_ip]:  # no NAT on the way, through the ClusterIP too (rule 1)
        assert f"auth[A] kube-dns.kube-system.svc.cluster.local from {sender}" in log, sender


def capture_while_asking(lab: str, *args: str, questions: tuple[str, ...] = (WEB,)) -> str:
    """`netlab capture` on the DNS pod's eth0, the questions from the client once the capture says it is reading
    (its "capturing on" line on stderr, as tcpdump's "listening on"), then Ctrl-C once the answers came back (the
    frames queued by then are kept, as tcpdump keeps them): its stdout."""
    proc = subprocess.Popen(NETLAB + ["capture", "--lab", lab, "kube-dns:eth0", "-c", "50", "--timeout", "30", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None and "capturing on" in proc.stderr.readline()
        q(lab, *questions)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    return out


QUESTIONS = (WEB, f"_http._tcp.{WEB} SRV", "nope.default.svc.cluster.local", "cluster.local SOA",
             f"{reverse('10.96.0.20')} PTR", f"{WEB} AAAA")
# each answer's words, as tcpdump -vvv prints them (dns_query asks with id 0x4242: 16962, recursion desired)
ANSWERS = [f" q: A? {WEB}. 1/1/0 {WEB}. [30s] A 10.96.0.20 ns: cluster.local. [30s] NS ns.dns.cluster.local. (",
           f" q: SRV? _http._tcp.{WEB}. 1/1/0 _http._tcp.{WEB}. [30s] SRV {WEB}.:80 0 100 ns: ",
           " NXDomain*- q: A? nope.default.svc.cluster.local. 0/1/0 ns: cluster.local. [30s] SOA ns.dns.cluster.local. "
           "hostmaster.cluster.local. ",
           " q: SOA? cluster.local. 1/1/0 cluster.local. [30s] SOA ns.dns.cluster.local. hostmaster.cluster.local. ",
           f" q: PTR? 20.0.96.10.in-addr.arpa. 1/1/0 20.0.96.10.in-addr.arpa. [30s] PTR {WEB}. ns: ",
           f" q: AAAA? {WEB}. 0/1/0 ns: cluster.local. [30s] SOA ns.dns.cluster.local. "]


def test_capture_prints_every_dns_question_and_answer_as_tcpdump_words_them(lab):
    """`netlab capture` on the DNS pod's eth0 while a pod asks: each question, and each answer with its id, rcode,
    question and records of every section, as tcpdump -vvv words them: A, a named port's SRV, NXDOMAIN and
    NODATA with the SOA, the SOA, a PTR (an SRV or SOA answer printed `DNS Ans` before, with no id, rcode or
    record; and `IP / UDP a:53 / ...` in scapy's words); -o json's summary and dns say the same."""
    text = capture_while_asking(lab, "udp port 53", questions=QUESTIONS).splitlines()
    said = [m.group(1) for m in map(re.compile(r"IP \(ttl 64\) \S+ > \S+: (.*)$").search, text) if m]
    assert len(said) == 2 * len(QUESTIONS) == len(text), text  # the filter: the DNS frames only
    asked = re.compile(r"IP \(ttl 64\) 10\.244\.0\.3\.\d+ > 10\.244\.0\.4\.53: "
                       + re.escape(f"16962+ A? {WEB}. (47)") + "$")
    assert any(asked.search(line) for line in text), text
    for answer in ANSWERS:
        assert any(s.startswith("16962") and answer in s for s in said), (answer, said)
    assert not any("DNS Ans" in line for line in text), text
    rows = json.loads(capture_while_asking(lab, "-o", "json", "udp port 53", questions=QUESTIONS))["frames"]
    assert sorted(r["dns"] for r in rows) == sorted(said), rows  # the same words
    assert all(r["summary"].endswith(f": {r['dns']}") and r["summary"].startswith(f"{r['src_mac']} > ")
               for r in rows), rows
