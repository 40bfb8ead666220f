"""A container's runs each have their own log, as the kubelet's container instances (QA: `netlab logs` printed
every past run joined together), and a pod keeps its creation time when its sandbox is made again (QA: AGE
reset after `ip netns del` and `up`). Each case has a lab of its own, always taken down."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from helpers import netlab, state_path, wait_for, write_topology
from netlab import Lab
from netlab.api.jsonio import to_json

pytestmark = pytest.mark.root


def _pod(lab: str, name: str) -> dict:
    """The pod as `get pods -o json` shows it, read in this process (the logs commands are the CLI under test)."""
    return to_json(Lab(lab).pod(name))


def _up(path: str, ok: bool = True) -> None:
    """`up -t FILE`, in this process: it only sets the runs up for the logs commands. ``ok``: every container
    started (the CLI's exit 0), else one failed to (its exit 1)."""
    done = Lab.up(path).last_up
    assert done is not None and done.ok == ok, done


def _topology(lab: str, command: str) -> str:
    return f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - name: once\n    node: n1\n" \
           f"    containers: [{{name: c, command: {command}}}]\n"


def test_logs_prints_the_current_run_and_previous_the_one_before(labs, tmp_path):
    lab = labs.name("lr")
    # Each run prints its own pid: the runs' lines tell them apart.
    path = labs.up_here(_topology(lab, '["sh", "-c", "echo run $$; exit 3"]'))
    exited = lambda: _pod(lab, "once")["containers"][0]["state"] == "exited"  # noqa: E731
    assert wait_for(exited)
    first = netlab("logs", "--lab", lab, "once").stdout
    assert first.startswith("run ") and first.count("\n") == 1, first
    none = netlab("logs", "--lab", lab, "once", "-p", check=False)
    assert (none.returncode, none.stderr.strip()) == (
        2, 'netlab: previous terminated container "c" in pod "once" not found'), none
    # -f of a container that has exited prints its log and ends, as `kubectl logs -f` (it waited for a next start).
    follow = netlab("logs", "--lab", lab, "once", "-f", timeout=30)
    assert follow.stdout == first
    _up(path)  # restartPolicy Always: `up` starts the exited container again
    assert wait_for(exited)
    second = netlab("logs", "--lab", lab, "once").stdout
    assert second.startswith("run ") and second.count("\n") == 1 and second != first, second
    assert netlab("logs", "--lab", lab, "once", "--previous").stdout == first
    # A run that could not start: its log is the reason netlab records. Its command changed: a new pod's
    # container, with no run before it; `up` tries it again, and the failed run is the previous one.
    path = write_topology(tmp_path, _topology(lab, "[/nonexistent]"), "topo.yaml")
    _up(path, ok=False)  # the lab stays up, the container failed
    error = _pod(lab, "once")["containers"][0]
    assert error["state"] == "failed", error
    said = netlab("logs", "--lab", lab, "once").stdout
    assert said.startswith("netlab: could not start: ") and "/nonexistent" in said and said.count("\n") == 1, said
    assert netlab("logs", "--lab", lab, "once", "-p", check=False).returncode == 2
    _up(path, ok=False)  # the lab stays up, the container failed
    assert netlab("logs", "--lab", lab, "once").stdout == said
    assert netlab("logs", "--lab", lab, "once", "-p").stdout == said
    # Two files at most per container: the current run's and the previous one's.
    logs = sorted(os.listdir(state_path(lab, "logs")))
    assert [n for n in logs if n.startswith("once.")] == ["once.c.log", "once.c.previous.log"], logs


def test_a_pods_creation_time_outlives_its_sandbox(labs):
    lab = labs.name("lr")
    labs.up_here(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: web, node: n1}}]\n")
    made = os.stat(f"/run/netns/{lab}-web").st_ctime
    created = _pod(lab, "web")["created"]
    assert created == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(made))
    time.sleep(1.1)  # a sandbox made again now would have another second
    subprocess.run(["ip", "netns", "del", f"{lab}-web"], check=True)
    gone = _pod(lab, "web")
    assert (gone["status"], gone["created"]) == ("SandboxChanged", created), gone
    age = netlab("get", "pods", "--lab", lab).stdout.splitlines()
    web = next(line.split() for line in age if line.startswith("web "))
    assert web[4] != "<unknown>", age
    Lab(lab).repair()  # `up --lab`
    assert os.stat(f"/run/netns/{lab}-web").st_ctime > made  # the sandbox is new
    again = _pod(lab, "web")
    assert (again["status"], again["restarts"], again["created"]) == ("Running", 1, created), again


