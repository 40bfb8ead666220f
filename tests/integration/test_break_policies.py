"""netlab break on NetworkPolicies (root): the NetworkPolicy example (x, y, z × a, b, c), as it ships and with a
Service: a node's fault leaves a denied flow denied, and bridge-nf-call-iptables off lets the denied flows between
two pods of a node through, which probe, the policy table, trace and the quiz say. Each scenario as breaking.py says.
"""

from __future__ import annotations

import json

import pytest

from breaking import NETPOL, break_and_repair, probe, shipped_lab
from helpers import as_planned_here, netlab
from netlab.breaks import quiz
from netlab.realize.state import running_lab

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def netpol_example_lab(tmp_path_factory):
    """The NetworkPolicy example as it ships: no Service."""
    with shipped_lab(tmp_path_factory, NETPOL, policies=True) as lab:
        yield lab


@pytest.fixture(scope="module")
def policy_lab(tmp_path_factory):
    """The NetworkPolicy example (x, y, z × a, b, c; two policies on namespace x) with a Service of y's b pods,
    so with the cluster DNS pod too (on n1)."""
    extra = "services:\n  - {name: svc-b, namespace: y, selector: {pod: b}, ports: [{port: 80}]}\n"
    with shipped_lab(tmp_path_factory, NETPOL, extra, policies=True) as lab:
        yield lab


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

    break_and_repair(*policy_lab, name, target, also=bypassed if name == "bridge-nf-call-off" else None)


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
        rc, report = probe(lab)
        opened = [r for r in report["probes"] if r["expected"] == "unreachable" and r["observed"] == "reachable"]
        assert rc == 1 and [h.split(":")[0] for h in report["hints"]] == [
            f"{len(opened)} denied flows between pods of node n1 got through"], report["hints"]

    break_and_repair(*netpol_example_lab, "bridge-nf-call-off", also=table)
    seed = next(n for n in range(100) if quiz.pick(running_lab(lab).resolved(), n).name == "bridge-nf-call-off")
    netlab("quiz", "--lab", lab, "--seed", str(seed))
    ans = netlab("quiz", "answer", "bridge-nf-call-off", "--lab", lab, check=False)
    assert ans.returncode == 0 and ans.stdout.startswith("right"), ans.stdout + ans.stderr
    assert "but NOT STOPPED: net.bridge.bridge-nf-call-iptables = 0" in ans.stdout, ans.stdout
    assert "(1 object or container put back)" in ans.stdout, ans.stdout
    assert as_planned_here(lab)  # the answer's repair (the CLI's status: break_and_repair's)
