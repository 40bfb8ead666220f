"""kube-proxy's REJECT answers with the node's ICMP port unreachable, TCP included: trace's reply rows against a
tcpdump in the client and the client's own error (root; iptables and nftables modes).

kube-proxy rejects a Service port without endpoints (``-j REJECT --reject-with icmp-port-unreachable``; nft's
``reject`` in its ip table) and, in nftables mode, a ClusterIP's port the Service lacks. The node's kernel answers
with an ICMP destination unreachable (type 3 code 3) quoting the SYN, from the address the request was for when it
is the node's own (a nodePort), else from the address its route to the client picks (cni0's, the pod's gateway,
for a ClusterIP). trace said "answers the request with a TCP reset" and walked a TCP segment from the Service
address back to the client, while its own ``saw:`` line showed the ICMP error (qa58k #1).
"""

from __future__ import annotations

import re

import pytest

from helpers import in_netns, ipv4_of, lab_up, traced, unique_lab, write_topology
from test_trace_kernel_ways_live import tcpdump

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: client, node: n1}}
services:
  - name: empty
    selector: {{app: nothing}}
    clusterIP: 10.96.0.40
    type: NodePort
    ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30091}}]
"""

# tcpdump's line of an ICMP port unreachable: "IP 10.244.0.1 > 10.244.0.2: ICMP 10.96.0.40 tcp port 80 unreachable"
SEEN = re.compile(r"IP (\S+) > (\S+): ICMP (\S+) tcp port (\d+) unreachable")
# trace's ICMP error flow: "10.244.0.1 → 10.244.0.2 icmp port unreachable quoting 10.244.0.2:1234 → 10.96.0.40:80 tcp"
WALKED = re.compile(r"^(\S+) → (\S+) icmp port unreachable quoting (\S+):(\d+) → (\S+):(\d+) tcp$")


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def lab(request, tmp_path_factory):
    name = unique_lab("trk")
    path = write_topology(tmp_path_factory.mktemp(name), TOPOLOGY.format(lab=name, mode=request.param),
                          f"{name}.yaml")
    with lab_up(path, name):
        yield name, request.param


def _check(lab: str, dst: str, port: int, source: str) -> None:
    """trace client DST --port PORT: refused by kube-proxy's REJECT; the reply rows follow the ICMP error the
    client's tcpdump saw (its addresses, the header it quotes), from ``source``, and no reset anywhere."""
    client = f"{lab}-client"
    with tcpdump(client, "eth0", "icmp or tcp[tcpflags] & tcp-rst != 0") as seen:
        rc, d = traced(lab, "client", dst, "--port", str(port))
    assert rc == 1 and not d["delivered"] and d["reply"] == "connection failed: Connection refused", (d["reply"], d["lost"])
    assert not any("Flags [R" in line for line in seen), seen  # no TCP reset came back
    got = [m.groups() for m in map(SEEN.search, seen) if m]
    pod = ipv4_of(client, "eth0")
    assert len(got) == 1 and got[0][:2] == (source, pod), seen
    rows = d["reply_hops"]
    assert rows and rows[0]["kind"] == "reject", [(h["kind"], h["decision"][:80]) for h in rows]
    first = rows[0]["decision"]
    assert "ICMP port unreachable (type 3 code 3) from " + source in first and "reset" not in first, first
    last = rows[-1]
    assert (last["netns"], last["kind"], last["seen"]) == (client, "deliver", True), last
    walked = WALKED.match(last["observe"]["flow"])
    assert walked is not None, last["observe"]
    src, to, qsrc, _, qdst, qport = walked.groups()
    assert (src, to, qsrc) == (source, pod, pod) and (qdst, qport) == got[0][2:], (walked.groups(), got)
    assert last["facts"]["icmp_error"] == "destination unreachable: port unreachable"
    assert d["reply_lost"] is None, d["reply_lost"]


def test_a_cluster_ip_without_endpoints_is_answered_from_the_pods_gateway(lab):
    name, _ = lab
    _check(name, "svc/empty", 80, ipv4_of(f"{name}-n1", "cni0"))


def test_a_node_port_without_endpoints_is_answered_from_the_nodes_address(lab):
    name, _ = lab
    _check(name, "n2", 30091, ipv4_of(f"{name}-n2", "eth0"))


