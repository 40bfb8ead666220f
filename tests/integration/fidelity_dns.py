"""The cluster DNS rows of the fidelity table (test_fidelity.py): questions from the client pod of a lab of
topologies/services.yaml to the DNS Service's ClusterIP (tests/dns_query.py, shown as dig shows them), beside
what CoreDNS answers with kubeadm's and minikube's Corefile, read from its plugin/kubernetes
(tests/integration/test_cluster_dns.py says more)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from dns_query import ask, dig, reverse
from helpers import in_netns, lab_up, netlab, unique_lab, write_topology

ROOT = Path(__file__).parent.parent.parent

SERVICES = (ROOT / "topologies" / "services.yaml").read_text()
# What CoreDNS answers, from its plugin/kubernetes with the Corefile of kubeadm and minikube: `kubernetes
# cluster.local in-addr.arpa ip6.arpa { pods insecure; fallthrough in-addr.arpa ip6.arpa; ttl 30 }`. The
# plugin answers as the zone's authority without recursion (handler.go: Authoritative, no RecursionAvailable);
# a name it has no records for is NXDOMAIN with the SOA of plugin/backend_lookup.go (ns.dns.<zone>,
# hostmaster.<zone>, 7200 1800 86400, minimum the ttl).
COREDNS = "CoreDNS plugin/kubernetes"
COREDNS_SOA = "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. <serial> 7200 1800 86400 30"
DNS_QUESTIONS = [  # (object, dig command, question, sections, CoreDNS's answer, where it comes from, why not the same)
    ("cluster DNS: a Service", "dig +noall +comments +answer web.default.svc.cluster.local",
     "web.default.svc.cluster.local", ("answer",),
     "status: NOERROR, flags: qr aa rd\nANSWER: web.default.svc.cluster.local. 30 IN A 10.96.0.20\n",
     f"{COREDNS} findServices (spec 2.3.1: the ClusterIP), ttl 30", None),
    ("cluster DNS: a named port",
     "dig +noall +comments +answer +authority +additional SRV _http._tcp.web.default.svc.cluster.local",
     "_http._tcp.web.default.svc.cluster.local SRV", ("answer", "authority", "additional"),
     "status: NOERROR, flags: qr aa rd\n"
     "ANSWER: _http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local.\n"
     "ADDITIONAL: web.default.svc.cluster.local. 30 IN A 10.96.0.20\n",
     f"{COREDNS} findServices and plugin/backend_lookup.go SRV (spec 2.3.2: priority 0, the record's share of a "
     "weight of 100, the target's A record as additional data)",
     "dnsmasq, as an authority, names the zone's NS record in the authority section of every answer, and puts no "
     "A record of the target in the additional section (a client asks for it)"),
    ("cluster DNS: a pod name", "dig +noall +comments +answer 10-244-0-2.default.pod.cluster.local",
     "10-244-0-2.default.pod.cluster.local", ("answer",),
     "status: NOERROR, flags: qr aa rd\nANSWER: 10-244-0-2.default.pod.cluster.local. 30 IN A 10.244.0.2\n",
     f"{COREDNS} findPods, pods insecure: the address the name spells, in a namespace that exists", None),
    ("cluster DNS: a pod name's AAAA",
     "dig +noall +comments +answer +authority AAAA 10-244-0-2.default.pod.cluster.local",
     "10-244-0-2.default.pod.cluster.local AAAA", ("answer", "authority"),
     f"status: NOERROR, flags: qr aa rd\nAUTHORITY: {COREDNS_SOA}\n",
     f"{COREDNS} findPods (the name exists: no AAAA record, no error)",
     "dnsmasq makes pod names up for their A records only (--synth-domain), so the name of an AAAA question is "
     "unknown to it: NXDOMAIN; glibc's getaddrinfo, which the lab's processes use, takes the A answer all the same"),
    ("cluster DNS: an endpoint's address", "dig +noall +comments +answer -x 10.244.0.2",
     f"{reverse('10.244.0.2')} PTR", ("answer",),
     "status: NOERROR, flags: qr aa rd\n"
     + "".join(f"ANSWER: {reverse('10.244.0.2')}. 30 IN PTR 10-244-0-2.{svc}.default.svc.cluster.local.\n"
               for svc in ("web", "web-np", "web-lb")),
     f"{COREDNS} reverse.go serviceRecordForIP: one PTR for each Service the pod is an endpoint of, named "
     "after its address, the Service and the namespace",
     "dnsmasq gives an address one PTR record: its name under a Service that names it by its hostname (spec "
     "2.4.3), if one does, else its name under the first Service (topology order) that selects it"),
    ("cluster DNS: a pod no Service selects", "dig +noall +comments +answer +authority -x 10.244.0.3",
     f"{reverse('10.244.0.3')} PTR", ("answer", "authority"),
     "status: NXDOMAIN, flags: qr ... rd ...\nAUTHORITY: ... IN SOA ...\n",
     f"{COREDNS} reverse.go finds no Service and no endpoint: fallthrough in-addr.arpa passes the question on "
     "to forward, whose upstream says NXDOMAIN for a private address, with its own SOA",
     "a lab has no upstream: the cluster DNS answers for the pod and service CIDRs' reverse zones itself"),
    ("cluster DNS: a ClusterIP", "dig +noall +comments +answer -x 10.96.0.20",
     f"{reverse('10.96.0.20')} PTR", ("answer",),
     f"status: NOERROR, flags: qr aa rd\nANSWER: {reverse('10.96.0.20')}. 30 IN PTR "
     "web.default.svc.cluster.local.\n",
     f"{COREDNS} reverse.go serviceRecordForIP (spec 2.3.3)", None),
    ("cluster DNS: the API server's Service", "dig +noall +comments +answer kubernetes.default.svc.cluster.local",
     "kubernetes.default.svc.cluster.local", ("answer",),
     "status: NOERROR, flags: qr aa rd\nANSWER: kubernetes.default.svc.cluster.local. 30 IN A 10.96.0.1\n",
     f"{COREDNS} findServices: every cluster's default/kubernetes, at the first address of the service CIDR. A "
     "lab has no API server: the name answers (the first step of Kubernetes' Debugging DNS Resolution), and "
     "nothing answers at 10.96.0.1:443", None),
    ("cluster DNS: the schema version", "dig +noall +comments +answer TXT dns-version.cluster.local",
     "dns-version.cluster.local TXT", ("answer",),
     'status: NOERROR, flags: qr aa rd\nANSWER: dns-version.cluster.local. 28800 IN TXT "1.1.0"\n',
     f"{COREDNS} kubernetes.go Services: the one TXT record (spec 2.2), its TTL hard-coded 28800",
     "dnsmasq, as the zone's authority, gives every record it answers one TTL (--auth-ttl, the Corefile's 30): "
     "it has no TTL of a record's own"),
    ("cluster DNS: the zone's name server",
     "dig +noall +comments +answer +additional NS cluster.local", "cluster.local NS", ("answer", "additional"),
     "status: NOERROR, flags: qr aa rd\nANSWER: cluster.local. 30 IN NS kube-dns.kube-system.svc.cluster.local.\n"
     "ADDITIONAL: kube-dns.kube-system.svc.cluster.local. 30 IN A 10.96.0.10\n",
     f"{COREDNS} ns.go nsAddrs (the Service of CoreDNS's own endpoint, kube-system/kube-dns) and "
     "plugin/backend_lookup.go NS (its address as additional data)",
     "dnsmasq has one name for its server, the MNAME of its SOA (ns.dns.cluster.local, as CoreDNS's SOA names "
     "it), and puts no address of it in the additional section (ns.dns.cluster.local answers A 10.96.0.10 when "
     "asked)"),
    ("cluster DNS: an endpoint's name, SRV",
     "dig +noall +comments +answer SRV 10-244-0-2.web.default.svc.cluster.local",
     "10-244-0-2.web.default.svc.cluster.local SRV", ("answer",),
     "status: NOERROR, flags: qr aa rd\nANSWER: 10-244-0-2.web.default.svc.cluster.local. 30 IN SRV 0 100 8080 "
     "10-244-0-2.web.default.svc.cluster.local.\n",
     f"{COREDNS} findServices (an endpoint matched by its name, for any type: one record per port of the "
     "endpoint, at itself) and plugin/backend_lookup.go SRV",
     "dnsmasq reads SRV records only from its command line, as it starts: the endpoints of a ClusterIP Service "
     "there would restart it at each change of them, which now only rewrites its hosts file (SIGHUP); a headless "
     "Service's endpoint names, whose records it has already, answer SRV as CoreDNS's"),
    ("cluster DNS: a name it does not know", "dig +noall +comments +authority nope.default.svc.cluster.local",
     "nope.default.svc.cluster.local", ("authority",),
     f"status: NXDOMAIN, flags: qr aa rd\nAUTHORITY: {COREDNS_SOA}\n",
     f"{COREDNS} handler.go and plugin/backend_lookup.go BackendError, SOA", None),
]


# Asked over TCP with EDNS, as dig asks (glibc asks over TCP only after a truncated answer, and without EDNS unless
# resolv.conf says `options edns0`): CoreDNS's answer is the one over UDP.
TCP_QUESTIONS = [
    ("cluster DNS: a Service, over TCP", "dig +tcp +noall +comments +answer web.default.svc.cluster.local",
     "web.default.svc.cluster.local", ("answer",),
     "status: NOERROR, flags: qr aa rd\nANSWER: web.default.svc.cluster.local. 30 IN A 10.96.0.20\n",
     f"{COREDNS} findServices, the answer over UDP (no extended DNS error)",
     "dnsmasq 2.90 adds an extended DNS error 17 (Filtered) to each answer over TCP of a question with EDNS: its "
     "TCP path (src/forward.c tcp_request) takes the code from a variable only its non-authoritative answers set, "
     "never set for the authoritative ones of --auth-zone. Nothing is filtered and the answer is whole; no option "
     "avoids it but giving up the authoritative mode, whose flags, SOA and NODATA answers are CoreDNS's"),
]


def dns_lab(tmp_path_factory):
    """A lab of topologies/services.yaml, as the fidelity audit of the cluster DNS had it (test_fidelity.py's
    dns_world)."""
    lab = unique_lab("fd")
    path = write_topology(tmp_path_factory.mktemp("fidelity-dns"),
                          re.sub(r"(?m)^name: svc$", f"name: {lab}", SERVICES))
    with lab_up(path, lab):
        yield lab


# What a ClusterFirst pod of namespace default finds in /etc/resolv.conf: the kubelet's DNS config
# (pkg/kubelet/network/dns: the cluster DNS Service's address, the search path of the pod's namespace, ndots:5),
# which the runtime writes as containerd's CRI does (search, nameserver, options lines; no comment).
KUBELET_RESOLV = ("search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\n"
                  "options ndots:5\n")
RESOLV_LINE = ("netlab adds one first line, a comment that says whose file it is, as in the hosts file: netlab "
               "rewrites and removes only files that begin with it (services/netns_files.py), also once the lab's "
               "state is gone (down --force); the kubelet's lines follow unchanged")


# The ports of kubeadm's and minikube's kube-dns Service (CoreDNS's add-on manifest): dns 53/UDP, dns-tcp 53/TCP
# and metrics 9153/TCP, CoreDNS's Prometheus endpoint (plugin/metrics, `prometheus :9153` in their Corefile).
COREDNS_PORTS = (("dns", "udp", 53), ("dns-tcp", "tcp", 53), ("metrics", "tcp", 9153))
NO_METRICS = ("the add-on's Service has no metrics port 9153/TCP (dnsmasq has no Prometheus endpoint), so a node "
              "holds no kube-proxy rules for 10.96.0.10:9153, and nothing answers there")


def kube_proxy_chain(port_name: str, protocol: str) -> str:
    """kube-proxy's KUBE-SVC chain of a Service port (pkg/proxy/iptables servicePortChainName: base32 of the
    sha256 of the port's name and protocol, 16 characters)."""
    digest = hashlib.sha256(f"kube-system/kube-dns:{port_name}{protocol}".encode()).digest()
    return "KUBE-SVC-" + base64.b32encode(digest).decode()[:16]


