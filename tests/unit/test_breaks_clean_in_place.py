"""`netlab break` on a lab as planned names nothing "in place already", for every scenario of the catalogue and
every target, against the fake kernel.

QA qf: forward-policy-drop on an undamaged lab said "broke ... again, in part" with an empty "in place already:"
line (JSON ``"in_place": [""]``): its iptables restore still to do, wholly, is a new object, and the words of its
lines left out (none) were an empty command.
"""

from __future__ import annotations

import pytest
from fake_lab import up
from test_breaks_again import _fake_lab, _targets

from netlab.breaks import already, catalogue, run as break_run
from netlab.breaks.changes import Action
from netlab.kernel.base import Op


@pytest.mark.parametrize("shape", ["default", "services", "host-gw-3node", "vxlan-3node"])
def test_no_scenario_on_a_lab_as_planned_has_anything_in_place(tmp_path, monkeypatch, shape):
    lab, k = _fake_lab(tmp_path, monkeypatch, shape)
    seen: list[str] = []
    for s in catalogue.SCENARIOS:
        if catalogue.why_not(s, lab):
            continue
        for target in _targets(s, lab):
            steps = break_run.steps_of(s.name, lab, target)
            ops = [st for st in steps if isinstance(st, Op)]
            todo = already.still_to_do(ops, already.read(k, ops)) + [a for a in steps if isinstance(a, Action)]
            assert len(todo) == len(steps), (s.name, target.name)
            assert break_run.in_place_words(steps, todo) == [], (s.name, target.name)
        if all(isinstance(st, Op) for st in break_run.steps_of(s.name, lab, catalogue.resolve_target(s, lab, None))):
            first = break_run.break_lab(lab.name, s.name)  # the kernel's scenarios: the whole break, its words
            assert first.done and not first.already, s.name
            assert (first.in_place, first.to_json()["in_place"]) == ([], []), s.name
            up(lab, k)
        seen.append(s.name)
    assert "forward-policy-drop" in seen, seen  # the restores: the scenarios that said "in part"
    assert "kube-services-jump-missing" in seen or shape != "services", seen
