"""A pod's UDP port has room for a burst it cannot drain at once (QA q25 #1): the lab's one echo server drains
every pod's sockets, and a probe's UDP Service distributions (3 x 200 datagrams) reach the same endpoint together;
at the default 208 KiB receive buffer a pod dropped tens (RcvbufErrors) and probe failed a
healthy lab. Here the echo server is stopped (SIGSTOP) while the burst crosses the VXLAN overlay: every datagram
must wait in the pod's socket, and each is answered once the server runs again."""

from __future__ import annotations

import json
import os
import re
import signal
import socket

import pytest

from helpers import in_netns
from netlab.kernel import netns
from netlab.workload import launch
from netlab.workload.echo import UDP_RCVBUF

pytestmark = pytest.mark.root

BURST = 600  # 832 bytes each as the kernel counts them (ss: r499200): the default 208 KiB holds 256


def test_a_burst_of_datagrams_waits_in_the_pods_socket_and_is_all_answered(labs):
    lab = labs.name("ub")
    labs.up(f"""name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: c, node: n1}}
  - name: w
    node: n2
    containers: [{{name: u, ports: [{{containerPort: 9000, protocol: UDP}}]}}]
""")
    skmem = in_netns(f"{lab}-w", "ss", "-Huanm", "sport = :9000", check=True).stdout
    assert re.search(rf"\brb{2 * UDP_RCVBUF}\b", skmem), skmem  # was rb212992
    dst = (in_netns(f"{lab}-w", "ip", "-4", "-o", "addr", "show", "eth0", check=True).stdout.split()[3]
           .split("/")[0], 9000)
    with netns.entered(f"{lab}-c"):
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pid = launch.server_pid(lab)
    assert pid is not None
    try:
        client.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE: the replies wait here too
        client.settimeout(10)
        os.kill(pid, signal.SIGSTOP)
        try:
            for i in range(BURST):
                client.sendto(b"netlab probe %d" % i, dst)
        finally:
            os.kill(pid, signal.SIGCONT)
        answers = [json.loads(client.recv(2048)) for _ in range(BURST)]  # a lost one: socket.timeout
        assert {a["pod"] for a in answers} == {"w"} and len(answers) == BURST
        snmp = in_netns(f"{lab}-w", "cat", "/proc/net/snmp", check=True).stdout.splitlines()
        udp = dict(zip(*(line.split()[1:] for line in snmp if line.startswith("Udp:"))))
        assert udp["RcvbufErrors"] == "0", udp
    finally:
        client.close()
