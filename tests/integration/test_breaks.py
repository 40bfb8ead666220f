"""netlab break, end to end: every scenario is a real fault that probe sees, trace blames, and up repairs.

One lab per topology is shared by its scenarios (break, check, up, next), so
the suite stays fast: the built-in default lab (two nodes, four pods), the
Services example (also in kube-proxy's nftables mode), and the NetworkPolicy
example (as it ships, and with a Service). For every scenario:

- ``netlab break`` makes the change;
- ``netlab probe`` exits 1, and every flow fails or passes exactly as the
  catalogue's symptom says (a Service flow whose endpoint is picked at random
  may go either way only where the symptom says so);
- ``netlab trace`` blames the hop and fact the catalogue names, not an
  earlier or later one (or, for a flow a policy denies that a fault let
  through, says so in its policy verdict);
- ``netlab up`` repairs: probe exits 0 and status is clean.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from helpers import in_netns, lab_up, netlab, probe_failures, unique_lab
from netlab.breaks import catalogue, quiz, symptoms
from netlab.breaks.changes import STALE_SPORT, dns_udp, peer_node
from netlab.errors import display_path
from netlab.realize.state import running_lab

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(ROOT, "netlab", "data", "default.yaml")
SERVICES = os.path.join(ROOT, "topologies", "services.yaml")
NETPOL = os.path.join(ROOT, "topologies", "netpol-3x3.yaml")


def _lab(tmp_path_factory, source: str):
    name = unique_lab("bk")
    text = open(source, encoding="utf-8").read()
    lines = [f"name: {name}" if line.startswith("name:") else line for line in text.splitlines()]
    path = tmp_path_factory.mktemp(name) / "topo.yaml"
    path.write_text("\n".join(lines) + "\n")
    return name, str(path)


@pytest.fixture(scope="module")
def default_lab(tmp_path_factory):
    name, path = _lab(tmp_path_factory, DEFAULT)
    with lab_up(path, name):
        yield name, path


@pytest.fixture(scope="module")
def one_sided_lab(tmp_path_factory):
    """Two nodes, every pod on the first: the second node has only itself to show a fault with."""
    name = unique_lab("bk2")
    path = tmp_path_factory.mktemp(name) / "topo.yaml"
    path.write_text(f"name: {name}\nnodes: [{{name: n1}}, {{name: n2}}]\n"
                    "pods: [{name: a, node: n1}, {name: b, node: n1}]\n")
    with lab_up(str(path), name):
        yield name, str(path)


@pytest.fixture(scope="module")
def services_lab(tmp_path_factory):
    name, path = _lab(tmp_path_factory, SERVICES)
    with lab_up(path, name):
        yield name, path


@pytest.fixture(scope="module")
def services_nft_lab(tmp_path_factory):
    name, path = _lab(tmp_path_factory, SERVICES)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("cluster: {kubeProxyMode: nftables}\n")
    with lab_up(path, name):
        yield name, path


@pytest.fixture(scope="module")
def netpol_example_lab(tmp_path_factory):
    """The NetworkPolicy example as it ships: no Service."""
    name, path = _lab(tmp_path_factory, NETPOL)
    shutil.copytree(os.path.join(ROOT, "topologies", "netpol"), os.path.join(os.path.dirname(path), "netpol"))
    with lab_up(path, name):
        yield name, path


@pytest.fixture(scope="module")
def policy_lab(tmp_path_factory):
    """The NetworkPolicy example (x, y, z × a, b, c; two policies on namespace x) with a Service of y's b pods,
    so with the cluster DNS pod too (on n1)."""
    name, path = _lab(tmp_path_factory, NETPOL)
    shutil.copytree(os.path.join(ROOT, "topologies", "netpol"), os.path.join(os.path.dirname(path), "netpol"))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("services:\n  - {name: svc-b, namespace: y, selector: {pod: b}, ports: [{port: 80}]}\n")
    with lab_up(path, name):
        yield name, path


def _probe(lab: str, *args: str) -> tuple[int, dict]:
    proc = netlab("probe", "--lab", lab, "-o", "json", *args, check=False)
    return proc.returncode, json.loads(proc.stdout)


def _blamed(trace: dict) -> dict | None:
    return trace.get("lost") or trace.get("reply_lost")


def _check(lab: str, path: str, name: str, target_name: str | None = None, also=None) -> None:
    """``also(model)``: more checks on the broken lab, before ``up`` repairs it."""
    s = catalogue.scenario(name)
    assert s is not None
    model = running_lab(lab).resolved()
    target = catalogue.resolve_target(s, model, target_name)
    try:
        out = netlab("break", name, "--lab", lab, *(["--target", target_name] if target_name else []))
        assert f"broke {name}" in out.stdout
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 1  # the kernel really changed
        # the repair is up from the lab's own file (a plain `sudo netlab up` makes the built-in lab "demo")
        assert status.stdout.splitlines()[-1] == f"run `sudo netlab up -t {display_path(path)}` to repair"
        _check_probe(lab, name, s, model, target)
        check = symptoms.trace_check(s, model, target)
        if check.fact:
            _check_trace(lab, name, check)
        if also is not None:
            also(model)
    finally:
        repaired = netlab("up", "-t", path, check=False)  # always: the next scenario needs a sound lab
    assert repaired.returncode == 0, repaired.stderr
    assert "nothing to change" not in repaired.stdout, repaired.stdout  # up found the fault and repaired it
    rc, report = _probe(lab, *s.probe)
    assert rc == 0, probe_failures(report) + "\n" + repaired.stdout
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0, status.stdout
    if name == "conntrack-stale-entry":  # up deleted the entry: the client's own port works again
        assert _dns_answers(model, target, STALE_SPORT)


def _check_probe(lab: str, name: str, s, model, target) -> None:
    """probe exits 1 and every flow fails or passes as the symptom says."""
    rc, report = _probe(lab, *s.probe)
    verdict = symptoms.expect(s, model, target)
    wrong = []
    for row in report["probes"]:
        want = verdict(row)
        failed = not row["as_expected"]
        if (want == "fail" and not failed) or (want == "pass" and failed):
            wrong.append(f"{row['source']} -> {row['destination']} {row['protocol']}/{row['port']}: "
                         f"want {want}, got {row['outcome']} {row['problems']}")
    assert not wrong, f"{name}: flows not as the catalogue says:\n" + "\n".join(wrong)
    if name == "pod-mtu-too-big":
        _check_mtu(model, target)
        assert _probe(lab)[0] == 0, "small probes pass"
    if name == "conntrack-stale-entry":  # it hides from probe (new ports); the client's own port shows it
        assert rc == 0, "every probe uses a new source port, so none meets the stale entry"
        assert not _dns_answers(model, target, STALE_SPORT), "the client's fixed-port query was answered"
        assert _dns_answers(model, target, 0), "a query from a new port must be answered"
        return
    assert rc == 1 and not report["ok"], f"{name}: probe should fail"


def _check_trace(lab: str, name: str, check: symptoms.TraceCheck) -> None:
    """trace exits 1 and blames the hop and fact the catalogue names."""
    args = ["trace", "--lab", lab, check.src, check.dst, "-o", "json"]
    args += ["--proto", check.proto] if check.proto else []
    args += ["--port", str(check.port)] if check.port else []
    args += ["--size", str(check.size)] if check.size else []
    args += ["--sport", str(check.sport)] if check.sport else []
    tr = netlab(*args, check=False)
    trace = json.loads(tr.stdout)
    if check.policy:  # a flow a policy denies that got through: delivered, its policy verdict says why, exit 1
        assert tr.returncode == 1 and trace["delivered"], f"{name}: trace exit {tr.returncode}\n{tr.stdout}"
        assert any(symptoms.matches(check, e["text"]) for e in trace["policy"]), trace["policy"]
        return
    if check.refused:  # delivered, and refused there (exit 1): the reason names the namespace and its sockets
        assert tr.returncode == 1 and trace["delivered"] and trace["refused"], f"{name}: {tr.stdout}"
        assert f" in {check.blamed_netns};" in trace["refused"], f"{name}: trace said {trace['refused']}"
        assert symptoms.matches(check, trace["refused"]), f"{name}: trace said {trace['refused']}"
        return
    # exit 1 when the packet does not reach its destination; a lost reply reached it (exit 0), and the reason is
    # in the reply's part
    lost = check.blamed_netns and not check.reply
    assert tr.returncode == (1 if lost else 0), f"{name}: trace exit {tr.returncode}\n{tr.stderr}"
    if check.blamed_netns:
        blamed = _blamed(trace)
        assert blamed is not None, f"{name}: trace blamed no hop: {trace.get('reply')}"
        assert blamed["netns"] == check.blamed_netns, f"{name}: trace blamed {blamed}"
        assert symptoms.matches(check, blamed["reason"]), f"{name}: trace said {blamed['reason']}"
        assert (trace["lost"] is None) == check.reply, f"{name}: request/reply side: {blamed}"
    else:  # the fact is in what trace says about the reply (no DNS answer)
        assert symptoms.matches(check, json.dumps(trace.get("reply"))), trace.get("reply")


DNS_QUERY = r"""
import socket, struct, sys
q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in "kube-dns.kube-system.svc.cluster.local".split(".")) + b"\0"
q += struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[2])))
s.settimeout(1.5)
s.sendto(q, (sys.argv[1], 53))
try:
    data = s.recv(512)
    sys.exit(0 if data[:2] == q[:2] else 3)
