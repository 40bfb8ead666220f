"""conntrack read over ctnetlink by netlab's codec (root, QA qx 1): the entries of real TCP, UDP and ICMP flows
through a Service (DNATed in the node) are those `conntrack -L -o extended` lists, line for line, and
`netlab trace` works on a machine without the conntrack program (hidden in a private mount namespace)."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from helpers import NETLAB, in_netns, lab_up, unique_lab, wait_for, write_topology
from netlab.kernel import conntrack
from netlab.realize.state import running_lab
from netlab.trace import tables

pytestmark = pytest.mark.root

CLUSTER_IP = "10.96.0.77"
TOPOLOGY = """name: {name}
network: {{mode: host-gw}}
nodes:
  - name: n1
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: client, node: n1}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: {cip}
    ports: [{{name: tcp, port: 80, targetPort: 8080}}, {{name: udp, port: 80, targetPort: 8080, protocol: UDP}}]
"""
# From the client pod: two TCP connections to the Service (the echo server answers and closes: CLOSE_WAIT, then
# TIME_WAIT once the client closes its own), a UDP datagram answered through the Service, one to a port nobody
# serves (UNREPLIED), a ping to the endpoint.
FLOWS = """
import socket, subprocess, sys
cip, web = sys.argv[1], sys.argv[2]
held = socket.create_connection((cip, 80), timeout=5); held.sendall(b"x\\n"); held.recv(1000)
with socket.create_connection((cip, 80), timeout=5) as c:
    c.sendall(b"x\\n"); c.recv(1000)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5); u.sendto(b"x", (cip, 80)); u.recv(1000)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (web, 9999))
subprocess.run(["ping", "-c1", "-W2", web], check=True, capture_output=True)
print("ok", flush=True)
sys.stdin.read()  # holds the first TCP connection until the test is done
"""
HIDDEN = "/usr/sbin/conntrack"  # /sbin is /usr/sbin here; netns.binary() looks in fixed directories


def _tool_lines(netns: str) -> list[str]:
    """`conntrack -L -o extended` in ``netns`` (IPv4), without its family words ("ipv4     2 ")."""
    out = in_netns(netns, "conntrack", "-L", "-o", "extended", check=True).stdout.splitlines()
    assert all(line.startswith("ipv4     2 ") for line in out), out
    return [line[len("ipv4     2 "):] for line in out]


def _tcp_states(netns: str) -> list[str]:
    return sorted(line.split()[3] for line in _tool_lines(netns) if line.startswith("tcp "))


def _without_timeout(line: str) -> tuple[str, int]:
    words = line.split()
    return " ".join(words[:2] + words[3:]), int(words[2])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("ctx")
    path = write_topology(tmp_path_factory.mktemp("ct"), TOPOLOGY.format(name=name, cip=CLUSTER_IP))
    with lab_up(path, name):
        yield running_lab(name).resolved()


def test_the_entries_read_over_ctnetlink_are_those_conntrack_lists(lab):
    client = next(p for p in lab.pods if p.name == "client")
    web = next(p for p in lab.pods if p.name == "web")
    node = lab.nodes[0]
    flows = subprocess.Popen(["ip", "netns", "exec", client.netns, "python3", "-c", FLOWS, CLUSTER_IP, str(web.ip)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert flows.stdout.readline() == "ok\n"
        # The last ACKs of the TCP connections cross the node after the client is done: its table is still once
        # both connections reach their last state (the held one CLOSE_WAIT, the other TIME_WAIT). (The pods' own
        # namespaces track nothing: no rule there asks for conntrack.)
        assert wait_for(lambda: _tcp_states(node.netns) == ["CLOSE_WAIT", "TIME_WAIT"], 10), _tool_lines(node.netns)
        for ns in (node.netns, client.netns):
            listed = _tool_lines(ns)  # first: each entry's timeout can only have gone down when we read it
            ours = conntrack.list_entries(ns)
            assert [_without_timeout(line)[0] for line in ours] == [_without_timeout(line)[0] for line in listed]
            assert all(_without_timeout(a)[1] <= _without_timeout(b)[1] for a, b in zip(ours, listed))
            for proto in ("tcp", "udp", "icmp"):  # what trace reads: the entries the old text parser gave
                assert tables.read_conntrack(ns, proto) == [tables.parse_conntrack(line) for line in listed
                                                            if line.startswith(proto + " ")]
        in_node = _tool_lines(node.netns)
        # the flows are there, DNATed in the node to the endpoint: TCP (the echo server closed them), UDP answered
        # and not, a ping
        dnat = f"dport=80 src={web.ip} dst={client.ip} sport=8080 "
        for proto, want in (("tcp", dnat), ("udp", dnat), ("udp", "dport=9999 [UNREPLIED]"), ("icmp", "type=8")):
            assert any(line.startswith(proto + " ") and want in line for line in in_node), (proto, want, in_node)
        assert any("TIME_WAIT" in line and "[ASSURED]" in line for line in in_node), in_node
    finally:
        flows.stdin.close()
        flows.wait(timeout=10)


def _hidden(*argv: str) -> subprocess.CompletedProcess:
    """``argv`` in a private mount namespace where /dev/null is bound over the conntrack program."""
    script = f'mount --bind /dev/null {HIDDEN} && exec "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "hide", *argv],
                          capture_output=True, text=True, timeout=120)


def test_trace_works_without_the_conntrack_program(lab):
    assert _hidden("sh", "-c", "command -v conntrack && conntrack -L").returncode != 0  # it is hidden there
    proc = _hidden(*NETLAB, "trace", "--lab", lab.name, "client", "svc/web", "--proto", "tcp", "--port", "80",
                   "-o", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.dumps(json.loads(proc.stdout))
    # the node's entry of the packet, read over ctnetlink: DNATed to the endpoint
    web = next(p for p in lab.pods if p.name == "web")
    assert f"{CLUSTER_IP}:80" in report and f"reply {web.ip}:8080" in report, report[:3000]
    proc = _hidden(*NETLAB, "trace", "--lab", lab.name, "client", "web", "--proto", "icmp", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert socket.inet_aton(str(web.ip))  # a plain pod-to-pod trace too: it read conntrack without the program
