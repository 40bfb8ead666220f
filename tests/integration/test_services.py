"""Services with real traffic (root): ClusterIP, affinity, hairpin, reject, NodePort,
internet ingress and egress, the L4 load balancer, cluster DNS, endpoint changes.

One small lab for the module (unique name, always taken down); every client runs
inside a lab namespace through ``ip netns exec`` (which also mounts the pod's
``/etc/netns/<ns>/resolv.conf``); the echo servers are the pods' default
containers and answer with their pod name and the client address they saw.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from breaking import assert_as_planned
from helpers import diff_snapshots, host_snapshot, in_netns, lab_down_here, netlab, unique_lab, wait_for, up_here
from netlab import Lab
from netlab.kernel.netns import entered
from netlab.model.load import load_topology
from netlab.plan import nftables, services
from netlab.plan.internet import load_balancer_ips
from netlab.model.clusterdns import with_cluster_dns

pytestmark = pytest.mark.root

CLIENT = r"""
import json, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(n):
    try:
        s = socket.create_connection((host, port), timeout=3)
    except OSError as exc:
        out.append({"error": exc.__class__.__name__, "errno": exc.errno})
        continue
    s.sendall(b"hello\n")  # the echo server answers a first line at once (a silent client waits 0.5 s)
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    out.append(json.loads(data))
print(json.dumps(out))
"""

UDP_CLIENT = r"""
import json, socket, sys
host, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", sport))
s.settimeout(2)
s.sendto(b"hi", (host, port))
print(s.recv(4096).decode().strip())
"""

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
network:
  mode: vxlan
  underlay: {{cidr: 192.168.122.0/24, mtu: 1500}}
nodes:
  - {{name: minikube, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}}
  - {{name: minikube-m02, ip: 192.168.122.7, podCIDR: 10.244.1.0/24}}
pods:
  - {{name: fedora-1, node: minikube, ip: 10.244.0.2, labels: {{app: web}}}}
  - {{name: fedora-2, node: minikube-m02, ip: 10.244.1.3, labels: {{app: web}}}}
  - {{name: fedora-3, node: minikube, ip: 10.244.0.3}}
  - name: udp-1
    node: minikube-m02
    ip: 10.244.1.4
    labels: {{{udp_label}}}
    containers: [{{name: echo, ports: [{{containerPort: 5353, protocol: UDP}}]}}]
services:
  - name: web
    selector: {{app: web}}
    type: NodePort
    clusterIP: 10.96.0.20
    ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30080}}]
  - name: sticky
    selector: {{app: web}}
    clusterIP: 10.96.0.21
    sessionAffinity: ClientIP
    ports: [{{port: 8080}}]
  - name: empty
    selector: {{app: nothing}}
    type: NodePort
    clusterIP: 10.96.0.22
    ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30081}}]
  - name: resolver
    selector: {{app: udp}}
    clusterIP: 10.96.0.23
    ports: [{{name: dns, port: 53, targetPort: 5353, protocol: UDP}}]
  - name: pub
    selector: {{app: web}}
    type: LoadBalancer
    clusterIP: 10.96.0.24
    ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30082}}]
internet:
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: example, ip: 203.0.113.10}}]
"""
NODES = {"minikube": "192.168.122.215", "minikube-m02": "192.168.122.7"}


def write_topology(path, lab: str, udp_label: str = "app: udp", mode: str = "iptables") -> str:
    """The topology with the cluster DNS add-on applied (idempotent if netlab adds it itself)."""
    raw = path / "raw.yaml"
    raw.write_text(TOPOLOGY.format(lab=lab, udp_label=udp_label, mode=mode))
    topo = with_cluster_dns(load_topology(str(raw)))
    out = path / f"{lab}.yaml"
    out.write_text(json.dumps(topo.model_dump(mode="json", by_alias=True, exclude_none=True), indent=1))
    return str(out)


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def lab(request, tmp_path_factory):
    """The lab in each of kube-proxy's modes (cluster.kubeProxyMode): every test runs against both."""
    mode = request.param
    name = unique_lab("svc")
    tmp = tmp_path_factory.mktemp("services")
    before = host_snapshot()
    path = write_topology(tmp, name, mode=mode)
    try:
        Lab.up(path)  # in this process: the tests are of its Services, not of up or down
        yield {"name": name, "path": path, "tmp": tmp, "mode": mode}
    finally:
        lab_down_here(name)
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{name}-" not in leftovers
    assert not os.path.exists(f"/etc/netns/{name}-fedora-3")
    assert diff_snapshots(before, host_snapshot()) == []