except socket.timeout:
    sys.exit(1)
"""


def _dns_answers(model, client, sport: int) -> bool:
    """One real DNS query from ``client``'s port ``sport`` (0: a new one) to cluster DNS: answered?"""
    cip, _, _ = dns_udp(model)
    proc = in_netns(client.netns, sys.executable, "-c", DNS_QUERY, cip, str(sport))
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


def _check_mtu(model, target) -> None:
    """Small pings pass, full-size ones (DF, the pod's MTU: 1422 + 28 = 1450) are lost, both ways, between a pod
    of the node and one of its peer (a node without pods stands in, with its cni0 address)."""
    def end(node):
        pods = model.pods_on(node.name)
        return (pods[0].netns, str(pods[0].ip)) if pods else (node.netns, str(node.gateway.ip))

    here, there = end(target), end(peer_node(model, target))
    size = str(model.pod_mtu - 28)
    for (netns, _), (_, ip) in ((here, there), (there, here)):
        small = in_netns(netns, "ping", "-c1", "-W1", ip)
        assert small.returncode == 0, small.stdout
        big = in_netns(netns, "ping", "-c1", "-W1", "-M", "do", "-s", size, ip)
        assert big.returncode != 0, f"{netns} -> {ip}: a {size}-byte DF ping passed\n{big.stdout}"


