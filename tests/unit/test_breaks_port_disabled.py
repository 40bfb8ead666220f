"""bridge-port-disabled: a pod's port on cni0 held in STP state disabled, its links all up (no root).

The change is the port's state set through the netlink codec (RTM_SETLINK, AF_BRIDGE), as `bridge link set dev
PORT state disabled` does; status names it as a port's state, up sets it back with one op; the catalogue's fact
and fix are what trace says of such a port (trace/l2steps.py), and every flow to and from the pod fails.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from fake_lab import make_lab, status, up
from test_cnifix_breaks import CNI_CONFLIST, _lab as conflist_lab
from test_trace_walk import world  # noqa: F401  (the fixture)

from netlab.api.topology import load
from netlab.breaks import catalogue, quiz, symptoms
from netlab.breaks.changes import CHANGES, command_of
from netlab.errors import netlab_command
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.plan.build import build_plan
from netlab.plan.resources import Veth
from netlab.trace.flow import Flow
from netlab.trace.walk import walk

NAME = "bridge-port-disabled"
S = catalogue.scenario(NAME)
lab = pytest.fixture(make_lab, name="lab")


def test_the_change_is_the_ports_state_and_break_prints_the_bridge_command():
    default = load(None).lab
    assert S is not None and catalogue.why_not(S, default) is None and S in quiz.candidates(default)
    pod = catalogue.resolve_target(S, default, None)
    [step] = CHANGES[NAME](default, build_plan(default), pod)
    assert isinstance(step, Op) and isinstance(step.res, Veth) and isinstance(step.old, Veth)
    assert (step.verb, step.res.peer_netns, step.old.port_state, step.res.port_state) == \
        ("set", pod.netns, "forwarding", "disabled")
    assert replace(step.res, port_state="forwarding") == step.old  # nothing else: the link stays up
    node = default.node(pod.node).netns
    assert command_of(step) == f"bridge -n {node} link set dev {step.res.name} state disabled"
    assert S.fix.startswith("bridge -n <node> link set dev <veth> state forwarding;")


def test_status_names_the_state_and_up_sets_only_it_back(lab):
    k = FakeKernel()
    up(lab, k)
    k.apply(CHANGES[NAME](lab, build_plan(lab), lab.pod("a")))
    port = next(r for r in build_plan(lab).of_kind("veth") if isinstance(r, Veth) and r.peer_netns == "fk-a")
    assert status(lab, k).drift == [
        f"different: link {port.name} in fk-n1 (bridge port of cni0 in state disabled, want forwarding: cni0 forwards "
        "nothing to or from eth0 in fk-a)"]
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == [f"set port_state of link {port.name} in fk-n1"]
    assert status(lab, k).ok


def test_trace_says_what_the_catalogue_says(world):  # noqa: F811
    """The proving trace, walked on the fake kernel with the port disabled: lost at the pod's node, with the fact
    and the fix of the catalogue (its fix's <node> and <veth> filled in)."""
    lab, m, k = world
    pod = catalogue.resolve_target(S, lab, None)
    node = lab.node(pod.node).netns
    k._links[node][pod.host_veth] = replace(k._links[node][pod.host_veth], port_state="disabled")
    check = symptoms.trace_check(S, lab, pod)
    assert check.blamed_netns == node and lab.pod(check.src).node != pod.node and check.dst == pod.name
    last = walk(k, m, lab.pod(check.src).netns, Flow.icmp(None, str(pod.ip), 7)).hops[-1]
    assert last.netns == node and symptoms.matches(check, last.problem), last.problem
    assert "is in state disabled, not forwarding" in S.fact
    assert last.fix == S.fix.split(";")[0].replace("<node>", node).replace("<veth>", pod.host_veth)
    # bridge-port-down's fact is not this one: the two are told apart
    assert not symptoms.matches(symptoms.trace_check(catalogue.scenario("bridge-port-down"), lab, pod), last.problem)


def test_every_flow_to_and_from_the_pod_fails():
    svc = load(catalogue.SERVICES_EXAMPLE).lab
    verdict = symptoms.expect(S, svc, catalogue.resolve_target(S, svc, "web-2"))
    row = {"protocol": "tcp", "service": None}
    assert verdict({**row, "source": "client", "destination": "web-2"}) == "fail"
    assert verdict({**row, "source": "web-2", "destination": "example"}) == "fail"
    assert verdict({**row, "source": "node-2", "destination": "web-2"}) == "fail"  # its own node too
    assert verdict({**row, "source": "client", "destination": "web-1"}) == "pass"
    eps = [{"pod": "web-1"}, {"pod": "web-2"}]
    assert verdict({**row, "source": "client", "destination": "web",
                    "service": {"via": "ClusterIP", "endpoints": eps}}) == "any"
    assert verdict({**row, "source": "client", "destination": "web", "expected": "unreachable"}) == "pass"


def test_refused_where_a_conflist_makes_the_ports(tmp_path):
    conflist = conflist_lab(tmp_path, "vxlan", CNI_CONFLIST)
    why = catalogue.why_not(S, conflist)
    assert why is not None and why.startswith(f"{NAME} needs pods on a bridge netlab plans") and "\n" not in why
    assert S not in quiz.candidates(conflist)


def test_a_port_set_down_is_not_held_disabled_and_the_break_is_refused(tmp_path, monkeypatch):
    """QA q8 1: after bridge-port-down, bridge-port-disabled on the same pod said "broken already ... nothing
    changed" (exit 0), with no warning: the kernel shows a down port disabled by itself, and the check read it
    against the break's own object (whose port_state observe reports for a port that is not running). The port's
    STP state is judged against the plan's; a port whose link is down takes no state (ENETDOWN), so the break is
    refused in one line, naming the down port and the repair, and changes nothing."""
    from test_breaks_again import _fake_lab

    from netlab.breaks import already, run as break_run
    from netlab.errors import UsageError

    lab, k = _fake_lab(tmp_path, monkeypatch, "default")
    pod = catalogue.resolve_target(S, lab, None)
    assert break_run.break_lab(lab.name, "bridge-port-down", pod.name).done
    ops = [op for op in break_run.steps_of(NAME, lab, pod) if isinstance(op, Op)]
    seen = already.read(k, ops)
    assert not already.in_effect(ops, seen)
    node = lab.node(pod.node).netns
    assert already.refusal(ops, seen) == (
        f"its bridge port {pod.host_veth} in {node} is down: the kernel shows such a port disabled by itself and "
        f"takes no STP state for it until the link is up again")
    k.log.clear()
    with pytest.raises(UsageError) as err:
        break_run.break_lab(lab.name, NAME, pod.name)
    assert str(err.value).startswith(f"{NAME} cannot break pod {pod.name}: its bridge port {pod.host_veth} in "
                                     f"{node} is down") and "\n" not in str(err.value), err.value
    assert netlab_command("up") in str(err.value) and k.log == []
    # The veth's pod end down (no carrier on the port): refused too; up repairs, then the break is its own.
    up(lab, k)
    k.ns[pod.netns].links["eth0"].up = False  # `ip -n POD link set eth0 down`: the port loses its carrier
    with pytest.raises(UsageError) as err:
        break_run.break_lab(lab.name, NAME, pod.name)
    assert "has no carrier" in str(err.value)
    up(lab, k)
    done = break_run.break_lab(lab.name, NAME, pod.name)
    assert done.done and not done.already and break_run.break_lab(lab.name, NAME, pod.name).already
