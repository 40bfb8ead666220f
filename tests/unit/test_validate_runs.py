"""Input that validates must run (issue 9, section 5).

``validate`` ok must mean that ``plan`` and ``up`` do not fail on the same
input. The property: every topology that validates resolves and builds a plan
without an exception, and every address the plan gives the kernel is one the
kernel takes (not in 0.0.0.0/8, loopback, multicast or reserved space). The
generator draws topologies near the edges (tiny CIDRs, full service ranges,
many LoadBalancers, explicit addresses), where the siblings of the known
cases live. Known cases have tests of their own below, through the CLI too.
"""

from __future__ import annotations

import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network

import pytest
import yaml
from cli_inprocess import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.errors import TopologyError
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.plan.resources import Address, Fdb, Neigh, Route, Vxlan

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KERNEL_REFUSES = [IPv4Network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")]

# Mostly usable values, with the edge ones (the kernel's special ranges, tiny CIDRs) less often.
GOOD_POD_CIDRS = ["10.244.0.0/16", "10.244.0.0/22", "10.244.0.0/26", "100.64.0.0/10"]
POD_CIDRS = GOOD_POD_CIDRS * 6 + ["0.0.0.0/16", "0.0.0.0/8", "126.0.0.0/7", "224.0.0.0/8", "255.255.0.0/16",
                                  "192.168.0.0/16"]
SERVICE_CIDRS = ["10.96.0.0/12"] * 6 + ["10.96.0.0/28", "10.96.0.0/29", "10.96.0.0/30", "10.96.0.0/27",
                                        "127.1.0.0/16"]
UNDERLAYS = ["192.168.122.0/24"] * 6 + ["192.168.122.0/29", "192.168.122.0/28", "172.16.0.0/12", "0.1.0.0/24"]
INTERNETS = ["203.0.113.0/24"] * 3 + ["203.0.113.0/29", "203.0.113.0/30", "203.0.113.0/31", "203.0.113.0/28",
                                      "198.51.100.0/24"]

labels = st.sampled_from(["a", "b", "web", "x-1"])


@st.composite
def topologies(draw) -> dict:
    nodes = [f"n{i}" for i in range(draw(st.integers(1, 4)))]
    pod_cidr = draw(st.sampled_from(POD_CIDRS))
    topo: dict = {"name": "p", "cluster": {"podCIDR": pod_cidr, "serviceCIDR": draw(st.sampled_from(SERVICE_CIDRS)),
                                          "nodeMask": max(IPv4Network(pod_cidr).prefixlen,
                                                          draw(st.sampled_from([24, 24, 26, 28, 16])))},
                  "network": {"mode": draw(st.sampled_from(["vxlan", "host-gw"])),
                              "underlay": {"cidr": draw(st.sampled_from(UNDERLAYS))}},
                  "nodes": []}
    for name in nodes:
        node: dict = {"name": name}
        if draw(st.booleans()) and draw(st.booleans()):
            node["ip"] = draw(st.sampled_from(["192.168.122.2", "192.168.122.7", "192.168.122.6", "172.16.0.9"]))
        topo["nodes"].append(node)
    pods = []
    for i in range(draw(st.integers(0, 6))):
        pod: dict = {"name": f"p{i}", "node": draw(st.sampled_from(nodes))}
        if draw(st.booleans()):
            pod["labels"] = {"app": draw(labels)}
        kind = draw(st.sampled_from(["none", "echo", "echo-port", "command", "two-echo"]))
        if kind == "echo":
            pod["containers"] = [{"name": "c"}]
        elif kind == "echo-port":
            pod["containers"] = [{"name": "c", "ports": [{"containerPort": draw(st.sampled_from([80, 8080, 53])),
                                                          "protocol": draw(st.sampled_from(["TCP", "UDP"]))}]}]
        elif kind == "command":
            pod["containers"] = [{"name": "c", "command": ["sleep", "1"]}]
        elif kind == "two-echo":
            pod["containers"] = [{"name": "c"}, {"name": "d", "ports": draw(st.sampled_from(
                [[], [{"containerPort": 8080}]] + [[{"containerPort": 81}]] * 4))}]
        pods.append(pod)
    topo["pods"] = pods
    if draw(st.integers(0, 2)):  # LoadBalancers need one
        cidr = IPv4Network(draw(st.sampled_from(INTERNETS)))
        topo["internet"] = {"cidr": str(cidr)}
        first = cidr.network_address
        gw = draw(st.sampled_from([None, first + 1, first + 2, first + 1]))
        if gw:
            topo["internet"]["gateway"] = {"ip": str(gw)}
        offsets = [o for o in (2, 3, 4, 10) if o < cidr.num_addresses - 1]
        topo["internet"]["hosts"] = [{"name": f"h{i}", "ip": str(first + draw(st.sampled_from(offsets)))}
                                     for i in range(draw(st.integers(0, 2)) if offsets else 0)]
    services = []
    for i in range(draw(st.integers(0, 5))):
        kinds = ["ClusterIP", "NodePort", "LoadBalancer"] if "internet" in topo else ["ClusterIP", "NodePort"]
        svc: dict = {"name": f"s{i}", "type": draw(st.sampled_from(kinds)),
                     "ports": [{"port": draw(st.sampled_from([80, 53, 443])),
                                "protocol": draw(st.sampled_from(["TCP", "UDP"]))}]}
        if draw(st.booleans()):
            svc["selector"] = {"app": draw(labels)}
        if svc["type"] != "ClusterIP" and draw(st.booleans()):
            svc["ports"][0]["nodePort"] = draw(st.sampled_from([30000, 30001, 32767]))
        if svc["type"] == "LoadBalancer" and draw(st.booleans()):
            first = IPv4Network(topo["internet"]["cidr"]).network_address
            svc["loadBalancerIP"] = str(first + draw(st.sampled_from([2, 5, 6, 100])))
        if draw(st.booleans()) and draw(st.booleans()):
            svc["clusterIP"] = draw(st.sampled_from(["10.96.0.10", "10.96.0.11", "10.96.0.2"]))
        services.append(svc)
    topo["services"] = services
    return topo


@st.composite
def internet_topologies(draw) -> dict:
    """A valid base with a small internet crowded by hosts and LoadBalancers (their IPs are allocated)."""
    prefix = draw(st.integers(26, 31))
    cidr = IPv4Network(f"203.0.113.0/{prefix}")
    size = cidr.num_addresses
    hosts = draw(st.lists(st.integers(2, max(2, size - 2)), max_size=4, unique=True)) if size > 3 else []
    lbs = draw(st.integers(1, 5))
    explicit = draw(st.lists(st.integers(2, max(2, size - 2)), max_size=2, unique=True)) if size > 3 else []
    services = [{"name": f"lb{i}", "type": "LoadBalancer", "ports": [{"port": 80 + i}]} for i in range(lbs)]
    for i, offset in enumerate(explicit[:lbs]):
        services[i]["loadBalancerIP"] = str(cidr.network_address + offset)
    return {"name": "p", "nodes": [{"name": "a"}], "pods": [{"name": "w", "node": "a", "labels": {"app": "w"}}],
            "internet": {"cidr": str(cidr), "gateway": {"ip": str(cidr.network_address + 1)},
                         "hosts": [{"name": f"h{i}", "ip": str(cidr.network_address + o)}
                                   for i, o in enumerate(hosts)]},
            "services": services}


def plan_or_none(text: str, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    try:
        topo = load_topology(str(path))
    except TopologyError:
        return None
    return build_plan(resolve(topo))


def kernel_addresses(plan) -> list[tuple[str, IPv4Address]]:
    out = []
    for r in plan.resources:
        if isinstance(r, Address):
            out.append((r.describe(), r.address.ip))
        elif isinstance(r, Route):
            out.append((r.describe(), r.dst.network_address))
            if r.gateway is not None:
                out.append((r.describe(), r.gateway))
        elif isinstance(r, (Neigh, Fdb)):
            out.append((r.describe(), r.dst))
        elif isinstance(r, Vxlan):
            out.append((r.describe(), r.local))
    return out


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """One directory for the examples' files: each example writes t.yaml, then reads it back."""
    return tmp_path_factory.mktemp("runs")


# libyaml's emitter when PyYAML has it: the same text as yaml.safe_dump, five times faster.
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def check_runs(topo: dict, tmp_path) -> None:
    plan = plan_or_none(yaml.dump(topo, Dumper=DUMPER), tmp_path)
    if plan is None:
        return
    for what, ip in kernel_addresses(plan):
        if ip == IPv4Address("0.0.0.0"):
            continue  # the default route's destination
        assert not any(ip in net for net in KERNEL_REFUSES), f"{what}: {ip} validated, but the kernel refuses it"


@SETTINGS
@given(topo=topologies())
def test_every_topology_that_validates_builds_a_plan(runs_dir, topo):
    check_runs(topo, runs_dir)


@SETTINGS
@given(topo=internet_topologies())
def test_every_internet_that_validates_builds_a_plan(runs_dir, topo):
    check_runs(topo, runs_dir)


def test_the_property_can_fail(tmp_path, monkeypatch):
    """A plan builder that breaks on valid input is caught."""
    import netlab.plan.build as build

    def broken(lab):
        raise ValueError("boom")

    monkeypatch.setattr(sys.modules[__name__], "build_plan", broken)
    with pytest.raises(ValueError):
        check_runs({"name": "p", "nodes": [{"name": "a"}]}, tmp_path)
    assert build.build_plan is not broken


# --- the known cases, through the CLI as a user runs them ----------------------------------

BASE = "name: p\nnodes: [{name: a}]\n"
KNOWN = {
    "lb-internet-too-small": (
        BASE + "internet: {cidr: 203.0.113.0/30, gateway: {ip: 203.0.113.1}, hosts: [{name: h, ip: 203.0.113.2}]}\n"
               "services: [{name: w, type: LoadBalancer, ports: [{port: 80}]}]\n",
        4, "services[0]", "no free address"),
    "pod-cidr-this-network": (
        "name: p\ncluster: {podCIDR: 0.0.0.0/16}\nnodes: [{name: a}]\n", 2, "cluster.podCIDR", "0.0.0.0/8"),
    "underlay-this-network": (
        "name: p\nnetwork: {underlay: {cidr: 0.1.0.0/24}}\nnodes: [{name: a}]\n", 2, "network.underlay.cidr",
        "0.0.0.0/8"),
    "pod-cidr-covers-loopback": (
        "name: p\ncluster: {podCIDR: 126.0.0.0/7, nodeMask: 16}\nnodes: [{name: a}]\n", 2, "cluster.podCIDR",
        "127.0.0.0/8"),
    "node-ports-run-out": (
        BASE + "services:\n" + "".join(
            f"  - {{name: s{i}, type: NodePort, ports: [{{port: 80}}, {{port: 81}}]}}\n" for i in range(1385)),
        3, "services", "nodePort"),
    "two-echo-servers-on-8080": (
        BASE + "pods: [{name: p1, node: a, containers: [{name: c}, {name: d}]}]\n", 3,
        "pods[0].containers[1]", "8080/TCP"),
    "echo-default-and-declared-8080": (
        BASE + "pods: [{name: p1, node: a, containers: [{name: c, ports: [{containerPort: 8080}]}, {name: d}]}]\n",
        3, "pods[0].containers[1]", "8080/TCP"),
    # A full CIDR is an error, not a silent drop of the cluster DNS pod (which made validation quadratic).
    "service-cidr-full-for-dns": (
        "name: p\ncluster: {serviceCIDR: 10.96.0.0/28}\nnodes: [{name: a}]\nservices:\n" + "".join(
            f"  - {{name: s{i}, ports: [{{port: 80}}]}}\n" for i in range(5)),
        2, "cluster.serviceCIDR", "kube-dns"),
    "no-node-has-room-for-dns": (
        "name: p\ncluster: {nodeMask: 28}\nnodes: [{name: a}]\npods:\n" + "".join(
            f"  - {{name: p{i}, node: a}}\n" for i in range(13)) + "services: [{name: s, ports: [{port: 80}]}]\n",
        4, "pods", "cluster DNS pod kube-dns"),
    # The add-on's pod is the namespace p-kube-dns: a pod of that name was taken for it, and the lab had no DNS.
    "pod-named-kube-dns": (
        BASE + "pods: [{name: kube-dns, node: a}]\nservices: [{name: s, ports: [{port: 80}]}]\n",
        3, "pods[0].name", "the name of the cluster DNS pod"),
}


# Every case through the CLI's entry point in this process (cli_inprocess.py); one again as a
# separate process, as a user runs netlab.
KNOWN_RUNS = [(k, "in-process") for k in sorted(KNOWN)] + [("node-ports-run-out", "process")]


@pytest.mark.parametrize("kind,how", KNOWN_RUNS)
def test_known_cases_are_refused_by_validate_and_plan(tmp_path, kind, how):
    text, line, field, expect = KNOWN[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    for command in ("validate", "plan"):
        if how == "in-process":
            proc = run_cli(command, "-t", str(path))
        else:
            proc = subprocess.run([sys.executable, "-m", "netlab", command, "-t", str(path)], capture_output=True,
                                  text=True, timeout=60)
        assert proc.returncode == 2, (command, proc.stdout[-500:], proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
        hits = [ln for ln in proc.stderr.splitlines() if expect in ln]
        assert hits, proc.stderr
        assert hits[0].startswith(f"{path}:{line}: {field}: "), hits[0]


def test_two_containers_with_a_command_and_no_ports_are_fine(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(BASE + "pods: [{name: p1, node: a, containers: [{name: c, command: [sleep, '1']}, "
                           "{name: d, command: [sleep, '2']}, {name: e}]}]\n")
    build_plan(resolve(load_topology(str(path))))


def test_the_cluster_dns_is_never_dropped(tmp_path):
    """Whatever validates and has Services resolves with the kube-dns pod and Service."""
    from netlab.model import clusterdns

    for n in (4, 1):
        path = tmp_path / "t.yaml"
        path.write_text("name: p\ncluster: {serviceCIDR: 10.96.0.0/28}\nnodes: [{name: a}]\nservices:\n"
                        + "".join(f"  - {{name: s{i}, ports: [{{port: 80}}]}}\n" for i in range(n)))
        lab = resolve(load_topology(str(path)))
        assert clusterdns.dns_service(lab.topo) is not None
        assert any(p.name == clusterdns.DNS_NAME for p in lab.pods)