DEFAULT_SCENARIOS = [s.name for s in catalogue.SCENARIOS if not s.example]
SERVICES_SCENARIOS = [s.name for s in catalogue.SCENARIOS if s.example]


@pytest.mark.parametrize("name", DEFAULT_SCENARIOS)
def test_break_default_lab(default_lab, name):
    _check(*default_lab, name)


@pytest.mark.parametrize("name", SERVICES_SCENARIOS)
def test_break_services_lab(services_lab, name):
    _check(*services_lab, name)


@pytest.mark.parametrize("name, target", [("ip-forward-off", "node-1"), ("forward-policy-drop", "node-1"),
                                          ("rp-filter-strict", "node-2"), ("vxlan-fdb-wrong-vtep", "node-2"),
                                          ("bridge-port-down", "web-2"), ("bridge-port-disabled", "web-2")])
def test_break_services_lab_by_a_node_fault(services_lab, name, target):
    """A node's fault on the Services example: every Service flow (ClusterIP, NodePort, the load balancer) and
    every flow to the internet fails or passes as its packets' path meets the fault, endpoint by endpoint
    (symptoms.paths). The oracle said they all passed: nothing checked them. With a pod's port down, a probe run
    leaves no entry of its unanswered Service flows in any node: not even under the tuple a NodePort's or the
    balancer's masquerade gave one (a later run's connection given that port met it: a flake of this test)."""
    lab = services_lab[0]
    _check(*services_lab, name, target, also=(lambda model: _no_service_flow_left(lab, model)) if
           name in ("bridge-port-down", "bridge-port-disabled") else None)


