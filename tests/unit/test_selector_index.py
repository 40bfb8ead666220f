"""SelectorIndex: the pods each Service selects, found through labels filed once, equal to asking every pod."""

from __future__ import annotations

import random

from netlab.model.selection import SelectorIndex
from netlab.model.topology import Service


def svc(namespace: str, selector: dict[str, str]) -> Service:
    return Service.model_validate({"name": "s", "namespace": namespace, "selector": selector,
                                   "ports": [{"port": 80}]})


def naive(pods, s: Service, any_namespace: bool = False):
    return [p for p in pods if (any_namespace or p[0] == s.namespace) and s.selects(p[1])]


def test_it_selects_what_asking_every_pod_selects_in_the_same_order():
    rng = random.Random(7)
    keys, values, spaces = ["app", "tier", "zone"], ["a", "b", "c"], ["default", "prod"]
    pods = [(rng.choice(spaces), {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 3))})
            for _ in range(300)]
    index = SelectorIndex(pods, lambda p: p[1], lambda p: p[0])
    selectors = [{}, {"app": "a"}, {"app": "a", "tier": "b"}, {"app": "a", "tier": "b", "zone": "c"},
                 {"app": "nope"}, {"missing": "a"}]
    for ns in spaces:
        for selector in selectors:
            s = svc(ns, selector)
            assert index.selected(s) == naive(pods, s), (ns, selector)
            assert index.matching(s) == naive(pods, s, any_namespace=True), (ns, selector)


def test_an_empty_selector_selects_nothing_and_a_pod_is_given_once():
    pods = [("default", {"app": "a", "tier": "a"})]
    index = SelectorIndex(pods, lambda p: p[1], lambda p: p[0])
    assert index.selected(svc("default", {})) == []
    assert index.selected(svc("default", {"app": "a", "tier": "a"})) == pods
    assert index.selected(svc("other", {"app": "a"})) == []


def test_validating_a_lab_asks_each_service_about_its_own_candidates_only(monkeypatch):
    """`validate` and `plan` of 100 Services over 300 pods: every selector is checked against the few pods filed
    under its labels, not against every pod (that was Services x pods checks, 20 s for 1,000 x 3,000)."""
    from netlab.model.endpoints import service_notes
    from netlab.model.lab import resolve
    from netlab.model.load import parse_yaml, validate_source

    lines = ["name: sel", "nodes: [{name: n1}, {name: n2}]", "pods:"]
    lines += [f"  - {{name: p{i}, node: n{1 + i % 2}, labels: {{app: a{i // 3}}}}}" for i in range(300)]
    lines += ["services:"] + [f"  - {{name: s{k}, selector: {{app: a{k}}}, ports: [{{port: 80}}]}}" for k in range(100)]
    calls = []
    real = Service.selects
    monkeypatch.setattr(Service, "selects", lambda self, labels: calls.append(1) or real(self, labels))
    lab = resolve(validate_source(parse_yaml("\n".join(lines) + "\n", "sel.yaml")))
    assert all(len(lab.endpoints(s, s.ports[0])) == 3 for s in lab.services if s.name.startswith("s"))
    service_notes(lab)
    assert 0 < len(calls) < 100 * 300 // 10, len(calls)


def test_a_probe_matrix_under_policies_asks_each_pod_once_which_policies_isolate_it(monkeypatch):
    """The matrix judges every pair of pods: which policies isolate a pod is worked out once per pod and
    direction, not once per pair (that made 400 pods under 40 policies take 23 s to plan, 4 s after)."""
    from netlab.model.lab import resolve
    from netlab.model.load import parse_yaml, validate_source
    from netlab.model.netpol import PolicySet
    from netlab.probe.matrix import build_matrix

    lines = ["name: pm", "nodes: [{name: n1}, {name: n2}]", "pods:"]
    lines += [f"  - {{name: p{i}, node: n{1 + i % 2}, labels: {{app: a{i // 5}}}}}" for i in range(60)]
    lines += ["networkPolicies:"]
    for k in range(12):
        lines += [f"  - name: np{k}", "    spec:", f"      podSelector: {{matchLabels: {{app: a{k}}}}}",
                  f"      ingress: [{{from: [{{podSelector: {{matchLabels: {{app: a{(k + 1) % 12}}}}}}}]}}]"]
    lab = resolve(validate_source(parse_yaml("\n".join(lines) + "\n", "pm.yaml")))
    calls = []
    real = PolicySet.selects
    monkeypatch.setattr(PolicySet, "selects", lambda self, pol, pod: calls.append(1) or real(self, pol, pod))
    probes = build_matrix(lab, ("icmp",))
    denied = [p for p in probes if not p.expected]
    assert denied, "the policies deny some pairs"
    assert 0 < len(calls) <= 60 * 2 * 12, len(calls)  # pods x directions x policies, not pairs x policies