def ns(lab, who: str) -> str:
    return f"{lab['name']}-{who}"


def connect(lab, who: str, host: str, port: int, n: int = 1) -> list[dict]:
    proc = in_netns(ns(lab, who), sys.executable, "-c", CLIENT, host, str(port), str(n), timeout=60 + 4 * n)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def pods_of(replies: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in replies:
        key = r.get("pod") or r.get("error", "?")
        out[key] = out.get(key, 0) + 1
    return out


def test_node_tables_are_exactly_the_plan(lab):
    assert_as_planned(lab["name"])
    save = in_netns(ns(lab, "minikube"), "iptables-save", "-t", "nat").stdout
    if lab["mode"] == "nftables":
        assert "KUBE-" not in save and "FLANNEL-POSTRTG" in save  # Flannel's chains stay iptables
        listed = in_netns(ns(lab, "minikube"), "nft", "list", "map", "ip", "kube-proxy", "service-ips").stdout
        chain = nftables.service_chain(_service_port(lab, "web"))
        assert f"10.96.0.20 . tcp . 80 : goto {chain}" in listed, listed
        return
    svc = services.svc_chain("default/web:http", "tcp")
    assert (f'-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment "default/web:http cluster IP" '
            f"-m tcp --dport 80 -j {svc}") in save
    assert '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in save.splitlines()


def test_cluster_ip_spreads_over_both_endpoints_without_snat(lab):
    replies = connect(lab, "fedora-3", "10.96.0.20", 80, 200)
    count = pods_of(replies)
    assert set(count) == {"fedora-1", "fedora-2"}, count
    assert min(count.values()) >= 50, count  # at least half the fair share (100 each)
    # Pod to Service to pod: the endpoint sees the client pod's own address (same node and other node).
    assert {r["client"].rsplit(":", 1)[0] for r in replies} == {"10.244.0.3"}


def test_client_ip_affinity_sticks(lab):
    count = pods_of(connect(lab, "fedora-3", "10.96.0.21", 8080, 30))
    assert len(count) == 1 and sum(count.values()) == 30, count


def test_hairpin_pod_reaches_its_own_service(lab):
    replies = connect(lab, "fedora-1", "10.96.0.20", 80, 40)
    own = [r for r in replies if r.get("pod") == "fedora-1"]
    assert own, pods_of(replies)
    # Hairpin traffic is masqueraded (KUBE-SEP -s <ep> -j KUBE-MARK-MASQ) to the node's cni0 address.
    assert {r["client"].rsplit(":", 1)[0] for r in own} == {"10.244.0.1"}


def test_service_without_endpoints_is_refused_not_timed_out(lab):
    start = time.monotonic()
    replies = connect(lab, "fedora-3", "10.96.0.22", 80, 3)
    took = time.monotonic() - start
    assert all(r.get("error") == "ConnectionRefusedError" for r in replies), replies
    # kube-proxy's REJECT --reject-with icmp-port-unreachable. Over veth, the ICMP error
    # comes back while connect() still owns the socket, which Linux records as a soft
    # error: the refusal lands with the first SYN retransmission (~1 s), not a timeout.
    assert took < 3 * 1.5, took
    from_node = connect(lab, "example", NODES["minikube"], 30081, 1)
    assert from_node[0].get("error") == "ConnectionRefusedError", from_node


def test_node_port_from_every_node(lab):
    for src in NODES:
        for dst_ip in NODES.values():
            replies = connect(lab, src, dst_ip, 30080, 6)
            assert all(r.get("pod") in ("fedora-1", "fedora-2") for r in replies), (src, dst_ip, replies)


def test_a_node_port_answers_on_the_nodes_localhost_in_iptables_mode_only(lab):
    """kube-proxy's localhostNodePorts: in iptables mode a node's own 127.0.0.1:<nodePort> reaches the Service
    (route_localnet=1 on the node, the connection masqueraded to leave it; KUBE-FIREWALL drops what comes to
    127/8 from elsewhere); kube-proxy's nftables mode has no NodePort on localhost."""
    node = ns(lab, "minikube")
    route_localnet = in_netns(node, "cat", "/proc/sys/net/ipv4/conf/all/route_localnet").stdout.strip()
    # a pod's is its node's: its namespace starts with a copy of the node's all/default settings
    assert in_netns(ns(lab, "fedora-1"), "cat", "/proc/sys/net/ipv4/conf/all/route_localnet").stdout.strip() == \
        route_localnet
    save = in_netns(node, "iptables-save", "-t", "filter").stdout.splitlines()
    replies = connect(lab, "minikube", "127.0.0.1", 30080, 6)
    if lab["mode"] == "nftables":
        assert route_localnet == "0" and not [line for line in save if "KUBE-FIREWALL" in line]
        assert all(r.get("error") == "ConnectionRefusedError" for r in replies), replies  # nothing listens there
        return
    assert route_localnet == "1"
    assert all(r.get("pod") in ("fedora-1", "fedora-2") for r in replies), replies
    assert not [r for r in replies if r["client"].startswith("127.")], replies  # masqueraded on the way out
    assert ('-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet '
            'connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP') in save
    assert "-A INPUT -j KUBE-FIREWALL" in save and "-A OUTPUT -j KUBE-FIREWALL" in save


TIMEOUTS = ("net.netfilter.nf_conntrack_tcp_timeout_established", "net.netfilter.nf_conntrack_tcp_timeout_close_wait")


def sysctl_values(netns: str | None) -> list[str]:
    argv = ["sysctl", "-n", *TIMEOUTS]
    proc = in_netns(netns, *argv) if netns else subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_nodes_track_connections_with_kube_proxys_conntrack_timeouts(lab):
    """kube-proxy writes conntrack.tcpEstablishedTimeout (24h) and tcpCloseWaitTimeout (1h) on its node in either
    mode; both are per network namespace: the nodes have them, the pods and the host keep their own (the
    kernel's 5 days and 60 s in a new namespace). A real connection from fedora-3 to fedora-2 through node
    minikube is tracked there with them: ESTABLISHED 86400 s, then, once the server has half-closed it and the
    client acknowledged, CLOSE_WAIT 3600 s (conntrack -L counts them down)."""
    host = sysctl_values(None)
    for node in NODES:
        assert sysctl_values(ns(lab, node)) == ["86400", "3600"], node
    assert sysctl_values(ns(lab, "fedora-3")) == ["432000", "60"]
    with entered(ns(lab, "fedora-2")):
        server = socket.socket()
    with entered(ns(lab, "fedora-3")):
        client = socket.socket()
    try:
        server.bind(("10.244.1.3", 0))
        server.listen(1)
        port = server.getsockname()[1]
        client.settimeout(5)
        client.connect(("10.244.1.3", port))
        conn, _ = server.accept()

        def tracked() -> tuple[str, int]:
            out = in_netns(ns(lab, "minikube"), "conntrack", "-L", "-p", "tcp", "--dport", str(port)).stdout
            (line,) = [x for x in out.splitlines() if x.startswith("tcp")]
            fields = line.split()  # tcp 6 <seconds left> <state> src=10.244.0.3 dst=10.244.1.3 ...
            assert "src=10.244.0.3" in fields and "dst=10.244.1.3" in fields, line
            return fields[3], int(fields[2])

        state, left = tracked()
        assert state == "ESTABLISHED" and 86400 - 30 < left <= 86400, (state, left)
        conn.shutdown(socket.SHUT_WR)  # the server's FIN; the client's kernel acknowledges it
        assert client.recv(10) == b""
        assert wait_for(lambda: tracked()[0] == "CLOSE_WAIT", timeout=5), tracked()
        state, left = tracked()
        assert 3600 - 30 < left <= 3600, (state, left)
        conn.close()
    finally:
        client.close()
        server.close()
    assert sysctl_values(None) == host


def test_internet_host_reaches_node_ports_and_load_balancer(lab):
    for dst_ip in NODES.values():
        replies = connect(lab, "example", dst_ip, 30080, 4)
        assert all(r.get("pod") in ("fedora-1", "fedora-2") for r in replies), (dst_ip, replies)
    topo_lb = load_balancer_ips(_lab_model(lab))[("default", "pub")]
    count = pods_of(connect(lab, "example", str(topo_lb), 80, 60))
    assert set(count) == {"fedora-1", "fedora-2"}, count


def test_egress_is_seen_as_the_gateway(lab):
    server = subprocess.Popen(["ip", "netns", "exec", ns(lab, "example"), sys.executable, "-c",
                               "import socket\ns=socket.socket()\n"
                               "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                               "s.bind(('0.0.0.0',9000));s.listen(1);s.settimeout(10)\nc,a=s.accept()\n"
                               "c.sendall((repr(a[0])+'\\n').encode());print(a[0])"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: ":9000 " in in_netns(ns(lab, "example"), "ss", "-Hltn").stdout, timeout=20)
        proc = in_netns(ns(lab, "fedora-1"), sys.executable, "-c",
                        "import socket;s=socket.create_connection(('203.0.113.10',9000),timeout=3);print(s.recv(100))")
        assert proc.returncode == 0, proc.stderr
        seen = server.communicate(timeout=10)[0].strip()
    finally:
        server.kill()
    assert seen == "203.0.113.1"


def test_cluster_dns(lab):
    for name in ("web.default.svc.cluster.local", "web", "kube-dns.kube-system.svc.cluster.local"):
        proc = in_netns(ns(lab, "fedora-3"), "getent", "hosts", name)
        assert proc.returncode == 0, (name, proc.stdout, proc.stderr)
    assert in_netns(ns(lab, "fedora-3"), "getent", "hosts", "web.default.svc.cluster.local").stdout.split()[0] \
        == "10.96.0.20"
    exec_ = netlab("exec", "--lab", lab["name"], "fedora-3", "--", "getent", "hosts",
                   "web.default.svc.cluster.local", check=False)
    if exec_.returncode != 2 or "No such command" not in exec_.stderr:  # netlab exec exists
        assert exec_.stdout.split()[:1] == ["10.96.0.20"], exec_.stdout + exec_.stderr


def test_endpoint_removed_rerenders_and_clears_udp_conntrack(lab):
    # A UDP "session" from a fixed source port, DNATed to udp-1.
    out = in_netns(ns(lab, "fedora-3"), sys.executable, "-c", UDP_CLIENT, "10.96.0.23", "53", "40000")
    assert out.returncode == 0 and "udp-1" in out.stdout, out.stdout + out.stderr
    node = ns(lab, "minikube")
    listed = in_netns(node, "conntrack", "-L", "-p", "udp", "--orig-dst", "10.96.0.23").stdout
    assert "10.244.1.4" in listed, listed
    # udp-1 loses its label: the endpoint goes, the rules are re-rendered, the entry is deleted.
    path = write_topology(lab["tmp"], lab["name"], udp_label="app: gone", mode=lab["mode"])
    fixed = json.loads(netlab("up", "-t", path, "-o", "json").stdout)["fixed"]
    assert in_netns(node, "conntrack", "-L", "-p", "udp", "--orig-dst", "10.96.0.23").stdout.strip() == ""
    stale = [line for line in fixed if line.startswith(f"{node}: deleted stale nat chains ")]
    if lab["mode"] == "iptables":  # the endpoint's KUBE-SEP chain, on every node (not in nftables mode)
        assert len(stale) == 1 and stale[0].split("chains ")[1].startswith("KUBE-SEP-"), fixed
    else:
        assert stale == [], fixed
    if lab["mode"] == "nftables":
        listed = in_netns(node, "nft", "list", "table", "ip", "kube-proxy").stdout
        data = json.loads(in_netns(node, "nft", "-j", "list", "table", "ip", "kube-proxy").stdout)["nftables"]
        # No rule, set or map names the endpoint; its chain stays, emptied, until the next up deletes it
        # (kube-proxy's staleChains: a chain is deleted a sync after the one that dropped it).
        assert "10.244.1.4" not in json.dumps([o for o in data if "chain" not in o])
        assert [o["chain"]["name"] for o in data if "chain" in o and "10.244.1.4" in o["chain"]["name"]]
        assert '10.96.0.23 . udp . 53 comment "default/resolver:dns" : goto reject-chain' in listed, listed
    else:
        save = in_netns(node, "iptables-save").stdout
        assert "10.244.1.4:5353" not in save
        assert '-A KUBE-SERVICES -d 10.96.0.23/32 -p udp -m comment --comment "default/resolver:dns has no ' \
            'endpoints" -m udp --dport 53 -j REJECT' in save
    assert_as_planned(lab["name"])
    # And back (the library's up, the CLI's same call: this one's output is not what the test reads).
    up_here(write_topology(lab["tmp"], lab["name"], mode=lab["mode"]))
    assert_as_planned(lab["name"])


def _service_port(lab, name: str):
    return next(sp for sp in services.service_ports(_lab_model(lab)) if sp.svc.name == name)


def _lab_model(lab):
    from netlab.model.lab import resolve

    return resolve(load_topology(lab["path"]))


def test_a_selected_pod_that_does_not_serve_the_port_is_an_endpoint_all_the_same(labs):
    """The EndpointSlice controller makes every pod the selector matches an endpoint of a numeric targetPort;
    netlab left out the ones that declare no such port, so its kube-proxy rules were not a real node's. Now the
    pod gets its share (its refusals show in probe), and up and probe say why."""
    name = labs.name("ep")
    _, proc = labs.up(f"""name: {name}
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1, labels: {{app: a}}}}
  - {{name: b, node: n1, labels: {{app: a, deaf: "yes"}}, containers: [{{name: c, command: [sleep, infinity]}}]}}
services:
  - {{name: s, selector: {{app: a}}, ports: [{{port: 80, targetPort: 8080}}]}}
  - {{name: d, selector: {{deaf: "yes"}}, ports: [{{port: 80, targetPort: 8080}}]}}
""")
    note = ("service default/s port 80/TCP: endpoint b declares no 8080/TCP: kube-proxy sends it its share of the "
            "connections anyway, and nothing listens there")
    # validate's note, as validate says it: at s's port (line 7 of the file)
    assert any(line.startswith("netlab: note: ") and f":7: services[0].ports[0]: {note}" in line
               for line in proc.stderr.splitlines()), proc.stderr
    nat = in_netns(f"{name}-n1", "iptables-save", "-t", "nat", check=True).stdout
    assert "-j DNAT --to-destination 10.244.0.3:8080" in nat, nat  # b's, beside a's 10.244.0.2:8080
    refused = 0
    for _ in range(20):  # each connection takes an endpoint at random: b's are refused
        refused += in_netns(f"{name}-a", "python3", "-c", "import socket; socket.create_connection("
                            "('10.96.0.11', 80), timeout=2)").returncode != 0
    assert 0 < refused < 20, refused
    # d's only endpoint is b: every probe of it is refused, and the hint says why (s's probes pass or fail as
    # their random endpoint falls)
    probe = netlab("probe", "--lab", name, "--proto", "tcp", "-o", "json", check=False)
    report = json.loads(probe.stdout)
    deaf = ("service default/d port 80/TCP: endpoint b declares no 8080/TCP: kube-proxy sends it its share of the "
            "connections anyway, and nothing listens there")
    assert probe.returncode == 1 and any(h.startswith(deaf) for h in report["hints"]), report["hints"]