@pytest.fixture(scope="module")
def impostor_lab(tmp_path_factory):
    """The Services example with a user's pod labelled k8s-app: kube-dns (in default, listed first) and a user's
    Service of it serving 53/UDP (listed first): only the add-on's kube-system/kube-dns is the cluster DNS."""
    import yaml

    name = unique_lab("qc")
    topo = yaml.safe_load(open(SERVICES, encoding="utf-8"))
    topo["name"] = name
    topo["pods"].insert(0, {"name": "impostor", "node": "node-2", "labels": {"k8s-app": "kube-dns"}})
    topo["services"].insert(0, {"name": "resolver", "selector": {"k8s-app": "kube-dns"},
                                "ports": [{"port": 53, "protocol": "UDP", "targetPort": 8080}]})
    path = tmp_path_factory.mktemp(name) / "topo.yaml"
    path.write_text(yaml.safe_dump(topo, sort_keys=False))
    with lab_up(str(path), name):
        yield name, str(path)


@pytest.mark.parametrize("name", ["dns-pod-stopped", "conntrack-stale-entry"])
def test_dns_scenarios_take_the_cluster_dns_pod_not_a_pod_with_its_label(impostor_lab, name):
    """dns-pod-stopped stops kube-system/kube-dns, so cluster DNS fails as predicted (it stopped the user's pod,
    the first labelled k8s-app: kube-dns, and cluster DNS went on answering), and conntrack-stale-entry's entry
    is for the cluster DNS ClusterIP (it took the first Service serving 53/UDP, the user's)."""
    _check(*impostor_lab, name)


SYN_SENT = re.compile(r"SYN_SENT src=(\S+) dst=\S+ sport=(\d+) dport=\d+")


def _no_service_flow_left(lab: str, model) -> None:
    """A probe run's unanswered connections left on the nodes and the balancer (conntrack -L, SYN_SENT) are
    its plain pod-to-pod ones only (the agent deletes only what a Service's flows left)."""
    spaces = [n.netns for n in model.nodes] + [ns for name, ns in model.internet_hosts if name == "lb"]

    def half_open() -> set[tuple[str, str, str]]:
        return {(ns, *m.groups()) for ns in spaces for m in map(SYN_SENT.search, in_netns(
            ns, "conntrack", "-L", "-p", "tcp", check=True).stdout.splitlines()) if m}

    before = half_open()
    rc, report = _probe(lab)
    plain = {tuple(r["local_address"].rsplit(":", 1)) for r in report["probes"]
             if r.get("service") is None and r["protocol"] == "tcp" and r["local_address"]}
    left = sorted(e for e in half_open() - before if e[1:] not in plain)
    assert rc == 1 and report["conntrack"]["unanswered_service_flows_deleted"] > 0 and not left, left


@pytest.mark.parametrize("name, target", [("bridge-nf-call-off", "n1"), ("rp-filter-strict", "n1"),
                                          ("bridge-port-down", "x-b"), ("bridge-port-disabled", "x-b")])
