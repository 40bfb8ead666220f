"""Services are namespaced, as in Kubernetes (root): a Service's namespace is part of its identity, whatever its
name, and whichever namespace its selector's pods are in.

Each test brings a small lab up through the CLI (the ``labs`` fixture) and checks it with the kernel's view
(``ip netns``, ``iptables-save``, the pod's ``resolv.conf``) and real traffic from a pod (``getent hosts``, a TCP
connection to the echo server, which answers with its pod name).
"""

from __future__ import annotations

import json
import sys

import pytest

from helpers import in_netns, lab_namespaces, netlab

pytestmark = pytest.mark.root

CONNECT = r"""
import json, socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
except OSError as exc:
    print(json.dumps({"error": exc.__class__.__name__}))
    sys.exit()
s.sendall(b"hello\n")
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode().strip())
"""


def connect(netns: str, host: str, port: int) -> dict:
    """One TCP connection from ``netns`` (a name resolves through the pod's resolv.conf): the echo server's
    answer, or the error."""
    proc = in_netns(netns, sys.executable, "-c", CONNECT, host, str(port), timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def hosts(netns: str, name: str) -> list[str]:
    return in_netns(netns, "getent", "hosts", name).stdout.split()


def test_a_users_kube_dns_service_in_default_keeps_the_cluster_dns(labs):
    """A Service default/kube-dns silently removed the cluster DNS add-on: no kube-dns pod, no Service
    kube-system/kube-dns, pods with the host's resolver, no name resolved. They are two objects: the add-on
    keeps 10.96.0.10, the user's Service gets its own ClusterIP, and each answers."""
    name = labs.name("hdk")
    _, proc = labs.up(f"""name: {name}
nodes: [{{name: n1}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}}}
  - {{name: client, node: n1}}
services:
  - {{name: kube-dns, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
""")
    assert f"{name}-kube-dns" in lab_namespaces(name), lab_namespaces(name)  # the add-on's pod
    with open(f"/etc/netns/{name}-client/resolv.conf") as fh:
        assert "nameserver 10.96.0.10\n" in fh.read()
    client = f"{name}-client"
    assert hosts(client, "kube-dns.kube-system.svc.cluster.local")[0] == "10.96.0.10"
    assert hosts(client, "kube-dns.default.svc.cluster.local")[0] == "10.96.0.11"
    assert hosts(client, "kube-dns")[0] == "10.96.0.11"  # the client's own namespace first, as kubelet writes it
    assert hosts(client, "kubernetes.default")[0] == "10.96.0.1"
    # the user's Service by its name, through the cluster DNS, to its endpoint
    assert connect(client, "kube-dns.default.svc.cluster.local", 80).get("pod") == "web-1"
    svcs = json.loads(netlab("get", "services", "--lab", name, "-o", "json").stdout)["items"]
    assert {(s["namespace"], s["name"], s["cluster_ip"]) for s in svcs} == {
        ("default", "kube-dns", "10.96.0.11"), ("kube-system", "kube-dns", "10.96.0.10")}


def test_a_service_selecting_pods_of_another_namespace_only_is_up_without_endpoints_and_refused(labs):
    """Service y/web selecting app=web, the app=web pods in x: up refused it (exit 2). Kubernetes accepts it and
    the Service has no endpoints (a Service selects pods of its own namespace): kube-proxy's REJECT answers it,
    up says why in a note, and probe expects it refused."""
    name = labs.name("hdn")
    _, proc = labs.up(f"""name: {name}
nodes: [{{name: n1}}]
namespaces: [{{name: x}}, {{name: y}}]
pods:
  - {{name: w1, node: n1, namespace: x, labels: {{app: web}}}}
  - {{name: client, node: n1, namespace: y}}
services:
  - {{name: web, namespace: y, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
""")
    said = [line for line in proc.stderr.splitlines() if line.startswith("netlab: note: ")]
    assert len(said) == 1 and said[0].endswith(  # at the Service's selector, line 8 of the file
        ":8: services[0].selector: service y/web port 80/TCP: no pod of namespace y has the labels app=web (x/w1 "
        "matches, in other namespaces: a Service selects pods of its own namespace only): no endpoints, so "
        "kube-proxy rejects its connections"), proc.stderr
    filter_rules = in_netns(f"{name}-n1", "iptables-save", "-t", "filter", check=True).stdout
    assert ('-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment "y/web has no endpoints" -m tcp '
            "--dport 80 -j REJECT --reject-with icmp-port-unreachable") in filter_rules, filter_rules
    nat_rules = in_netns(f"{name}-n1", "iptables-save", "-t", "nat", check=True).stdout
    assert "y/web" not in nat_rules  # no KUBE-SVC chain, no DNAT to w1: it is no endpoint
    client = f"{name}-client"
    assert hosts(client, "web")[0] == "10.96.0.20"  # y's web, from y
    assert connect(client, "web", 80) == {"error": "ConnectionRefusedError"}  # refused at once, not w1's answer
    assert connect(f"{name}-w1", "10.96.0.20", 80) == {"error": "ConnectionRefusedError"}
    probe = netlab("probe", "--lab", name, "--proto", "tcp", "-o", "json", check=False)
    report = json.loads(probe.stdout)
    web = [r for r in report["probes"] if r["service"] and r["service"]["namespace"] == "y"]
    assert web and all(r["expected"] == r["observed"] == "unreachable" and r["as_expected"] for r in web), web
    assert probe.returncode == 0 and report["ok"], probe.stdout[-3000:]


def test_get_tells_services_of_two_namespaces_apart(labs):
    """`get services` printed two rows `web` and no namespace, and `get services x/web` failed where trace takes
    svc/x/web: the table begins with a NAMESPACE column when names repeat, and NAMESPACE/NAME picks one."""
    name = labs.name("hdg")
    labs.up(f"""name: {name}
nodes: [{{name: n1}}]
namespaces: [{{name: x}}, {{name: y}}]
pods:
  - {{name: a, node: n1, namespace: x, labels: {{app: web}}}}
  - {{name: b, node: n1, namespace: y, labels: {{app: web}}}}
services:
  - {{name: web, namespace: x, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
  - {{name: web, namespace: y, selector: {{app: web}}, clusterIP: 10.96.0.30, ports: [{{port: 80, targetPort: 8080}}]}}
""")
    ip = {p: in_netns(f"{name}-{p}", "ip", "-4", "-o", "addr", "show", "eth0").stdout.split()[3].split("/")[0]
          for p in "ab"}  # the pods' addresses, as the kernel has them
    lines = netlab("get", "services", "--lab", name).stdout.splitlines()
    assert lines[0].split()[:3] == ["NAMESPACE", "NAME", "TYPE"], lines
    rows = {tuple(line.split()[:3]): line.split()[-1] for line in lines[1:]}
    assert rows[("x", "web", "ClusterIP")] == f"{ip['a']}:8080" and rows[("y", "web", "ClusterIP")] == f"{ip['b']}:8080"
    assert ("kube-system", "kube-dns", "ClusterIP") in rows
    one = netlab("get", "services", "--lab", name, "y/web", "-o", "json").stdout
    assert [(s["namespace"], s["cluster_ip"]) for s in json.loads(one)["items"]] == [("y", "10.96.0.30")]
    table = netlab("get", "svc", "--lab", name, "x/web").stdout.splitlines()
    assert [line.split()[:3] for line in table] == [["NAME", "TYPE", "CLUSTER-IP"], ["web", "ClusterIP", "10.96.0.20"]]
    both = netlab("get", "svc", "--lab", name, "web", "-o", "json").stdout
    assert [s["namespace"] for s in json.loads(both)["items"]] == ["x", "y"]
    # NAMES the lab does not have, as kubectl's NotFound: the ones found printed, a line each for the others, exit 1
    listed = "(services: x/web, y/web, kube-dns)"
    nowhere = netlab("get", "svc", "--lab", name, "z/web", check=False)
    assert (nowhere.returncode, nowhere.stdout) == (1, "")
    assert nowhere.stderr.strip() == f"netlab: lab {name} has no service 'web' in namespace 'z' {listed}"
    some = netlab("get", "svc", "--lab", name, "x/web", "z/web", "nope", "-o", "json", check=False)
    assert some.returncode == 1
    assert [(s["namespace"], s["cluster_ip"]) for s in json.loads(some.stdout)["items"]] == [("x", "10.96.0.20")]
    assert some.stderr.splitlines() == [f"netlab: lab {name} has no service 'web' in namespace 'z' {listed}",
                                        f"netlab: lab {name} has no service 'nope' in any namespace {listed}"]
    # the shell completes the names get (and trace, after svc/) take
    from click.shell_completion import ShellComplete

    from netlab.cli import cli

    offered = ShellComplete(cli, {}, "netlab", "_NETLAB_COMPLETE").get_completions(["get", "svc", "--lab", name], "")
    assert [i.value for i in offered] == ["x/web", "y/web", "kube-dns"]
    # traffic agrees: x's web is a's, y's is b's
    assert connect(f"{name}-b", "web.x", 80).get("pod") == "a"
    assert connect(f"{name}-a", "web.y", 80).get("pod") == "b"
    # pods have namespaces too
    pods = netlab("get", "pods", "--lab", name, "x/a", "-o", "json").stdout
    assert [(p["namespace"], p["name"]) for p in json.loads(pods)["items"]] == [("x", "a")]
    pod_rows = netlab("get", "pods", "--lab", name, "y/a", "b", check=False)
    assert pod_rows.returncode == 1 and [line.split()[0] for line in pod_rows.stdout.splitlines()] == ["NAME", "b"]
    assert pod_rows.stderr == f"netlab: lab {name} has no pod 'a' in namespace 'y' (pods: a, b, kube-dns)\n"
