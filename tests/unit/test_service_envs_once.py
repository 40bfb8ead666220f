"""Each distinct set of Service variables containers started with is kept once in the lab's state
(workload/service_envs.py), without root: the runs' records name it by its digest, and a set no record names any
more goes at the end of the next start.

Before: each run's record held its own copy, ~7 variables per Service of its namespace: 1,000 Services and 500 pods
made a state file of 100+ MB, parsed and written by every command."""

from __future__ import annotations

import json
import os

import pytest
from test_command_changed import gone_pid, host  # noqa: F401 - the fixture: lifecycle.start with the host stubbed

from netlab.kernel import processes as proc
from netlab.kernel import spawning
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize import state_dir
from netlab.realize.state import LabState
from netlab.realize.state_schema import WorkloadRecord
from netlab.workload import lifecycle, service_envs
from netlab.workload.tasks import EXITED

LAB = "cc"  # test_command_changed's lab (its fixture's state folder)
PODS = ["a", "b", "c", "d", "e"]


def lab_of(pods: list[str], services: str = "web") -> object:
    text = (f"name: {LAB}\nnodes: [{{name: n1}}]\npods:\n"
            + "".join(f"  - {{name: {p}, node: n1, labels: {{app: web}}, containers: [{{name: main, command: [sleep, "
                      f"'600']}}]}}\n" for p in pods)
            + "services:\n"
            + "".join(f"  - {{name: {s}, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}\n"
                      for s in services.split()))
    return resolve(validate_source(parse_yaml(text, "t.yaml")))


@pytest.fixture
def envs(host, monkeypatch):  # noqa: F811 - test_command_changed's fixture
    """The environment each command container was started with, by its pod's namespace."""
    got: dict[str, dict[str, str]] = {}

    def spawn(argv, netns, env, **kw):
        got[netns] = env
        return proc.ProcId(os.getpid(), proc.start_time(os.getpid())), None

    monkeypatch.setattr(spawning, "spawn", spawn)
    return got


def sets(state: LabState) -> dict[str, dict[str, str]]:
    """The sets kept, but the cluster DNS add-on's (kube-system's Services: its pod, kube-dns, is in every lab)."""
    dns = state.extra["workload"]["pods"]["kube-dns"]["containers"]["dnsmasq"]["service_env"]
    return {key: env for key, env in state.extra["workload"].get(service_envs.KEY, {}).items() if key != dns}


def named(state: LabState) -> dict[str, str]:
    """pod -> the digest its container's record names its Service variables by (the topology's pods)."""
    return {pod: prec["containers"]["main"]["service_env"] for pod, prec in state.extra["workload"]["pods"].items()
            if pod != "kube-dns"}


def test_containers_started_with_the_same_services_keep_one_copy(envs):
    lab = lab_of(PODS, "web db cache")
    state = LabState(lab=LAB)
    lifecycle.start(lab, state)
    started = [envs[f"{LAB}-{pod}"] for pod in PODS]
    assert all(env["DB_SERVICE_HOST"] == started[0]["DB_SERVICE_HOST"] for env in started), started
    (key, kept), = sets(state).items()
    assert set(named(state).values()) == {key} and kept["CACHE_PORT"].startswith("tcp://"), named(state)
    raw = open(state_dir.state_file(LAB), "rb").read()
    assert raw.count(b'"WEB_SERVICE_HOST"') == 1, raw.count(b'"WEB_SERVICE_HOST"')
    WorkloadRecord.model_validate(json.loads(raw)["extra"]["workload"])  # the strict schema takes it
    for pod in PODS:  # netlab exec -c: each container's own, from the one copy
        crec = state.extra["workload"]["pods"][pod]["containers"]["main"]
        assert lifecycle.service_env_of(state, crec) == kept


def test_a_set_no_record_names_any_more_goes(envs, monkeypatch):
    state = LabState(lab=LAB)
    lifecycle.start(lab_of(["a", "b"]), state)
    first = named(state)["b"]
    # Service late added; a's container exited and starts again with it, b's runs on with the set it started with.
    monkeypatch.setattr(lifecycle, "why_replace", lambda crec, argv, netns, uts: EXITED if netns == f"{LAB}-a" else None)
    lifecycle.start(lab_of(["a", "b"], "web late"), state)
    now = named(state)
    assert now["b"] == first != now["a"] and set(sets(state)) == {first, now["a"]}
    assert "LATE_SERVICE_HOST" in sets(state)[now["a"]] and "LATE_SERVICE_HOST" not in sets(state)[first]
    lifecycle.start(lab_of(["a"], "web late"), state)  # pod b taken out of the topology: its set goes with it
    assert set(sets(state)) == {now["a"]} and named(state) == {"a": now["a"]}


def test_a_record_that_kept_its_own_copy_is_read_and_kept_once_at_the_next_start(envs, monkeypatch):
    lab = lab_of(["a", "b"])
    state = LabState(lab=LAB)
    lifecycle.start(lab, state)
    key = named(state)["a"]
    env = state.extra["workload"][service_envs.KEY].pop(key)
    for pod in ("a", "b"):  # as the netlab before this one wrote them
        state.extra["workload"]["pods"][pod]["containers"]["main"]["service_env"] = dict(env)
    WorkloadRecord.model_validate(state.extra["workload"])
    crec = state.extra["workload"]["pods"]["a"]["containers"]["main"]
    assert lifecycle.service_env_of(state, crec) == env
    monkeypatch.setattr(lifecycle, "why_replace", lambda *args: None)  # both run on
    lifecycle.start(lab, state)
    assert named(state) == {"a": key, "b": key} and sets(state) == {key: env}


def test_a_rollback_puts_back_the_sets_of_the_records_it_puts_back(envs):
    lab = lab_of(["a"])
    state = LabState(lab=LAB)
    lifecycle.start(lab, state)
    key = named(state)["a"]
    state.extra["workload"]["pods"]["a"]["containers"]["main"].update(pid=gone_pid(), start=1)  # it exited
    was = lifecycle.running(state, [f"{LAB}-a"])  # before the run stops the pod to make it anew
    state.extra["workload"]["pods"].pop("a")  # the run's stop dropped its record ...
    service_envs.collect(state.extra["workload"])  # ... and a start of the run its set
    assert key not in state.extra["workload"][service_envs.KEY]
    lifecycle.start_again(lab, state, [f"{LAB}-a"], was)  # the exited container's record put back, not started
    crec = state.extra["workload"]["pods"]["a"]["containers"]["main"]
    assert crec["service_env"] == key and lifecycle.service_env_of(state, crec) is not None, sets(state)