def test_break_a_lab_with_network_policies(policy_lab, name, target):
    """Faults on a lab whose policies deny some flows: a denied flow stays denied, whatever else stops it, and the
    proving trace takes a flow the policies allow (it traced x-a to x-b, which x's default deny rejects before
    the fault shows: the trace blamed the policy). Turning bridge-nf-call-iptables off opens the denied flows
    between two pods of the node (the policies' rules are in FORWARD, which bridged frames then skip), and the
    trace of one says so, with the fix."""
    lab = policy_lab[0]

    def bypassed(model) -> None:
        tr = netlab("trace", "--lab", lab, "z-a", "x-c", "--proto", "tcp", "--port", "80", "-o", "json", check=False)
        trace = json.loads(tr.stdout)
        # the SYN-ACK came back, and trace fails: a flow the policies deny got through
        assert tr.returncode == 1 and trace["delivered"], tr.stdout
        entry = trace["policy"][0]
        assert not entry["allowed"] and not entry["counted"] and entry["stopped"] is False, entry
        assert "NOT STOPPED: net.bridge.bridge-nf-call-iptables = 0" in entry["text"], entry
        assert entry["fix"] == f"ip netns exec {lab}-n1 sysctl -w net.bridge.bridge-nf-call-iptables=1", entry
        # from n2 (x-c accepts nothing): routed into n1, through FORWARD and the policy's REJECT
        text = netlab("trace", "--lab", lab, "z-b", "x-c", "--proto", "tcp", "--port", "80", check=False)
        assert text.returncode == 1 and "the kernel's REJECT rule there counted it" in text.stdout, text.stdout

    _check(*policy_lab, name, target, also=bypassed if name == "bridge-nf-call-off" else None)


def test_bridge_nf_call_off_lets_a_denied_flow_through_on_the_policy_example(netpol_example_lab):
    """Without a Service the scenario was refused; on the NetworkPolicy example it opens every flow a policy denies
    between two pods of the node (probe: each such row is "expected unreachable, got a reply"), and the proving
    trace is one of them, delivered, its policy verdict "NOT STOPPED" with the fix; and the quiz answers with it."""
    lab = netpol_example_lab[0]

    def table(model) -> None:  # the policy table's and probe's mismatches, and the node they come from
        proc = netlab("policy", "table", "--lab", lab, "-o", "json", check=False)
        data = json.loads(proc.stdout)
        assert proc.returncode == 1 and data["mismatches"] > 0, proc.stdout[-2000:]
        assert [h.split(":")[0] for h in data["hints"]] == [f"{data['mismatches']} denied flows between pods of node "
                                                            "n1 got through"], data["hints"]
        rc, report = _probe(lab)
        opened = [r for r in report["probes"] if r["expected"] == "unreachable" and r["observed"] == "reachable"]
        assert rc == 1 and [h.split(":")[0] for h in report["hints"]] == [
            f"{len(opened)} denied flows between pods of node n1 got through"], report["hints"]

    _check(*netpol_example_lab, "bridge-nf-call-off", also=table)
    seed = next(n for n in range(100) if quiz.pick(running_lab(lab).resolved(), n).name == "bridge-nf-call-off")
    netlab("quiz", "--lab", lab, "--seed", str(seed))
    ans = netlab("quiz", "answer", "bridge-nf-call-off", "--lab", lab, check=False)
    assert ans.returncode == 0 and ans.stdout.startswith("right"), ans.stdout + ans.stderr
    assert "but NOT STOPPED: net.bridge.bridge-nf-call-iptables = 0" in ans.stdout, ans.stdout
    assert "(1 object or container put back)" in ans.stdout, ans.stdout
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def test_forward_policy_drop_in_nftables_mode_drops_what_iptables_mode_accepts(services_nft_lab):
    """FORWARD's policy DROP (Docker's) on a node whose kube-proxy is in nftables mode: a pod's ClusterIP
    connection DNATed back to itself and what reaches the node's NodePorts are dropped too (kube-proxy's table is
    not iptables' filter table: there is no KUBE-FORWARD to accept what is marked for masquerade), and the trace
    of each says so, at the node, though the node holds no conntrack entry of the packet (it said "it was not
    DNATed here", and for the NodePort that the node itself got it and sent no reply)."""
    lab, path = services_nft_lab
    name = "forward-policy-drop"
    s = catalogue.scenario(name)
    model = running_lab(lab).resolved()
    target = catalogue.resolve_target(s, model, "node-1")
    try:
        netlab("break", name, "--lab", lab, "--target", "node-1")
        _check_probe(lab, name, s, model, target)
        for src, dst, port in (("kube-dns", "svc/kube-dns", "53"), ("example", "node-1", "30080")):
            tr = netlab("trace", "--lab", lab, src, dst, "--proto", "tcp", "--port", port, "-o", "json", check=False)
            lost = json.loads(tr.stdout)["lost"]
            assert tr.returncode == 1 and lost["netns"] == f"{lab}-node-1", tr.stdout
            assert "no conntrack entry for this packet: it was dropped before conntrack kept one; the FORWARD " \
                   "chain's policy is DROP" in lost["reason"] and "it went on" not in lost["reason"], lost
            assert lost["fix"] == f"ip netns exec {lab}-node-1 iptables -P FORWARD ACCEPT", lost
    finally:
        repaired = netlab("up", "-t", path, check=False)
    assert repaired.returncode == 0 and "nothing to change" not in repaired.stdout, repaired
    assert _probe(lab)[0] == 0


