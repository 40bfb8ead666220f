"""A UDP conntrack entry made before its Service existed is deleted once the Service has an endpoint (root).

A client that sends UDP to a Service address before kube-proxy's rules for it exist leaves a conntrack entry that
was never DNATed: to a ClusterIP it goes out the node's default route (iptables mode; nftables mode drops traffic
to an unallocated ClusterIP, which leaves no entry), to its node's own address and the nodePort it is delivered
there, where nothing listens. While the client keeps its source port, its packets follow that entry, never the
rules, so it never reaches the endpoints. kube-proxy (pkg/proxy/conntrack/cleanup.go) deletes such an entry (its
reply source is no serving endpoint) once the Service port has one; netlab deleted only entries DNATed to an
address that is no endpoint, and the client stayed blackholed. (A Service without endpoints leaves no such entry:
its REJECT drops the packet before conntrack keeps it.)

Both kube-proxy modes: the client pod sends from a fixed port and keeps sending while ``up`` adds the Service; the
same port's next query is answered by the endpoint's echo server, and the node's ``conntrack -L`` has no entry
left that was never DNATed. One lab a mode, always taken down.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import in_netns, lab_up, netlab, unique_lab, wait_for, write_topology

pytestmark = pytest.mark.root

SERVICE = ("  - {name: late, type: NodePort, selector: {app: a}, clusterIP: 10.96.0.50,\n"
           "     ports: [{name: d, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30053}]}\n")

TOPO = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: a, node: n1, labels: {{app: a}}, containers: [{{name: u, ports: [{{containerPort: 5353, protocol: UDP}}]}}]}}
  - {{name: c, node: n2}}
services:
  - {{name: other, selector: {{app: a}}, clusterIP: 10.96.0.40,
     ports: [{{name: d, port: 53, targetPort: 5353, protocol: UDP}}]}}
{late}"""

SPORT = 40003

# Sends from SPORT every 0.3 s, unanswered or not, until a line on stdin; then one query more, its answer (or
# "timeout" after 5 s) printed last.
CLIENT = """\
import select, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", %d))
dst = (sys.argv[1], int(sys.argv[2]))
print("bound", flush=True)
while True:
    s.sendto(b"hello", dst)
    ready = select.select([s, sys.stdin], [], [], 0.3)[0]
    if s in ready:
        s.recvfrom(4096)
    if sys.stdin in ready:
        break
s.settimeout(5)
s.sendto(b"hello", dst)
try:
    print(s.recvfrom(4096)[0].decode())
except socket.timeout:
    print("timeout")
""" % SPORT


def undnated(netns: str, dst: str, dport: int) -> list[str]:
    """The node's UDP entries from SPORT to dst:dport whose reply comes from dst itself: never DNATed."""
    out = in_netns(netns, "conntrack", "-L", "-p", "udp", "--orig-dst", dst, "--orig-port-dst", str(dport),
                   check=True).stdout
    return [line for line in out.splitlines()
            if f"sport={SPORT} " in line and line.split("src=")[2].startswith(f"{dst} ")]


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_an_entry_never_dnated_goes_when_its_service_gets_an_endpoint(tmp_path, mode):
    name = unique_lab("ux")
    n2 = f"{name}-n2"
    old = write_topology(tmp_path, TOPO.format(name=name, mode=mode, late=""))
    with lab_up(old, name):
        node_ip = json.loads(in_netns(n2, "ip", "-j", "-4", "addr", "show", "eth0", check=True).stdout)[0][
            "addr_info"][0]["local"]
        # iptables mode: the ClusterIP, routed out n2's default route; nftables mode drops that (no entry): the
        # nodePort on n2's own address, delivered to n2, where nothing listens
        dst, dport = ("10.96.0.50", 53) if mode == "iptables" else (node_ip, 30053)
        client = subprocess.Popen(["ip", "netns", "exec", f"{name}-c", "python3", "-c", CLIENT, dst, str(dport)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert client.stdout is not None and client.stdout.readline() == "bound\n", client.stderr
            # "bound" comes before the first datagram: its entry on n2 appears when n2 has taken the packet in
            assert wait_for(lambda: len(undnated(n2, dst, dport)) == 1, timeout=10), \
                in_netns(n2, "conntrack", "-L", "-p", "udp").stdout
            before = in_netns(n2, "conntrack", "-L", "-p", "udp", "--orig-port-src", str(SPORT), check=True).stdout
            assert "[UNREPLIED]" in before, before
            new = write_topology(tmp_path, TOPO.format(name=name, mode=mode, late=SERVICE))  # the same file, edited
            up = netlab("up", "-t", new)
            out, err = client.communicate("go\n", timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        last = out.strip().splitlines()[-1]
        assert last != "timeout" and json.loads(last)["pod"] == "a", (out, err, up.stdout)
        assert undnated(n2, dst, dport) == [], in_netns(n2, "conntrack", "-L", "-p", "udp").stdout
        assert "un-DNATed" in up.stdout, up.stdout
        st = netlab("status", "--lab", name, check=False)
        assert st.returncode == 0, (st.stdout, st.stderr)
