"""netlab break on the pod network (root): every scenario of the catalogue that needs no example (a node's
forwarding, its bridge and its ports, the overlay, the pods' MTU, cluster DNS) on the built-in lab (two nodes,
four pods), on a lab whose pods are all on one of its two nodes, and on a lab of one node; trace's fix for a wrong
VTEP; a scenario refused where it would change nothing; the quiz. Each scenario as breaking.py says: probe flow by
flow, trace's hop and fact, up's repair.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest

from breaking import DEFAULT, assert_as_planned, break_and_repair, shipped_lab
from netlab.breaks import symptoms
from netlab.breaks.changes import peer_node
from helpers import in_netns, lab_up, netlab, two_node_topology, unique_lab, write_topology, up_here
from netlab import Lab
from netlab.breaks import catalogue, quiz
from netlab.errors import netlab_command
from netlab.realize.state import running_lab

pytestmark = pytest.mark.root

DEFAULT_SCENARIOS = [s.name for s in catalogue.SCENARIOS if not s.example]


@pytest.fixture(scope="module")
def default_lab(tmp_path_factory):
    with shipped_lab(tmp_path_factory, DEFAULT) as lab:
        yield lab


@pytest.fixture(scope="module")
def one_sided_lab(tmp_path_factory):
    """Two nodes, every pod on the first: the second node has only itself to show a fault with."""
    name = unique_lab("bk2")
    path = tmp_path_factory.mktemp(name) / "topo.yaml"
    path.write_text(f"name: {name}\nnodes: [{{name: n1}}, {{name: n2}}]\n"
                    "pods: [{name: a, node: n1}, {name: b, node: n1}]\n")
    with lab_up(str(path), name):
        yield name, str(path)


@pytest.mark.parametrize("name", DEFAULT_SCENARIOS)
def test_break_default_lab(default_lab, name):
    break_and_repair(*default_lab, name)


@pytest.mark.parametrize("name", DEFAULT_SCENARIOS)
def test_break_a_lab_whose_pods_are_all_on_one_node(one_sided_lab, name):
    """Every scenario of the default lab on a lab of two nodes whose pods are all on one: probe fails as the
    catalogue says, and the proving trace (the quiz's answer) crosses the pod network to the podless node's
    flannel.1 address (it has no cni0 before its first pod); node to node it went by the underlay, which no
    scenario breaks, and was delivered."""
    break_and_repair(*one_sided_lab, name)


def test_a_one_node_lab_breaks_and_quizzes_as_the_catalogue_says(tmp_path):
    """A lab of one node (one bridge, no overlay): every scenario that applies to it (a bridge port down, or held
    disabled) breaks it, probe and trace show it, up repairs it; the quiz on it picks one, and the answer traces it
    from the node (it ended in a StopIteration traceback, looking for a pod on another node). A pod's trace to a pod on
    its own bridge names the port too: its ARP request dies there (bridge-port-down on b, its default target, traced
    from a while it is broken)."""

    name = unique_lab("bk1")
    path = tmp_path / "topo.yaml"
    path.write_text(f"name: {name}\nnetwork: {{mode: host-gw}}\nnodes: [{{name: n1}}]\n"
                    "pods: [{name: a, node: n1}, {name: b, node: n1}]\n")

    def a_to_b_dies_at_b_port(model) -> None:
        in_netns(f"{name}-a", "ip", "neigh", "flush", "dev", "eth0", check=True)  # a asks for b afresh
        tr = netlab("trace", "--lab", name, "a", "b", "-o", "json", check=False)
        lost = json.loads(tr.stdout)["lost"]
        assert tr.returncode == 1 and lost["netns"] == f"{name}-a", tr.stdout
        assert re.search(rf"no ARP answer for 10\.244\.0\.\d+ on eth0 .*the bridge port \S+ of cni0 in "
                         rf"{name}-n1 \(veth peer of b's eth0\) is down", lost["reason"]), lost
        assert re.fullmatch(rf"ip -n {name}-n1 link set \S+ up", lost["fix"]), lost

    with lab_up(str(path), name):
        model = running_lab(name).resolved()
        applies = [s.name for s in quiz.candidates(model)]
        assert applies == ["bridge-port-down", "bridge-port-disabled"]
        assert catalogue.resolve_target(catalogue.scenario("bridge-port-down"), model, None).name == "b"
        for scenario in applies:
            break_and_repair(name, str(path), scenario,
                             also=a_to_b_dies_at_b_port if scenario == "bridge-port-down" else None)
        netlab("quiz", "--lab", name, "--seed", "5")
        picked = quiz.pick(model, 5).name
        ans = netlab("quiz", "answer", "vxlan-arp-missing", "--lab", name, "--reveal", check=False)
        assert ans.returncode == 1 and ans.stdout.startswith(f"wrong: it was {picked}"), ans.stderr
        assert f"netlab trace --lab {name} n1 b" in ans.stdout and "bridge port" in ans.stdout
        assert "repaired" in ans.stdout
        assert_as_planned(name, "quiz answer")


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
        assert_as_planned(lab, "trace's fix")
        # The node's own address as the remote VTEP: the driver hands the frame back to flannel.1 itself and the
        # packet loops to its TTL's end (trace blamed the inner frame's MAC, "the kernel drops it").
        own = lost["fix"].replace("dst 192.168.122.7 ", "dst 192.168.122.215 ")
        subprocess.run(shlex.split(own), check=True)
        tr = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "-o", "json", check=False)
        looped = json.loads(tr.stdout)["lost"]
        assert "names this node's own address 192.168.122.215 as the remote VTEP" in looped["reason"], looped
        assert "loops until its TTL runs out" in looped["reason"] and looped["fix"] == lost["fix"], looped
    finally:
        up_here(path)


def test_refused_where_it_would_change_nothing(default_lab):
    """A Services scenario on a lab without Services: exit 2, one line naming the example; nothing changes."""
    lab, _ = default_lab
    proc = netlab("break", "kube-services-jump-missing", "--lab", lab, check=False)
    assert proc.returncode == 2
    assert "topologies/services.yaml" in proc.stderr and "Traceback" not in proc.stderr
    assert_as_planned(lab, "a refused break")


def test_quiz_breaks_and_answer_repairs(default_lab):
    lab, path = default_lab
    proc = netlab("quiz", "--lab", lab, "--seed", "3")
    assert "broken" in proc.stdout
    assert not Lab.attach(lab).status().ok  # something really changed (status's verdict, in this process)

    picked = quiz.pick(running_lab(lab).resolved(), 3).name
    ans = netlab("quiz", "answer", picked, "--lab", lab, check=False)
    assert ans.returncode == 0, ans.stdout + ans.stderr
    assert ans.stdout.startswith("right") and "trace " in ans.stdout and "repaired" in ans.stdout
    assert_as_planned(lab, "the right answer")
    # The fault in this lab's commands, as break prints them: it was the catalogue's general words, placeholders
    # ("<peer VTEP>", "flannel.N") beside values.
    fault = ans.stdout.split("  the fault:\n", 1)[1].split("  the lesson:", 1)[0].splitlines()
    assert fault and not any(re.search(r"<[^<>]*>|flannel\.N\b", line) for line in fault), ans.stdout
    broke = json.loads(netlab("break", picked, "--lab", lab, "-o", "json").stdout)
    up_here(path)
    assert [line.strip() for line in fault] == broke["changes"], ans.stdout
    again = netlab("quiz", "answer", picked, "--lab", lab, check=False)
    assert again.returncode == 2 and "no open quiz" in again.stderr
    # A wrong answer: exit 1, nothing revealed, the lab still broken and the quiz open for another try (it
    # revealed and repaired at once); --reveal gives up: the name, the proving trace, the repair.
    netlab("quiz", "--lab", lab, "--seed", "1")
    picked = quiz.pick(running_lab(lab).resolved(), 1).name
    wrong = next(s.name for s in catalogue.SCENARIOS if s.name != picked and not s.example)
    ans = netlab("quiz", "answer", wrong, "--lab", lab, check=False)
    assert ans.returncode == 1 and ans.stdout.startswith(f"wrong: it is not {wrong};"), ans.stdout + ans.stderr
    assert picked not in ans.stdout and not Lab.attach(lab).status().ok, ans.stdout
    ans = netlab("quiz", "answer", "--reveal", "--lab", lab, check=False)
    assert ans.returncode == 0 and ans.stdout.startswith(f"it was {picked}"), ans.stdout + ans.stderr
    assert f"the trace that shows it: {netlab_command('trace')}" in ans.stdout and "repaired" in ans.stdout
    assert_as_planned(lab, "a revealed answer")


def test_quiz_refuses_a_lab_broken_already_and_break_warns(default_lab):
    """`break ip-forward-off; quiz --seed 7` broke the lab a second time (a missing route), and the answer's "trace
    that shows it" was lost at the first fault, `net.ipv4.ip_forward = 0`. The quiz starts on a clean lab only,
    changing nothing (exit 2, as with a quiz open); a second `break`, asked for by name, breaks and warns."""
    lab, path = default_lab
    first = netlab("break", "ip-forward-off", "--lab", lab)
    assert first.stderr == ""  # a clean lab: nothing to warn of
    try:
        # status's comparison (its -o json's drift, its exit 1 when not ok), in this process
        st = Lab.attach(lab).status()
        drift = list(st.drift)
        assert not st.ok and drift, st
        n = f"{len(drift)} difference{'' if len(drift) == 1 else 's'} from its plan"
        qz = netlab("quiz", "--seed", "7", "--lab", lab, check=False)
        assert (qz.returncode, qz.stdout) == (2, ""), qz
        assert qz.stderr == (f"netlab: lab {lab} is not as planned ({n}; `{netlab_command(f'status --lab {lab}')}` "
                             "lists them): a quiz breaks a clean lab; repair it first: "
                             f"{netlab_command(f'up -t {shlex.quote(path)}')}\n")
        assert quiz.load(lab) is None
        assert list(Lab.attach(lab).status().drift) == drift
        second = netlab("break", "pod-cidr-route-missing", "--lab", lab)
        assert second.stderr == (f"netlab: warning: lab {lab} was broken already ({n} before this break): what "
                                 f"probe and trace show is not this fault's alone; "
                                 f"`{netlab_command(f'status --lab {lab}')}` lists them, "
                                 f"`{netlab_command(f'up -t {shlex.quote(path)}')}` repairs them all\n")
        assert len(Lab.attach(lab).status().drift) > len(drift)
    finally:
        up_here(path)
    assert_as_planned(lab, "up")


INTERNET = """internet:
  cidr: 203.0.113.0/24
  gateway: {ip: 203.0.113.1}
  hosts: [{name: example, ip: 203.0.113.10}]
"""


def test_a_missing_pod_cidr_route_is_lost_at_the_gateway_the_catalogue_names(tmp_path):
    """pod-cidr-route-missing: trace follows the packet out of the node's eth0 by its default route and loses it
    at the nodes' gateway, which the catalogue now names as the hop (it said "node"); in a lab with an internet:
    section that gateway is the internet's (no route to pods), not the underlay, where symptoms.trace_check (what
    the break tests and `quiz answer` check trace against) looked for it. The quiz's answer shows that trace. (The
    built-in lab's two nodes, a pod on each: a pod at each end of the lost route is all the fault needs.)"""
    s = catalogue.scenario("pod-cidr-route-missing")
    assert s is not None and "gateway" in s.hop
    lab = unique_lab("bk")
    path = write_topology(tmp_path, two_node_topology(lab, pods_per_node=1) + INTERNET)
    with lab_up(path, lab):
        model = running_lab(lab).resolved()
        gateway = dict(model.internet_hosts)["gateway"]
        target = catalogue.resolve_target(s, model, None)
        assert symptoms.trace_check(s, model, target).blamed_netns == gateway
        # the kernel: the node's gateway is the internet's, which forwards and has no route to pods
        [route] = json.loads(in_netns(target.netns, "ip", "-j", "route", "show", "default", check=True).stdout)
        [eth0] = json.loads(in_netns(gateway, "ip", "-j", "addr", "show", "eth0", check=True).stdout)
        assert route["gateway"] == eth0["addr_info"][0]["local"], (route, eth0)
        break_and_repair(lab, path, s.name)  # probe flow by flow, trace's hop (that gateway) and fact, up
        seed = next(n for n in range(200) if quiz.pick(model, n).name == s.name)
        netlab("quiz", "--lab", lab, "--seed", str(seed))
        ans = netlab("quiz", "answer", s.name, "--lab", lab, check=False)
        assert ans.returncode == 0 and ans.stdout.startswith("right"), ans.stdout + ans.stderr
        result = next(line for line in ans.stdout.splitlines() if line.startswith("result: "))
        assert result.startswith("result: LOST at hop ") and f"({gateway} eth0)" in result, result
        assert f"it came here because no route to {peer_cidr(model, target)}" in result, result
        # the gateway the node sent it to, named as the hop is (QA q19 3: it said "the underlay's gateway")
        assert f"to the internet's gateway ({gateway}), which has no route to pods" in result, result
        assert "underlay's gateway" not in ans.stdout, ans.stdout
        assert_as_planned(lab, "quiz answer")


def peer_cidr(model, target) -> str:
    return str(peer_node(model, target).pod_cidr)