@pytest.mark.parametrize("name", DEFAULT_SCENARIOS)
def test_break_a_lab_whose_pods_are_all_on_one_node(one_sided_lab, name):
    """Every scenario of the default lab on a lab of two nodes whose pods are all on one: probe fails as the
    catalogue says, and the proving trace (the quiz's answer) crosses the pod network to the podless node's
    cni0 address; node to node it went by the underlay, which no scenario breaks, and was delivered."""
    _check(*one_sided_lab, name)


def test_a_one_node_lab_breaks_and_quizzes_as_the_catalogue_says(tmp_path):
    """A lab of one node (one bridge, no overlay): every scenario that applies to it (a bridge port down, or held
    disabled) breaks it, probe and trace show it, up repairs it; the quiz on it picks one, and the answer traces it
    from the node (it ended in a StopIteration traceback, looking for a pod on another node). A pod's trace to a pod on
    its own bridge names the port too: its ARP request dies there."""

    name = unique_lab("bk1")
    path = tmp_path / "topo.yaml"
    path.write_text(f"name: {name}\nnetwork: {{mode: host-gw}}\nnodes: [{{name: n1}}]\n"
                    "pods: [{name: a, node: n1}, {name: b, node: n1}]\n")
    with lab_up(str(path), name):
        model = running_lab(name).resolved()
        applies = [s.name for s in quiz.candidates(model)]
        assert applies == ["bridge-port-down", "bridge-port-disabled"]
        for scenario in applies:
            _check(name, str(path), scenario)
        netlab("quiz", "--lab", name, "--seed", "5")
        picked = quiz.pick(model, 5).name
        ans = netlab("quiz", "answer", "vxlan-arp-missing", "--lab", name, check=False)
        assert ans.returncode == 1 and ans.stdout.startswith(f"wrong: it was {picked}"), ans.stderr
        assert f"netlab trace --lab {name} n1 b" in ans.stdout and "bridge port" in ans.stdout
        assert "repaired" in ans.stdout
        assert netlab("status", "--lab", name, check=False).returncode == 0
        try:
            netlab("break", "bridge-port-down", "--lab", name, "--target", "b")
            in_netns(f"{name}-a", "ip", "neigh", "flush", "dev", "eth0", check=True)  # a asks for b afresh
            tr = netlab("trace", "--lab", name, "a", "b", "-o", "json", check=False)
            lost = json.loads(tr.stdout)["lost"]
            assert tr.returncode == 1 and lost["netns"] == f"{name}-a", tr.stdout
            assert re.search(rf"no ARP answer for 10\.244\.0\.\d+ on eth0 .*the bridge port \S+ of cni0 in "
                             rf"{name}-n1 \(veth peer of b's eth0\) is down", lost["reason"]), lost
            assert re.fullmatch(rf"ip -n {name}-n1 link set \S+ up", lost["fix"]), lost
        finally:
            netlab("up", "-t", str(path))
        assert netlab("status", "--lab", name, check=False).returncode == 0


