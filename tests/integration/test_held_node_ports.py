"""A running lab's Services keep their nodePorts and healthCheckNodePort through an `up` of an edited file, in both
proxy modes (root): a NodePort Service put above them in the file takes a free port and moves none of theirs, the
kernel's rules (iptables-save, nft -j) still send each kept port to its Service and real traffic from an internet
host to the node's port reaches the pod; the health check answers HTTP on its kept port. A nodePort the file now
declares for another Service is that one's: the holder gets a new one, which up says in a line. A Service port
renumbered keeps its nodePort by its name (the API server's patchAllocatedValues), named or the one unnamed port:
the kernel's rules send the kept port to the new port's Service and the internet host's connection there reaches
the pod; a LoadBalancer no longer Local gives its healthCheckNodePort up, which up says in a line (-o json: in
warnings). tests/unit/test_nodeports_held.py and test_nodeports_by_name.py check the allocation itself."""

from __future__ import annotations

import json
import re

import pytest

from helpers import in_netns, ipv4_of, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

HEAD = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}]
internet: {{hosts: [{{name: client, ip: 203.0.113.50}}]}}
pods: [{{name: web, node: n1, labels: {{app: web}}}}]
services:
"""
LB = ("  - {name: lb, type: LoadBalancer, externalTrafficPolicy: Local, selector: {app: web}, "
      "ports: [{port: 80, targetPort: 8080}]}\n")


def node_port(name: str, port: int, declared: int | None = None) -> str:
    np = f", nodePort: {declared}" if declared else ""
    return (f"  - {{name: {name}, type: NodePort, selector: {{app: web}}, "
            f"ports: [{{port: {port}, targetPort: 8080{np}}}]}}\n")


def rules(lab: str, mode: str) -> dict[int, str]:
    """Each nodePort of node n1 and the Service port its rule sends it to (``svc``, or ``svc:portname`` for a
    named port), as the kernel has them: iptables' KUBE-NODEPORTS comment, or nft's service-nodeports map's chain
    name, whose tail is namespace/name/protocol/portname."""
    netns = f"{lab}-n1"
    if mode == "iptables":
        text = in_netns(netns, "iptables-save", "-t", "nat", check=True).stdout
        return {int(m[2]): m[1] for m in re.finditer(
            r'^-A KUBE-NODEPORTS .*--comment "?default/([\w:-]+)"? .*--dport (\d+) -j KUBE-EXT-', text, re.M)}
    got = json.loads(in_netns(netns, "nft", "-j", "list", "map", "ip", "kube-proxy", "service-nodeports",
                              check=True).stdout)
    (nft_map,) = [item["map"] for item in got["nftables"] if "map" in item]
    out = {}
    for key, value in nft_map["elem"]:
        name, port_name = re.search(r"-default/(\w+)/tcp/([\w-]*)$", value["goto"]["target"]).groups()
        out[key["concat"][1]] = f"{name}:{port_name}" if port_name else name
    return out


def check_accepted(lab: str, mode: str) -> list[str]:
    """The healthCheckNodePorts n1's filter table accepts (iptables mode: kube-proxy's KUBE-NODEPORTS of filter)."""
    if mode != "iptables":
        return []
    text = in_netns(f"{lab}-n1", "iptables-save", "-t", "filter", check=True).stdout
    return re.findall(r'--comment "default/lb health check node port" -m tcp --dport (\d+) -j ACCEPT', text)


def reaches(lab: str, node: str, port: int) -> str:
    """The pod that answers the internet host's connection to ``node``'s ``port``."""
    got = in_netns(f"{lab}-client", "curl", "-s", "-m", "3", f"http://{node}:{port}/", timeout=10)
    assert got.returncode == 0, (port, got.returncode, got.stderr)
    return json.loads(got.stdout.strip().splitlines()[-1])["pod"]


def health(lab: str, node: str, port: int) -> tuple[str, dict]:
    got = in_netns(f"{lab}-client", "curl", "-s", "-i", "-m", "3", f"http://{node}:{port}/healthz", timeout=10)
    assert got.returncode == 0, (port, got.returncode, got.stderr)
    head, _, body = got.stdout.partition("\n\n")
    return head.split("\n")[0].split()[1], json.loads(body)


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_service_added_above_moves_no_running_node_port_and_a_declared_one_displaces_its_holder(tmp_path, mode):
    lab = unique_lab("hnp")
    path = write_topology(tmp_path, HEAD.format(name=lab, mode=mode) + LB + node_port("a", 81))
    with lab_up(path, lab, in_process=True):
        n1 = ipv4_of(f"{lab}-n1", "eth0")
        assert rules(lab, mode) == {30000: "lb", 30002: "a"}  # lb's health check has 30001
        assert health(lab, n1, 30001)[0] == "200"
        write_topology(tmp_path, HEAD.format(name=lab, mode=mode) + node_port("first", 82) + LB
                       + node_port("new", 83, declared=30002) + node_port("a", 81))
        up = netlab("up", "-t", path)
        # a fresh lab of this file would give first 30000, lb 30001 and its check 30003: the running ones keep theirs
        assert rules(lab, mode) == {30000: "lb", 30003: "first", 30002: "new", 30004: "a"}
        status, body = health(lab, n1, 30001)
        assert check_accepted(lab, mode) == (["30001"] if mode == "iptables" else [])
        assert status == "200" and body["service"] == {"namespace": "default", "name": "lb"}
        for port in (30000, 30002, 30003, 30004):
            assert reaches(lab, n1, port) == "web"
        got = json.loads(netlab("get", "services", "--lab", lab, "-o", "json").stdout)["items"]
        assert {s["name"]: ([p["node_port"] for p in s["ports"]], s["health_check_node_port"]) for s in got
                if s["type"] != "ClusterIP"} == {"first": ([30003], None), "lb": ([30000], 30001),
                                                 "new": ([30002], None), "a": ([30004], None)}
        assert ("service default/a's port 81/TCP held nodePort 30002, which service default/new asks for "
                "(nodePort:): it gets 30004, a new port") in up.stdout + up.stderr
        assert netlab("status", "--lab", lab, check=False).returncode == 0


def renumbered_head(name: str, mode: str, web: int, plain: int, local: bool) -> str:
    policy = ", externalTrafficPolicy: Local" if local else ""
    return (HEAD.format(name=name, mode=mode) + ("" if local else node_port("first", 83))
            + f"  - {{name: web, type: NodePort, selector: {{app: web}}, "
              f"ports: [{{name: http, port: {web}, targetPort: 8080}}]}}\n"
            + f"  - {{name: plain, type: NodePort, selector: {{app: web}}, "
              f"ports: [{{port: {plain}, targetPort: 8080}}]}}\n"
            + f"  - {{name: lb, type: LoadBalancer{policy}, selector: {{app: web}}, "
              f"ports: [{{port: 80, targetPort: 8080}}]}}\n")


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_renumbered_port_keeps_its_node_port_by_name_and_a_health_check_given_up_is_said(tmp_path, mode):
    lab = unique_lab("np")
    path = write_topology(tmp_path, renumbered_head(lab, mode, 81, 82, local=True))
    with lab_up(path, lab, in_process=True):
        n1 = ipv4_of(f"{lab}-n1", "eth0")
        assert rules(lab, mode) == {30000: "web:http", 30001: "plain", 30002: "lb"}  # lb's check: 30003
        assert check_accepted(lab, mode) == (["30003"] if mode == "iptables" else [])
        assert reaches(lab, n1, 30000) == "web"
        # each port renumbered (the named one and the single unnamed one), the balancer no longer Local, a
        # Service put first: it takes a free port, not the check's (a Service's update releases it after it
        # allocates), nor a renumbered port's
        write_topology(tmp_path, renumbered_head(lab, mode, 91, 92, local=False))
        up = netlab("up", "-t", path, "-o", "json")
        assert rules(lab, mode) == {30000: "web:http", 30001: "plain", 30002: "lb", 30004: "first"}
        assert check_accepted(lab, mode) == []
        for port in (30000, 30001, 30002, 30004):
            assert reaches(lab, n1, port) == "web"
        got = json.loads(netlab("get", "services", "--lab", lab, "-o", "json").stdout)["items"]
        assert {s["name"]: ([(p["port"], p["node_port"]) for p in s["ports"]], s["health_check_node_port"])
                for s in got if s["type"] != "ClusterIP"} == {"first": ([(83, 30004)], None),
                                                              "web": ([(91, 30000)], None),
                                                              "plain": ([(92, 30001)], None),
                                                              "lb": ([(80, 30002)], None)}
        line = ("service default/lb held healthCheckNodePort 30003, which it gives up as it is no longer a "
                "LoadBalancer with externalTrafficPolicy Local: the port is freed")
        assert line in json.loads(up.stdout)["warnings"] and up.stderr.count(line) == 1
        assert netlab("status", "--lab", lab, check=False).returncode == 0
