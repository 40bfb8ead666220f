"""A stopped container's log replaced by a directory, on a real lab (root).

Someone's directory where netlab writes a container's log (``mkdir`` over ``logs/b.main.log`` while the
container is stopped) kept its next start from opening the log. `up` moved the directory to the previous log's
name, or, when a previous log was there, failed whole (``NotADirectoryError ...; rolled back``, exit 4) while
`logs` said the next start would write a new log. Now the directory stays where it is, untouched; the start of
that container alone fails, in one line saying to move it away (exit 1), `logs` says the same, and once it is
moved `up` starts the container, which writes a new log. The same for an echo container (its lab's echo server
killed), where the server cannot open the log either.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from helpers import netlab, state_path, wait_for
from netlab.workload.containers import log_path, previous_log_path

pytestmark = pytest.mark.root

TICKS = "while :; do echo tick; sleep 0.2; done"


def pid_of(lab: str, pod: str) -> int:
    with open(state_path(lab, "state.json")) as f:
        return int(json.load(f)["extra"]["workload"]["pods"][pod]["containers"]["main"]["pid"])


def kill_and_replace_its_log(lab: str, pod: str, pid: int) -> str:
    """The container's process killed (SIGKILL), then its log made a directory holding a file of its own."""
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: f"pod {pod} container main exited" in netlab("status", "--lab", lab, check=False).stdout
                    + netlab("status", "--lab", lab, check=False).stderr, timeout=10)
    log = log_path(lab, pod, "main")
    os.unlink(log)
    os.mkdir(log)
    with open(os.path.join(log, "mine"), "w") as f:
        f.write("the user's\n")
    return log


def blocked(lab: str, path: str, pod: str, log: str) -> None:
    """`logs` and `up` say it in one line each; the directory stays, with its file."""
    logs = netlab("logs", "--lab", lab, pod, check=False)
    assert logs.returncode == 3 and logs.stderr.count("\n") == 1 and "Traceback" not in logs.stderr, logs.stderr
    assert logs.stderr.startswith(f"netlab: the log of {pod}/main, {log}, is a directory, not a file: the "
                                  "container cannot start until it is moved away (netlab leaves it as it is); then `"
                                  ) and logs.stderr.endswith(f" up -t {path}` starts it\n"), logs.stderr
    up = netlab("up", "-t", path, check=False)
    problem = (f"netlab: pod {pod} container main: could not start: its log {log} is a directory, not a file: "
               "netlab leaves it as it is; move it away, then run up again\n")
    assert up.returncode == 1 and up.stderr == problem, (up.returncode, up.stderr)
    assert os.listdir(log) == ["mine"] and open(os.path.join(log, "mine")).read() == "the user's\n"


def test_a_directory_where_a_stopped_containers_log_goes_is_said_and_left_alone(labs, tmp_path):
    lab = labs.name("op")
    path, _ = labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - {{name: a, node: n1}}\n"
                      f"  - {{name: b, node: n1, containers: [{{name: main, command: [sh, -c, '{TICKS}']}}]}}\n")
    # b has a run before this one (its previous log): the case where up failed whole.
    os.kill(pid_of(lab, "b"), signal.SIGKILL)
    assert wait_for(lambda: "restarted container b/main" in netlab("up", "-t", path).stdout, timeout=10)
    assert os.path.isfile(previous_log_path(lab, "b", "main"))
    log = kill_and_replace_its_log(lab, "b", pid_of(lab, "b"))
    blocked(lab, path, "b", log)
    moved = tmp_path / "moved"
    os.rename(log, moved)
    assert "restarted container b/main" in netlab("up", "-t", path).stdout
    assert wait_for(lambda: "tick" in netlab("logs", "--lab", lab, "b", check=False).stdout, timeout=10)
    assert os.listdir(moved) == ["mine"]

    # An echo container: its lab's echo server killed (the thread's process), the same.
    server = int(next(line.split()[1] for line in open(f"/proc/{pid_of(lab, 'a')}/status")
                      if line.startswith("Tgid:")))
    log = kill_and_replace_its_log(lab, "a", server)
    blocked(lab, path, "a", log)
    os.rename(log, tmp_path / "moved-a")
    assert "restarted container a/main" in netlab("up", "-t", path).stdout
    assert netlab("status", "--lab", lab).returncode == 0
    # Real traffic: the echo container answers from pod b and logs it in its new file.
    with open(state_path(lab, "state.json")) as f:
        ip = json.load(f)["extra"]["addresses"]["pods"]["a"][3]
    got = netlab("exec", "--lab", lab, "b", "--", "curl", "-s", "-m", "5", f"http://{ip}:8080/", check=False)
    assert json.loads(got.stdout)["pod"] == "a", got
    assert wait_for(lambda: "http " in open(log).read(), timeout=5)