def test_the_fix_trace_gives_for_a_wrong_vtep_repairs_it(default_lab):
    """trace's fix for an FDB entry naming another VTEP replaces the entry's remote. It gave the plan's own
    `fdb append`, which adds a remote to a zero or multicast MAC's entry only: on this unicast one it exited 0
    and changed nothing."""
    lab, path = default_lab
    netlab("break", "vxlan-fdb-wrong-vtep", "--lab", lab, "--target", "minikube")
    try:
        tr = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "-o", "json", check=False)
        lost = json.loads(tr.stdout)["lost"]
        assert tr.returncode == 1 and " fdb replace " in lost["fix"], lost
        subprocess.run(shlex.split(lost["fix"]), check=True)
        assert netlab("trace", "--lab", lab, "fedora-1", "fedora-2", check=False).returncode == 0
        assert netlab("status", "--lab", lab, check=False).returncode == 0
        # The node's own address as the remote VTEP: the driver hands the frame back to flannel.1 itself and the
        # packet loops to its TTL's end (trace blamed the inner frame's MAC, "the kernel drops it").
        own = lost["fix"].replace("dst 192.168.122.7 ", "dst 192.168.122.215 ")
        subprocess.run(shlex.split(own), check=True)
        tr = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "-o", "json", check=False)
        looped = json.loads(tr.stdout)["lost"]
        assert "names this node's own address 192.168.122.215 as the remote VTEP" in looped["reason"], looped
        assert "loops until its TTL runs out" in looped["reason"] and looped["fix"] == lost["fix"], looped
    finally:
        netlab("up", "-t", path)


def test_refused_where_it_would_change_nothing(default_lab):
    """A Services scenario on a lab without Services: exit 2, one line naming the example; nothing changes."""
    lab, _ = default_lab
    proc = netlab("break", "kube-services-jump-missing", "--lab", lab, check=False)
    assert proc.returncode == 2
    assert "topologies/services.yaml" in proc.stderr and "Traceback" not in proc.stderr
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def test_quiz_breaks_and_answer_repairs(default_lab):
    lab, _ = default_lab
    proc = netlab("quiz", "--lab", lab, "--seed", "3")
    assert "broken" in proc.stdout
    assert netlab("status", "--lab", lab, check=False).returncode == 1  # something really changed

    picked = quiz.pick(running_lab(lab).resolved(), 3).name
    ans = netlab("quiz", "answer", picked, "--lab", lab, check=False)
    assert ans.returncode == 0, ans.stdout + ans.stderr
    assert ans.stdout.startswith("right") and "trace " in ans.stdout and "repaired" in ans.stdout
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    # The fault in this lab's commands, as break prints them: it was the catalogue's general words, placeholders
    # ("<peer VTEP>", "flannel.N") beside values.
    fault = ans.stdout.split("  the fault:\n", 1)[1].split("  the lesson:", 1)[0].splitlines()
    assert fault and not any(re.search(r"<[^<>]*>|flannel\.N\b", line) for line in fault), ans.stdout
    broke = json.loads(netlab("break", picked, "--lab", lab, "-o", "json").stdout)
    netlab("up", "--lab", lab)
    assert [line.strip() for line in fault] == broke["changes"], ans.stdout
    again = netlab("quiz", "answer", picked, "--lab", lab, check=False)
    assert again.returncode == 2 and "no open quiz" in again.stderr
    # A wrong answer: exit 1, the right name, the proving trace, and the lab repaired all the same.
    netlab("quiz", "--lab", lab, "--seed", "1")
    picked = quiz.pick(running_lab(lab).resolved(), 1).name
    wrong = next(s.name for s in catalogue.SCENARIOS if s.name != picked and not s.example)
    ans = netlab("quiz", "answer", wrong, "--lab", lab, check=False)
    assert ans.returncode == 1 and ans.stdout.startswith(f"wrong: it was {picked}"), ans.stdout + ans.stderr
    assert "repaired" in ans.stdout
    assert netlab("status", "--lab", lab, check=False).returncode == 0
