"""A builtin pod that terminates gives up its hostPort, as a kubelet stops a terminal pod's sandbox and its CNI DEL
takes out portmap's rules (root).

The pod's command serves its hostPort's container port, and real traffic from the other node reaches it through
portmap's DNAT; once it exits 0 (restartPolicy Never: Completed) `status` says its DNAT is still there, `trace` to
the hostPort notes it, and the next `up` takes it out: the node's nat table then holds exactly what Debian's
portmap's ADD then DEL leave (test_builtin_hostport_live.real_plugin), `status` says all as planned, a connection
to the hostPort is refused by the node, and `trace` says why, as no fault. netlab kept the rules while the lab
ran (the last pass: "a terminal builtin pod keeps its hostPort DNAT")."""

from __future__ import annotations


import pytest

from helpers import in_netns, ipv4_of, lab_namespaces, netlab, traced, wait_for
from netlab import Lab
from netlab.api.jsonio import to_json
from netlab.plan.portmap_rules import container_id, pod_chain
from test_builtin_hostport_live import portmaps, real_plugin, saved

pytestmark = pytest.mark.root

# Serves 8080 (one line to each connection) until the file argv[1] exists, then exits 0.
SERVER = """import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 8080))
s.listen()
s.settimeout(0.05)
while not os.path.exists(sys.argv[1]):
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.sendall(b"job\\n")
    c.close()
"""
TOPOLOGY = """name: {lab}
network: {{mode: host-gw}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods:
  - {{name: a, node: n1, restartPolicy: Never,
      containers: [{{name: job, command: [python3, {server}, {go}], ports: [{{containerPort: 8080, hostPort: 18080}}]}}]}}
  - {{name: b, node: n2}}
"""
# What a client in a namespace gets from ADDR:18080: the line it was sent, or the error's name.
CONNECT = """import socket, sys
try:
    s = socket.create_connection((sys.argv[1], 18080), timeout=3)
    print(s.recv(64).decode().strip() or "closed")
except OSError as exc:
    print(type(exc).__name__)
"""


def dial(lab: str, address: str) -> str:
    return in_netns(f"{lab}-b", "python3", "-c", CONNECT, address, check=True).stdout.strip()


def test_a_terminal_pod_s_host_port_is_taken_out_as_its_sandbox_s_cni_del_would(labs, tmp_path):
    server, go = tmp_path / "server.py", tmp_path / "go"
    server.write_text(SERVER)
    lab = labs.name("th")
    path = labs.up_here(TOPOLOGY.format(lab=lab, server=server, go=go))
    n1 = f"{lab}-n1"
    a_ip, n1_ip = ipv4_of(f"{lab}-a", "eth0"), ipv4_of(n1, "eth0")
    chain = pod_chain("cbr0", container_id(lab, "a"))

    # running: portmap's DNAT takes the other node's connection to the pod's server
    assert wait_for(lambda: dial(lab, n1_ip) == "job", 10), dial(lab, n1_ip)
    assert portmaps(saved(n1)) == real_plugin(lab, a_ip)

    # it exits 0: Completed; its DNAT is left, which status and trace say
    go.touch()
    assert wait_for(lambda: [to_json(p)["status"] for p in Lab(lab).pods() if p.name == "a"] == ["Completed"], 20)
    assert chain in "\n".join(saved(n1))
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1
    assert ("  hostport: pod a has terminated (its containers exited for good: Completed or Error) and portmap's rules "
            "still DNAT its hostPort 18080/tcp on node n1 to it; up takes them out, as the CNI DEL of the sandbox a "
            "kubelet stops does") in status.stdout.splitlines(), status.stdout
    code, before = traced(lab, "b", "n1", "--port", "18080")
    assert code == 1 and before["endpoint"]["endpoint"] == "a" and before["endpoint"]["via"] == "HostPort", before
    assert any("portmap's DNAT of its hostPort is left from when it ran" in n for n in before["notes"]), before

    # up: the node's nat table holds what the real plugin's ADD then DEL leave; all as planned
    assert f"deleted stale nat chains {chain}" in netlab("up", "-t", path).stdout
    assert portmaps(saved(n1)) == real_plugin(lab, a_ip, ("ADD", "DEL"))
    assert chain not in "\n".join(saved(n1))
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    assert [to_json(p)["status"] for p in Lab(lab).pods() if p.name == "a"] == ["Completed"]

    # real traffic: the node itself refuses the hostPort now; trace says why, and blames nothing
    assert dial(lab, n1_ip) == "ConnectionRefusedError"
    code, after = traced(lab, "b", "n1", "--port", "18080")
    assert code == 1 and after["endpoint"] is None, after
    assert after["refused"].endswith("tcp port 18080 of n1 is pod a's hostPort, but pod a has terminated (its "
                                     "containers exited for good: Completed or Error): a kubelet stops a terminated "
                                     "pod's sandbox, whose CNI DEL took out portmap's DNAT of it"), after["refused"]
    assert not [h for h in after["hops"] if h.get("problem")], after["hops"]
    assert not any("left from when it ran" in n for n in after["notes"]), after["notes"]

    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
