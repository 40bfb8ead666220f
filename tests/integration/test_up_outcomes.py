"""What `netlab up` exits with when the lab's network is up and its workload is not as asked.

A container whose command cannot start leaves the lab up (its network works: real pings), and `up` says so in
one line per container and exits 1, as `status` does for the same lab, so that `netlab up && netlab probe`
stops there; the library's result names it too. A container that started and then failed is not a start
failure: `up` did what the file asked (restartPolicy says what follows, tests/integration/test_exit_codes.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import NETLAB, in_netns, lab_namespaces, netlab, wait_for

pytestmark = pytest.mark.root


def topology(lab: str, bad: bool = True) -> str:
    broken = '      - {name: bad, command: ["/nonexistent"]}\n' if bad else ""
    return f"""name: {lab}
network: {{mode: host-gw}}
nodes:
  - {{name: n1}}
  - {{name: n2}}
pods:
  - {{name: a, node: n1, ip: 10.244.0.2}}
  - name: b
    node: n2
    ip: 10.244.1.2
    containers:
{broken}      - {{name: ok, command: [sleep, infinity]}}
"""


def pod_pids(netns: str) -> list[int]:
    """The processes in a namespace, as the kernel lists them (`ip netns pids`)."""
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=True).stdout
    return [int(p) for p in out.split()]


def test_a_container_that_cannot_start_leaves_the_lab_up_and_up_exits_1_as_status_does(labs):
    lab = labs.name("uo")
    path, up = labs.up(topology(lab), check=False)
    assert up.returncode == 1, (up.stdout, up.stderr)
    failed = [line for line in up.stderr.splitlines() if "could not start" in line]
    assert failed == ["netlab: pod b container bad: could not start: /nonexistent: command not found"], up.stderr
    assert "warning" not in up.stderr and "Traceback" not in up.stderr, up.stderr
    assert f"lab {lab} is up (" in up.stdout, up.stdout
    # The kernel's view: the lab is up and carries traffic, its other container runs in its pod.
    assert len(lab_namespaces(lab)) == 5
    ping = in_netns(f"{lab}-a", "ping", "-c1", "-W2", "10.244.1.2")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    pids = pod_pids(f"{lab}-b")
    assert len(pids) == 1 and open(f"/proc/{pids[0]}/cmdline").read() == "sleep\0infinity\0"
    # status says the same of the lab, with the same exit.
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "pod b container bad could not start" in status.stdout, status.stdout
    # A script's `up && probe` stops at up; up again (it tries the container again) says it again.
    chained = subprocess.run(["sh", "-c", f'"$@" up -t {path} && echo went-on', "sh", *NETLAB],
                             capture_output=True, text=True)
    assert chained.returncode == 1 and "went-on" not in chained.stdout, chained
    assert f"lab {lab} is up; nothing changed, but 1 container could not start" in chained.stdout, chained.stdout
    js = netlab("up", "-t", path, "-o", "json", check=False)
    assert js.returncode == 1 and json.loads(js.stdout)["failed"] == [failed[0].removeprefix("netlab: ")], js
    # The library's result says it (in another process: the API holds its lab's lock as the CLI does).
    api = subprocess.run([sys.executable, "-c", "import json, sys; from netlab import Lab; r = Lab.up(sys.argv[1])"
                          ".last_up; print(json.dumps([r.ok, list(r.failed)]))", path], capture_output=True,
                         text=True, env=dict(os.environ))
    assert json.loads(api.stdout) == [False, [failed[0].removeprefix("netlab: ")]], api.stderr
    # Without the container that cannot start, up converges (stopping nothing that runs) and exits 0.
    with open(path, "w") as fh:
        fh.write(topology(lab, bad=False))
    fixed = netlab("up", "-t", path, check=False)
    assert fixed.returncode == 0 and fixed.stderr == "", (fixed.stdout, fixed.stderr)
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    assert pod_pids(f"{lab}-b") == pids


def test_a_container_that_started_and_then_failed_is_not_a_start_failure(labs):
    """restartPolicy Never, a command that exits 3 once it has run: up started what the file asked (exit 0,
    no line about it), now and again; what became of it is `get pods`' and `status`'s to say."""
    lab = labs.name("uo")
    path, up = labs.up(f"""name: {lab}
network: {{mode: host-gw}}
nodes: [{{name: n1}}]
pods:
  - name: job
    node: n1
    restartPolicy: Never
    containers:
      - {{name: main, command: [sh, -c, "sleep 0.2; exit 3"]}}
""", check=False)
    assert up.returncode == 0 and "could not start" not in up.stderr, (up.stdout, up.stderr)

    def state() -> str:
        pods = json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]
        return pods[0]["containers"][0]["state"]

    assert wait_for(lambda: state() == "exited", 10)
    again = netlab("up", "-t", path, check=False)
    assert again.returncode == 0 and "could not start" not in again.stderr, (again.stdout, again.stderr)
    assert pod_pids(f"{lab}-job") == []  # Never: not started again


def test_impair_runs_an_up_and_exits_1_as_up_does_when_a_container_could_not_start(labs):
    """`netlab impair` converges the lab by an `up` of it, which tries the container again: it exited 0 in
    silence, where `up` of the same lab exits 1 naming it. Now it says each in one line and exits 1, -o json
    too ('failed'); the impairment is set all the same (the kernel's tbf) and the lab stays up."""
    lab = labs.name("qv")
    path, up = labs.up(topology(lab), check=False)
    assert up.returncode == 1, (up.stdout, up.stderr)
    line = "netlab: pod b container bad: could not start: /nonexistent: command not found"
    got = netlab("impair", "--lab", lab, "a:eth0", "--rate", "10mbit", check=False)
    assert got.returncode == 1, (got.stdout, got.stderr)
    assert got.stderr.splitlines() == [line], got.stderr
    assert got.stdout.startswith("a:eth0 in lab ") and "Traceback" not in got.stderr, got.stdout
    qdiscs = json.loads(subprocess.run(["tc", "-j", "-n", f"{lab}-a", "qdisc", "show", "dev", "eth0"],
                                       capture_output=True, text=True, check=True).stdout)
    assert [q["kind"] for q in qdiscs if q.get("root")] == ["tbf"], qdiscs
    js = netlab("impair", "--lab", lab, "a:eth0", "--clear", "-o", "json", check=False)
    assert js.returncode == 1 and json.loads(js.stdout)["failed"] == [line.removeprefix("netlab: ")], js
    assert js.stderr.splitlines() == [line], js.stderr
    assert len(lab_namespaces(lab)) == 5