def kube_dns_rules() -> str:
    """The KUBE-SERVICES jumps of a kubeadm/minikube cluster's kube-dns Service, one per port."""
    return "".join(f'-A KUBE-SERVICES -d 10.96.0.10/32 -p {proto} -m comment --comment "kube-system/kube-dns:{name} '
                   f'cluster IP" -m {proto} --dport {port} -j {kube_proxy_chain(name, proto)}\n'
                   for name, proto, port in COREDNS_PORTS)


def dns_rows(lab: str) -> list[dict]:
    """The client pod's resolv.conf beside the kubelet's, and each question of DNS_QUESTIONS from it to the DNS
    Service, beside CoreDNS's answer."""
    text = netlab("exec", "--lab", lab, "client", "--", "cat", "/etc/resolv.conf").stdout
    first, rest = text.split("\n", 1)
    assert first.startswith(f"# netlab {lab}: ") and rest == KUBELET_RESOLV, text
    resolv = {"object": "pod resolv.conf", "command": "cat /etc/resolv.conf (netlab exec, in the client pod)",
              "netlab": text.replace(f"# netlab {lab}:", "# netlab demo:"), "real": KUBELET_RESOLV,
              "source": "the kubelet's ClusterFirst DNS config (pkg/kubelet/network/dns), written by the runtime "
                        "(containerd's CRI: search, nameserver and options lines)", "known": RESOLV_LINE}
    saved = in_netns(f"{lab}-node-1", "iptables-save", "-t", "nat", check=True).stdout
    mine = "".join(line + "\n" for line in saved.splitlines()
                   if line.startswith("-A KUBE-SERVICES ") and "kube-system/kube-dns:" in line)
    real = kube_dns_rules()
    assert mine == "".join(real.splitlines(keepends=True)[:2]), mine  # dns and dns-tcp as a real node's
    rules = {"object": "kube-dns Service rules", "command": "iptables-save -t nat (in a node): KUBE-SERVICES's lines of "
             "kube-dns", "netlab": mine, "real": real,
             "source": "kube-proxy's rules of kubeadm's and minikube's kube-dns Service (ports dns 53/UDP, dns-tcp "
                       "53/TCP, metrics 9153/TCP; chain names as pkg/proxy/iptables servicePortChainName makes them)",
             "known": NO_METRICS}
    answers = ask(f"{lab}-client", "10.96.0.10", *(q for _, _, q, *_ in DNS_QUESTIONS))
    answers += ask(f"{lab}-client", "10.96.0.10", *(q for _, _, q, *_ in TCP_QUESTIONS), tcp=True, edns=True)
    return [resolv, rules] + [{"object": obj, "command": cmd + " (in the client pod)", "netlab": dig(a, *sections),
                        "real": real, "source": source, "known": known}
                       for (obj, cmd, _, sections, real, source, known), a in zip(DNS_QUESTIONS + TCP_QUESTIONS,
                                                                                   answers)]
