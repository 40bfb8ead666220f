"""Stale UDP conntrack entries of a Service's externalIP, as kube-proxy's cleanup deletes them (root).

kube-proxy (pkg/proxy/conntrack/cleanup.go) deletes a UDP entry whose original destination is a Service's
ClusterIP, balancer IP or externalIP with its port, and whose reply comes from no serving endpoint; netlab did
so for the ClusterIP only, so a client that kept its source port to an externalIP stayed DNATed to a pod that
was no endpoint any more. Real UDP from an internet host to the externalIP (routed to n1, DNATed there to web1);
the Service then selects web2 instead: ``status -t`` of the new file names n1's entry, ``up`` deletes it (n1's
``conntrack -L``), and status is clean. One lab, always taken down.
"""

from __future__ import annotations

import pytest

from helpers import in_netns, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

EXTERNAL_IP = "198.51.100.7"

TOPO = """\
name: {name}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: web1, node: n2, ip: 10.244.1.10, labels: {{app: {one}}}}}
  - {{name: web2, node: n2, ip: 10.244.1.11, labels: {{app: {two}}}}}
services:
  - name: web
    selector: {{app: web}}
    externalIPs: [{ip}]
    ports: [{{port: 80, targetPort: 8080, protocol: UDP}}]
"""

# Three exchanges over more than 2 s: the kernel then takes the flow for a stream (ASSURED, 120 s timeout), so the
# entry outlives the test's status and up whatever the machine's load.
SEND = ("import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('203.0.113.50', 40123))\n"
        "s.settimeout(3)\n"
        "for _ in range(3):\n"
        "    s.sendto(b'hello', ('%s', 80))\n"
        "    print(s.recvfrom(4096)[0].decode())\n"
        "    time.sleep(1.1)\n" % EXTERNAL_IP)


def entries(netns: str) -> list[str]:
    out = in_netns(netns, "conntrack", "-L", "-p", "udp", "-d", EXTERNAL_IP, check=True).stdout
    return [line for line in out.splitlines() if line.startswith("udp")]


def test_up_deletes_the_external_ips_entries_dnated_to_a_pod_that_is_no_endpoint(tmp_path):
    name = unique_lab("ez")
    old = write_topology(tmp_path, TOPO.format(name=name, ip=EXTERNAL_IP, one="web", two="other"))
    with lab_up(old, name):
        sent = in_netns(f"{name}-client", "python3", "-c", SEND)
        assert sent.returncode == 0 and sent.stdout.count("10.244.") >= 3, (sent.stdout, sent.stderr)
        n1 = f"{name}-n1"
        (before,) = entries(n1)
        assert "sport=40123" in before and "src=10.244.1.10 " in before and "[ASSURED]" in before, before
        new = write_topology(tmp_path, TOPO.format(name=name, ip=EXTERNAL_IP, one="other", two="web"))
        st = netlab("status", "-t", new, check=False)
        assert st.returncode == 1, (st.stdout, st.stderr)
        assert (f"a UDP conntrack entry in {n1} that DNATs 203.0.113.50:40123 → {EXTERNAL_IP}:80 to "
                "10.244.1.10:8080, which is no endpoint") in st.stdout, st.stdout
        netlab("up", "-t", new)
        assert [e for e in entries(n1) if "src=10.244.1.10 " in e] == []
        st = netlab("status", "--lab", name, check=False)
        assert st.returncode == 0, (st.stdout, st.stderr)
