"""trace, probe and reach work from the lab as `up` serves it (workload.terminal.served): a pod whose containers
exited for good (Completed, Error) is no Service's endpoint there either, as `up`, `status` and `get svc` leave it
out. `trace client svc/HEADLESS` suggested tracing a Completed pod, and probe expected one among a Service's
endpoints (QA qd 1). No root: the lab's state is a fake, the kernel-facing runs are stood in for."""

from __future__ import annotations

import pytest

import netlab.api.reach as reach_mod
from netlab.api.lab import Lab
from netlab.errors import UsageError
from netlab.probe import runner, service_targets
from netlab.realize.state import LabState

from test_terminal_endpoints import DONE, TOPO, lab_of, state_of


class Stop(Exception):
    """Where the kernel's part would begin: the lab it was given is what the test looks at."""


@pytest.fixture
def lab(monkeypatch):
    records = state_of(lab_of(), {"done1": {}, "fail1": {}})  # both Never pods' containers exited
    state = LabState(lab="tm", topology=TOPO, extra=records.extra)
    api = Lab("tm")
    monkeypatch.setattr(api, "state", lambda: state)
    return api


def test_trace_suggests_no_completed_pod_of_a_headless_service(lab):
    with pytest.raises(UsageError) as exc:
        lab.trace("cl", "svc/a")  # headless, port http 8080
    assert "probe or trace its pods (up1), or look up a.default.svc.cluster.local" in str(exc.value), exc.value
    with pytest.raises(UsageError) as exc:
        lab.trace("cl", "svc/h")  # headless without ports: the pods it serves all the same (DNS answers them)
    assert "probe or trace its pods (up1), or look up h.default.svc.cluster.local" in str(exc.value), exc.value


def given(monkeypatch, module, name):
    seen = []

    def fake(model, *args, **kwargs):
        seen.append(model)
        raise Stop

    monkeypatch.setattr(module, name, fake)
    return seen


@pytest.mark.parametrize("topology", [None, TOPO])
def test_probe_expects_no_completed_pod_as_an_endpoint(lab, monkeypatch, topology):
    seen = given(monkeypatch, runner, "run")
    with pytest.raises(Stop):
        lab.probe(topology)
    model = seen[0]
    assert model.terminal == DONE
    eps = {sp.name: [name for name, _, _ in e] for sp, e, _ in service_targets.targets(model)}
    assert eps["default/b"] == ["up1"], eps  # up1 alone answers its ClusterIP


def test_reach_works_from_the_lab_as_up_serves_it(lab, monkeypatch):
    seen = given(monkeypatch, reach_mod, "probe_of")  # the probe is made from the model up serves
    with pytest.raises(Stop):
        lab.reach("cl", "svc/b")
    assert seen[0].terminal == DONE
