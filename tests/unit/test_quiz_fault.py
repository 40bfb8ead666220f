"""`quiz answer`'s "the fault": this lab's changes, as `netlab break` prints them. It printed the catalogue's
general words, placeholders beside concrete values ("delete the route <peer pod CIDR> via <peer VTEP> dev
flannel.N onlink in the node (ip -n <node> route del 10.244.1.0/24)")."""

from __future__ import annotations

import re

import pytest
from test_breaks_catalogue import SHAPES, _lab

from netlab.breaks import catalogue, quiz

# What a general description holds where a lab's answer has a value: <peer VTEP>, flannel.N, VNI N+1
PLACEHOLDER = re.compile(r"<[^<>]*>|\bflannel\.N\b|\bN\+1\b|\bN\b")


def targets(s: catalogue.Scenario, lab) -> list:
    if s.target == "node":
        return [n for n in lab.nodes if catalogue.target_problem(s, lab, n) is None]
    return [catalogue.resolve_target(s, lab, None)]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_answer_is_concrete_for_the_lab(shape):
    lab = _lab(SHAPES[shape])
    for s in quiz.candidates(lab):
        for target in targets(s, lab):
            lines = quiz.fault(s, lab, target)
            assert lines, (s.name, target.name)
            for line in lines:
                assert not PLACEHOLDER.search(line), (s.name, target.name, line)
                assert "\n" not in line


def test_the_answer_is_the_commands_break_prints():
    lab = _lab(None)  # the default lab (minikube, minikube-m02): the route to the peer's pod CIDR
    s = catalogue.scenario("pod-cidr-route-missing")
    node = catalogue.resolve_target(s, lab, None)
    assert quiz.fault(s, lab, node) == [f"ip -n {node.netns} route del 10.244.1.0/24"]
    services = _lab("topologies/services.yaml")
    s = catalogue.scenario("endpoint-pod-down")
    pod = catalogue.resolve_target(s, services, None)
    assert quiz.fault(s, services, pod) == [f"stop the containers of pod {pod.name} (their processes in "
                                            f"{pod.netns} are killed)"]