def _two_containers(lab: str, command: str, pods: str = "once, other") -> str:
    body = "".join(f"  - name: {p}\n    node: n1\n    containers:\n      - {{name: c, command: {command}}}\n"
                   f"      - {{name: side, command: [sleep, '600']}}\n" for p in pods.split(", "))
    return f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n{body}"


def test_a_changed_command_starts_with_no_previous_log_and_what_goes_leaves_no_log(labs, tmp_path):
    """QA: after a command was changed in the file, `logs -p` printed the old command's last run (Kubernetes
    makes a new pod: a new container, no previous log), and a container or pod taken out of the topology left
    its log files in the lab's folder."""
    lab = labs.name("lr")
    exited = lambda: _pod(lab, "once")["containers"][0]["state"] == "exited"  # noqa: E731
    path = labs.up_here(_two_containers(lab, '["sh", "-c", "echo old $$; exit 3"]'))
    assert wait_for(exited)
    _up(path)  # restartPolicy Always: a restart of the same command keeps the run before
    assert wait_for(exited)
    assert netlab("logs", "--lab", lab, "once", "-c", "c", "-p").stdout.startswith("old ")
    logs = state_path(lab, "logs")
    assert "once.c.previous.log" in os.listdir(logs)
    # The command changes: a new pod's container, whose first run has no run before it.
    path = write_topology(tmp_path, _two_containers(lab, '["sh", "-c", "echo new; exit 3"]'), "topo.yaml")
    _up(path)
    assert wait_for(exited)
    assert netlab("logs", "--lab", lab, "once", "-c", "c").stdout == "new\n"
    none = netlab("logs", "--lab", lab, "once", "-c", "c", "-p", check=False)
    assert (none.returncode, none.stderr.strip()) == (
        2, 'netlab: previous terminated container "c" in pod "once" not found'), none
    assert (_pod(lab, "once")["restarts"], _pod(lab, "other")["restarts"]) == (0, 0)
    # The same command restarted: the run before is the new command's.
    _up(path)
    assert wait_for(exited)
    assert netlab("logs", "--lab", lab, "once", "-c", "c", "-p").stdout == "new\n"
    # A container taken out of a pod, and a pod taken out of the lab: their logs go, and no one else's.
    other = sorted(n for n in os.listdir(logs) if n.startswith("other."))
    assert other == ["other.c.log", "other.c.previous.log", "other.side.log"], other
    path = write_topology(tmp_path, _two_containers(lab, '["sh", "-c", "echo new; exit 3"]', "once"), "topo.yaml")
    path = write_topology(tmp_path, open(path).read().replace("      - {name: side, command: [sleep, '600']}\n", ""),
                          "topo.yaml")
    _up(path)
    assert sorted(os.listdir(logs)) == ["once.c.log", "once.c.previous.log"]


def test_logs_follow_ends_when_the_running_container_ends(labs):
    """`netlab logs -f job | grep done` hung on a Job-like container: -f now ends with the container, after its
    last line, as `kubectl logs -f` does."""
    lab = labs.name("qg")
    labs.up_here(f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - name: job\n    node: n1\n    restartPolicy: Never\n"
            "    containers: [{name: c, command: [sh, -c, 'echo start; sleep 5; echo done; exit 3']}]\n")
    follow = netlab("logs", "--lab", lab, "job", "-f", timeout=60)  # begun while it runs (sleep 5)
    assert follow.stdout == "start\ndone\n"
    assert _pod(lab, "job")["containers"][0]["state"] == "exited"
