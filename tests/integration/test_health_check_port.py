"""kube-proxy's health checks on a real lab (root), in both proxy modes: a LoadBalancer Service with
externalTrafficPolicy Local is answered on its healthCheckNodePort by every node, 200 where the node has an
endpoint and 503 where it has none, with kube-proxy's headers and body, over real TCP from an internet host;
the internet's gateway routes the LoadBalancer IP only to the nodes whose check answers 200, so it is always answered
(and probed), the endpoint seeing the internet host's own address; the answer follows the endpoint when its pod moves; a killed echo server (which answers for kube-proxy) is
drift, and `up` serves the checks again; a Service that loses its check is no longer answered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from helpers import in_netns, ipv4_of, lab_up, netlab, probe_failures, unique_lab, wait_for, write_topology
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.workload import launch

pytestmark = pytest.mark.root

TOPO = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: web, node: {node}, labels: {{app: web}}}}
  - {{name: other, node: n2}}
services:
  - name: web
    type: LoadBalancer
    externalTrafficPolicy: Local
    healthCheckNodePort: 30999
    selector: {{app: web}}
    ports: [{{port: 80, targetPort: 8080}}]
"""


def ask(client: str, address: str) -> tuple[int, dict[str, str], dict]:
    """GET /healthz from ``client``: status, headers, body (JSON)."""
    got = in_netns(client, "curl", "-s", "-i", "-m", "3", f"http://{address}:30999/healthz", timeout=10)
    assert got.returncode == 0, (got.returncode, got.stderr)
    head, _, body = got.stdout.partition("\n\n")  # text mode: curl's CRLFs read as newlines
    lines = head.split("\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def kill_the_echo_server(name: str) -> None:
    """Kill the lab's echo server, which answers for kube-proxy: `status` says the checks are not served (exit 1)."""
    pid = launch.server_pid(name)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: launch.server_pid(name) is None)
    status_run = netlab("status", "--lab", name, check=False)
    assert status_run.returncode == 1
    assert "kube-proxy: health checks not served: the lab's echo server is not running" in status_run.stdout


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_every_node_answers_for_kube_proxy_and_follows_the_endpoint(tmp_path, mode):
    name = unique_lab("hck")
    path = write_topology(tmp_path, TOPO.format(name=name, mode=mode, node="n1"))
    with lab_up(path, name):
        n1, n2, client = ipv4_of(f"{name}-n1", "eth0"), ipv4_of(f"{name}-n2", "eth0"), f"{name}-client"
        status, headers, body = ask(client, n1)
        assert status == 200, body
        assert headers["Content-Type"] == "application/json" and headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Load-Balancing-Endpoint-Weight"] == "1" and headers["Date"].endswith(" GMT")
        assert list(headers) == ["Content-Type", "X-Content-Type-Options", "X-Load-Balancing-Endpoint-Weight",
                                 "Connection", "Date", "Content-Length"]  # the README's list, as curl shows them
        assert body == {"service": {"namespace": "default", "name": "web"}, "localEndpoints": 1,
                        "serviceProxyHealthy": True}
        status, _, body = ask(client, n2)
        assert (status, body["localEndpoints"]) == (503, 0)
        # The kernel's view: a listening socket in each node's namespace, none in the host's.
        for node in ("n1", "n2"):
            ss = in_netns(f"{name}-{node}", "ss", "-Hltn", "sport = :30999", check=True).stdout
            assert "0.0.0.0:30999" in ss, ss
        assert "30999" not in subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
        assert netlab("status", "--lab", name, check=False).returncode == 0

        # The gateway routes the LoadBalancer IP only to n1, whose check answers 200: every connection is answered,
        # and the endpoint sees the internet host's own address (externalTrafficPolicy Local: no NAT on the way).
        lb_ip = str(resolve(load_topology(path)).addressing.lb_ip[("default", "web")])
        [route] = json.loads(in_netns(f"{name}-gateway", "ip", "-j", "route", "show", f"{lb_ip}/32",
                                      check=True).stdout)
        assert route["gateway"] == n1 and "nexthops" not in route, route  # one node: a plain route
        seen = set()
        for _ in range(10):
            got = in_netns(client, "curl", "-s", "-m", "3", f"http://{lb_ip}/", timeout=10)
            assert got.returncode == 0, (got.returncode, got.stderr)
            answer = json.loads(got.stdout.strip().splitlines()[-1])
            seen.add((answer["pod"], answer["client"].split(":")[0]))
        assert seen == {("web", "203.0.113.50")}, seen
        run = netlab("probe", "--lab", name, "--proto", "tcp", "-o", "json", check=False)
        report = json.loads(run.stdout)
        assert run.returncode == 0, probe_failures(report)
        assert any(lb_ip in json.dumps(p) for p in report["probes"]), "the LoadBalancer IP was probed"

        # The pod moves to n2: the checks' answers follow it.
        moved = write_topology(tmp_path, TOPO.format(name=name, mode=mode, node="n2"), "moved.yaml")
        netlab("up", "-t", moved, "--reconfigure")
        assert ask(client, n1)[0] == 503 and ask(client, n2)[:1] == (200,)
        assert ask(client, n2)[2]["localEndpoints"] == 1

        # The echo server that answers for kube-proxy killed: drift, named; up serves the checks again.
        kill_the_echo_server(name)
        netlab("up", "-t", moved)
        assert ask(client, n2)[0] == 200 and ask(client, n1)[0] == 503
        assert netlab("status", "--lab", name, check=False).returncode == 0

        # externalTrafficPolicy Cluster: no health check any more, and nothing answers on its old port.
        cluster = TOPO.format(name=name, mode=mode, node="n2").replace("    externalTrafficPolicy: Local\n", "")
        cluster = cluster.replace("    healthCheckNodePort: 30999\n", "")
        netlab("up", "-t", write_topology(tmp_path, cluster, "cluster.yaml"), "--reconfigure")
        for address in (n1, n2):
            got = in_netns(client, "curl", "-s", "-m", "3", f"http://{address}:30999/healthz", timeout=10)
            assert got.returncode == 7, (got.returncode, got.stdout)  # refused: no listener
        assert netlab("status", "--lab", name, check=False).returncode == 0


