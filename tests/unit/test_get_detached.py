"""``get pods`` of a pod whose CNI re-attach was cut short between its DEL and its ADD (QA q10 2's record phase
"detaching": no eth0, no address): it said Running with the IP the pod no longer has. It is ContainerCreating
with no IP, as kubectl shows a pod whose sandbox's network the CNI has not set up (yet); up ADDs it again. So is a
pod never attached, an `up` killed before its ADDs (QA q43 2), as status says "not attached through CNI"."""

from __future__ import annotations

from netlab.api import views
from netlab.api.jsonio import from_json, to_json
from netlab.api.results import PodInfo
from netlab.cli.get import _pods
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize.state import LabState

BUILTIN = """name: gd1
nodes:
  - {name: n1}
pods:
  - name: a
    node: n1
    containers:
      - {name: main, command: [sleep, "1000"]}
  - name: b
    node: n1
    containers:
      - {name: main, command: [sleep, "1000"]}
"""
TOPOLOGY = BUILTIN.replace("nodes:", "network: {cni: reference}\nnodes:", 1)  # its pods attached through CNI


def running(state, lab):
    """Every container runs (its process lives in its pod's namespace), as the pod's re-attach left them."""
    return {(p.name, c.name): views.Seen("running", 4242, None, 0, False, None) for p in lab.pods for c in p.containers}


def pods_of(phases: dict[str, str], monkeypatch) -> dict[str, PodInfo]:
    monkeypatch.setattr(views, "container_states", running)
    lab = resolve(validate_source(parse_yaml(TOPOLOGY, "t.yaml")))
    cni = {"pods": {name: {"phase": phase, "node": "n1"} for name, phase in phases.items()}}
    return {p.name: p for p in views.pods(LabState("gd1", extra={"cni": cni}), lab)}


def test_a_pod_detached_by_a_cut_short_re_attach_is_container_creating_with_no_ip(monkeypatch):
    pods = pods_of({"a": "detaching", "b": "added"}, monkeypatch)
    a, b = pods["a"], pods["b"]
    assert (a.status, a.ip) == ("ContainerCreating", "")  # it said Running, 10.244.0.2
    assert b.status == "Running" and b.ip == "10.244.0.3"
    assert a.network_detached and not b.network_detached
    headers, rows = _pods((a, b), wide=False)
    row = dict(zip(headers, rows[0]))
    assert (row["status"], row["ip"]) == ("ContainerCreating", "<none>")
    assert dict(zip(headers, rows[1]))["ip"] == "10.244.0.3"
    data = to_json(a)  # -o json says it too, and reads back as the same pod
    assert (data["status"], data["ip"], data["network_detached"]) == ("ContainerCreating", "", True)
    assert from_json(PodInfo, data) == a


def test_a_lab_without_a_cni_record_keeps_none_and_is_not_given_one():
    lab = resolve(validate_source(parse_yaml(BUILTIN, "t.yaml")))
    state = LabState("gd1")
    assert all(not p.network_detached and p.ip for p in views.pods(state, lab))
    assert "cni" not in state.extra  # get reads the record, never writes one


def test_a_pod_left_detached_by_a_failed_re_attach_is_container_creating_none_ready_with_no_ip(monkeypatch):
    """A re-attach whose ADD failed, and then the ADD with the config it had, leaves the pod detached (the record's
    phase "deleted", cni/lifecycle.start; up's failure says "left detached"): `get pods` said Running, READY 1/1
    and the IP the pod no longer has, and the Python API's PodInfo the same."""
    pods = pods_of({"a": "deleted", "b": "added"}, monkeypatch)
    a, b = pods["a"], pods["b"]
    assert (a.status, a.ready, a.ip, a.network_detached) == ("ContainerCreating", "0/1", "", True)
    assert a.containers[0].state == "running"  # what the kernel shows of its container, in -o wide's CONTAINERS
    assert (b.status, b.ready, b.ip, b.network_detached) == ("Running", "1/1", "10.244.0.3", False)
    headers, rows = _pods((a, b), wide=False)
    assert {k: v for k, v in zip(headers, rows[0]) if k in ("ready", "status", "ip")} == {
        "ready": "0/1", "status": "ContainerCreating", "ip": "<none>"}
    data = to_json(a)
    assert (data["ready"], data["ip"], data["network_detached"]) == ("0/1", "", True)


def test_a_cut_short_re_attach_is_none_ready_too(monkeypatch):
    assert pods_of({"a": "detaching"}, monkeypatch)["a"].ready == "0/1"  # it said 1/1 beside ContainerCreating


def test_a_pod_an_up_killed_before_its_add_left_unattached_is_container_creating_with_no_ip(monkeypatch):
    """QA q43 2: an `up` killed before its plugins' ADDs leaves no record (or one of phase "adding", killed during
    the ADD): status says "cni: pod a is not attached through CNI", the pod has no eth0, but `get pods` said its
    planned IP and network_detached false."""
    pods = pods_of({"b": "adding"}, monkeypatch)  # a: no record at all
    for pod in pods.values():
        assert (pod.status, pod.ready, pod.ip, pod.network_detached) == ("ContainerCreating", "0/1", "", True), pod
    monkeypatch.setattr(views, "container_states", running)
    lab = resolve(validate_source(parse_yaml(TOPOLOGY, "t.yaml")))
    state = LabState("gd1")
    assert all(p.network_detached and p.ip == "" for p in views.pods(state, lab))
    assert "cni" not in state.extra  # get reads the record, never writes one
    data = to_json(pods["a"])
    assert (data["ip"], data["network_detached"]) == ("", True)


def test_a_builtin_lab_has_no_detached_pod_whatever_its_state_holds(monkeypatch):
    monkeypatch.setattr(views, "container_states", running)
    lab = resolve(validate_source(parse_yaml(BUILTIN, "t.yaml")))
    state = LabState("gd1", extra={"cni": {"pods": {"a": {"phase": "detaching"}}}})
    assert [(p.ip, p.network_detached) for p in views.pods(state, lab)] == [("10.244.0.2", False), ("10.244.0.3", False)]