def test_nftables_a_cluster_ip_port_the_service_lacks_is_answered_from_the_pods_gateway(lab):
    name, mode = lab
    if mode != "nftables":
        pytest.skip("kube-proxy in iptables mode rejects no other port of a ClusterIP")
    _check(name, "10.96.0.40", 81, ipv4_of(f"{name}-n1", "cni0"))


def test_nftables_a_node_port_without_endpoints_names_the_no_endpoint_nodeports_element(lab):
    """nftables mode: the element of map no-endpoint-nodeports that sent the packet to reject-chain is quoted as
    the kernel lists it (trace quoted the node's address in set nodeport-ips, which only leads to the lookup); the
    real connection is refused by that node's ICMP port unreachable."""
    name, mode = lab
    if mode != "nftables":
        pytest.skip("nftables mode's map")
    n2 = f"{name}-n2"
    listed = in_netns(n2, "nft", "list", "map", "ip", "kube-proxy", "no-endpoint-nodeports", check=True).stdout
    held = re.search(r"elements = \{ (tcp \. 30091 .*: goto reject-chain) \}", listed)
    assert held is not None, listed
    _check(name, "n2", 30091, ipv4_of(n2, "eth0"))  # refused by n2's ICMP error, as the client's tcpdump saw
    rc, d = traced(name, "client", "n2", "--port", "30091")
    quoted = f"map no-endpoint-nodeports (`element no-endpoint-nodeports {held.group(1)}`)"
    assert rc == 1 and quoted in d["refused"] and "nodeport-ips" not in d["refused"], d["refused"]
    assert quoted in d["lost"]["reason"] and d["lost"]["netns"] == n2, d["lost"]


# tcpdump's line of the ICMP error a node sends itself: "IP 192.168.122.2 > 192.168.122.2: ICMP 10.96.0.40 tcp port 80
# unreachable"
TO_ITSELF = re.compile(r"IP (\S+) > (\S+): ICMP (\S+) tcp port (\d+) unreachable")


@pytest.mark.parametrize("dst,port", [("svc/empty", 80), ("n1", 30091), ("10.96.0.40", 81)])
def test_a_nodes_own_request_its_reject_refuses_is_answered_to_itself_through_lo(lab, dst, port):
    """n1's own connection to a ClusterIP without endpoints (REJECT in OUTPUT), to its own nodePort without endpoints
    (INPUT, on lo) and, in nftables mode, to a ClusterIP's port the Service lacks: the kernel answers n1 itself with
    an ICMP port unreachable from the request's own source (the address the request was for, for the nodePort),
    which loops back through lo to the socket (curl: connection refused). trace showed no reply rows for them."""
    name, mode = lab
    if port == 81 and mode != "nftables":
        pytest.skip("kube-proxy in iptables mode rejects no other port of a ClusterIP")
    n1 = f"{name}-n1"
    own = ipv4_of(n1, "eth0")
    target = {"svc/empty": "10.96.0.40", "n1": own}.get(dst, dst)
    assert in_netns(n1, "curl", "-s", "-m", "2", f"http://{target}:{port}/").returncode == 7  # refused at once
    with tcpdump(n1, "lo", "icmp") as seen:
        rc, d = traced(name, "n1", dst, "--port", str(port))
    got = [m.groups() for m in map(TO_ITSELF.search, seen) if m]
    assert len(got) == 1 and got[0] == (own, own, target, str(port)), seen
    assert rc == 1 and not d["delivered"] and d["reply"] == "connection failed: Connection refused", d["lost"]
    rows = d["reply_hops"]
    assert rows and rows[0]["kind"] == "reject" and f"ICMP port unreachable (type 3 code 3) from {own}, " \
        in rows[0]["decision"], [(h["kind"], h["decision"][:120]) for h in rows]
    last = rows[-1]
    assert (last["netns"], last["device"], last["kind"], last["seen"]) == (n1, "lo", "deliver", True), last
    walked = WALKED.match(last["observe"]["flow"])
    assert walked is not None, last["observe"]
    src, to, qsrc, _, qdst, qport = walked.groups()
    assert (src, to, qsrc, qdst, qport) == (own, own, own, target, str(port)), walked.groups()
    assert last["facts"]["icmp_error"] == "destination unreachable: port unreachable"
    assert d["reply_lost"] is None, d["reply_lost"]