# kube-proxy's own health server: every node, whatever its Services, the lab's pods all running commands (so the
# lab's echo server runs for the health server alone)
PROXY_TOPO = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: a, node: n1, containers: [{{name: c, command: [sleep, infinity]}}]}}
"""
GO_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,9})? \+0000 UTC m=\+\d+\.\d{9}"


def get_10256(client: str, address: str, path: str) -> tuple[int, list[tuple[str, str]], str]:
    got = in_netns(client, "curl", "-s", "-i", "-m", "3", f"http://{address}:10256{path}", timeout=10)
    assert got.returncode == 0, (got.returncode, got.stderr)
    head, _, body = got.stdout.partition("\n\n")
    lines = head.split("\n")
    return int(lines[0].split()[1]), [tuple(line.split(": ", 1)) for line in lines[1:]], body


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_every_node_answers_kube_proxys_healthz_and_livez_on_10256(tmp_path, mode):
    """QA: `curl <node IP>:10256/healthz` was refused; real kube-proxy always listens there (healthzBindAddress)."""
    import re

    name = unique_lab("hkp")
    path = write_topology(tmp_path, PROXY_TOPO.format(name=name, mode=mode))
    with lab_up(path, name):
        client = f"{name}-client"
        for node in ("n1", "n2"):
            address = ipv4_of(f"{name}-{node}", "eth0")
            status, headers, body = get_10256(client, address, "/healthz")
            assert status == 200 and [h for h, _ in headers] == [
                "Content-Type", "X-Content-Type-Options", "Connection", "Date", "Content-Length"], headers
            assert headers[:2] == [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")]
            got = json.loads(body)
            assert list(got) == ["lastUpdated", "currentTime", "nodeEligible"] and got["nodeEligible"] is True
            assert re.fullmatch(GO_TIME, got["currentTime"]) and got["lastUpdated"] == got["currentTime"], got
            status, _, body = get_10256(client, address, "/livez?verbose")
            assert status == 200 and list(json.loads(body)) == ["lastUpdated", "currentTime"]
            assert get_10256(client, address, "/metrics")[::2] == (404, "404 page not found\n")
            ss = in_netns(f"{name}-{node}", "ss", "-Hltn", "sport = :10256", check=True).stdout
            assert "0.0.0.0:10256" in ss, ss
        # a pod reaches its own node's too (a cloud balancer's check comes from outside; kubelet-style from inside)
        assert in_netns(f"{name}-a", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "3",
                        f"http://{ipv4_of(f'{name}-n1', 'eth0')}:10256/healthz", timeout=10).stdout == "200"
        assert ":10256 " not in subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
        assert netlab("status", "--lab", name, check=False).returncode == 0
        # Not served (its server killed): status says so for every node; up serves it again.
        kill_the_echo_server(name)
        netlab("up", "-t", path)
        assert get_10256(client, ipv4_of(f"{name}-n2", "eth0"), "/healthz")[0] == 200
        status_run = netlab("status", "--lab", name, check=False)
        assert status_run.returncode == 0, status_run.stdout
