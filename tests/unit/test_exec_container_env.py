"""`netlab exec POD -c CONTAINER` runs with the environment the container started with, as `kubectl exec` runs with
the one the runtime made the container with: a Service added since is not in it until the container starts again
(its record keeps the Service variables it started with); a container that does not run has none to give:
kubectl exec's "container not running", in one line.

Before: the environment the container would start with now, a Service added since included, whether or not the
container ran."""

from __future__ import annotations

import pytest

from netlab.api import exec as exec_api
from netlab.errors import EnvironmentNotReady
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize.state import LabState
from netlab.workload import lifecycle
from netlab.workload.containers import service_env

LAB = "eeu"
FIRST = f"""name: {LAB}
nodes: [{{name: n1}}]
pods: [{{name: web, node: n1, labels: {{app: web}}, containers: [{{name: echo, ports: [{{containerPort: 8080}}]}},
                                                               {{name: app, command: [sleep, "600"]}}]}}]
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
"""
LATER = FIRST + "  - {name: late, selector: {app: web}, clusterIP: 10.96.0.30, ports: [{port: 81, targetPort: 8080}]}\n"


def lab_of(text: str):
    return resolve(validate_source(parse_yaml(text, "t.yaml")))


def started(lab, runs: bool = True, **rec) -> LabState:
    """The lab's state after an `up` of FIRST started both containers; ``runs``: their tasks run on now."""
    first = lab_of(FIRST)
    web = next(p for p in first.pods if p.name == "web")
    state = LabState(lab=LAB, phase="up")
    record = {"argv": ["sleep", "600"], "log": "/x.log", "restarts": 0, "pid": 4242, "start": 7,
              "service_env": service_env(first, web), **rec}
    records = lifecycle._records(state)["pods"]
    records["web"] = {"netns": f"{LAB}-web", "uts": "/u", "containers": {"app": record, "echo": dict(record)}}
    return state


@pytest.fixture
def running(monkeypatch):
    """The recorded tasks run in their pod (the fake /proc: tasks.task_of reads it)."""
    alive = {"on": True}
    monkeypatch.setattr(exec_api.tasks, "task_of", lambda crec, netns: "S" if alive["on"] else None)
    return alive


@pytest.mark.parametrize("container", ["app", "echo"])
def test_a_service_added_since_the_start_is_not_in_the_containers_environment(running, container):
    lab = lab_of(LATER)  # `up` of the file with Service late: the container was not restarted
    env = exec_api.container_environment(started(lab), lab, "web", container)
    assert env["WEB_SERVICE_HOST"] == "10.96.0.20" and env["WEB_PORT"] == "tcp://10.96.0.20:80"
    assert not [k for k in env if k.startswith("LATE_")], env
    assert (env["POD_NAME"], env["NETLAB_CONTAINER"], env["NODE_NAME"]) == ("web", container, "n1")
    assert "NETLAB_CONTAINER_ID" not in env


def test_a_container_that_starts_again_gets_the_services_as_they_are_then(running):
    lab = lab_of(LATER)
    web = next(p for p in lab.pods if p.name == "web")
    env = exec_api.container_environment(started(lab, service_env=service_env(lab, web)), lab, "web", "app")
    assert env["LATE_SERVICE_HOST"] == "10.96.0.30" and env["WEB_SERVICE_HOST"] == "10.96.0.20"


def test_a_record_of_an_older_netlab_gets_the_services_as_they_are_now(running):
    lab = lab_of(LATER)
    state = started(lab)
    for rec in lifecycle._records(state)["pods"]["web"]["containers"].values():
        del rec["service_env"]
    assert exec_api.container_environment(state, lab, "web", "echo")["LATE_SERVICE_HOST"] == "10.96.0.30"


@pytest.mark.parametrize("rec, why", [({}, "it has exited"), ({"error": "/x: command not found"},
                                                               "it could not start: /x: command not found")])
def test_a_container_that_does_not_run_has_no_environment_to_give(running, rec, why):
    running["on"] = not rec == {}
    lab = lab_of(FIRST)
    with pytest.raises(EnvironmentNotReady) as err:
        exec_api.container_environment(started(lab, **rec), lab, "web", "app")
    line = str(err.value)
    assert line.startswith(f"-c app: container app of pod web is not running ({why}), as kubectl exec says "
                           '"container not running"'), line
    assert f"netlab up --lab {LAB}" in line and "\n" not in line


def test_a_container_never_started_has_no_environment_to_give(running):
    lab = lab_of(FIRST)
    state = started(lab)
    del lifecycle._records(state)["pods"]["web"]["containers"]["app"]
    with pytest.raises(EnvironmentNotReady, match=r"not running \(it was never started\)"):
        exec_api.container_environment(state, lab, "web", "app")


@pytest.mark.parametrize("restart, code, said", [
    ("Always", 0, "`sudo netlab up --lab eeu` starts it again, as its pod's restartPolicy Always says"),
    ("OnFailure", 1, "`sudo netlab up --lab eeu` starts it again, as its pod's restartPolicy OnFailure says"),
    ("OnFailure", None, "`sudo netlab up --lab eeu` starts it again, as its pod's restartPolicy OnFailure says"),
    ("OnFailure", 0, "it completed (exit code 0), and restartPolicy OnFailure: `netlab up` leaves it so; to run it "
                     "again, change its command or take the pod out of the file and back (`up` each time), or "
                     "`down` and `up`"),
    ("Never", 3, "it exited with code 3, and restartPolicy Never: `netlab up` leaves it so; to run it again, "
                 "change its command or take the pod out of the file and back (`up` each time), or `down` and `up`"),
    ("Never", None, "it exited, and restartPolicy Never: `netlab up` leaves it so; to run it again"),
])
def test_an_exited_containers_line_says_what_starts_it_again_as_its_restart_policy_says(
        running, monkeypatch, restart, code, said):
    """`exec -c` of a Never pod's exited container said "`sudo netlab up -t FILE` starts it again as its pod's
    restartPolicy says", where status says "restartPolicy Never: `netlab up` leaves it exited" (QA docs58 7): the
    line names `up` only where the policy restarts it (status's judgement, workload/policy.py), else status's way."""
    monkeypatch.delenv("NETLAB_STATE_DIR", raising=False)
    monkeypatch.setattr(exec_api, "repair_command", lambda name: f"sudo netlab up --lab {name}")
    monkeypatch.setattr(exec_api.exits, "exit_codes", lambda lab, recs: {} if code is None else dict.fromkeys(recs, code))
    running["on"] = False
    lab = lab_of(FIRST.replace("{name: web, node: n1,", f"{{name: web, node: n1, restartPolicy: {restart},"))
    with pytest.raises(EnvironmentNotReady) as err:
        exec_api.container_environment(started(lab), lab, "web", "app")
    line = str(err.value)
    assert line.startswith('-c app: container app of pod web is not running (it has exited), as kubectl exec says '
                           f'"container not running"; {said}'), line
    assert line.endswith("; without -c the command runs in the pod's namespaces") and "\n" not in line
