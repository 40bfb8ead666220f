"""The library on real labs (QA q7): a lab whose state is corrupt is said with its way out in Python by every
Lab method, and that call takes it down; ``lab.impairments()`` is ``netlab impair -o json``'s view of the
kernel, ``lab.impair()`` its result; a container whose command cannot run is said as a shell says it."""

from __future__ import annotations

import inspect
import json
import os
import subprocess

import pytest

from helpers import NETLAB, in_netns, lab_down, lab_namespaces, netlab, unique_lab
from netlab import Lab
from netlab.api import load, to_json
from netlab.errors import EnvironmentNotReady
from netlab.realize.state_dir import state_file

pytestmark = pytest.mark.root


def topology(lab: str, containers: str = "") -> dict:
    pod_b: dict = {"name": "b", "node": "n1"}
    if containers:
        pod_b["containers"] = [{"name": "bad", "command": ["/nonexistent-py"]},
                               {"name": "perm", "command": ["/etc/passwd"]},
                               {"name": "ok", "command": ["sleep", "infinity"]}]
    return {"name": lab, "network": {"mode": "host-gw"}, "nodes": [{"name": "n1"}],
            "pods": [{"name": "a", "node": "n1"}, pod_b]}


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [n["name"] for n in json.loads(out or "[]")]


def test_every_method_on_a_corrupt_lab_names_the_python_way_out_and_it_takes_the_lab_down():
    name = unique_lab("py")
    topo = topology(name)
    try:
        lab = Lab.up(topo, name=name)
        made = sorted(n for n in netns_names() if n.startswith(f"{name}-"))
        assert {f"{name}-n1", f"{name}-a", f"{name}-b"} <= set(made)
        with open(state_file(name), "w") as f:
            f.write("{garbage")
        calls = {
            "up": lambda: Lab.up(topo, name=name), "up_loaded": lambda: Lab.up_loaded(load(topo, name)),
            "attach": lambda: Lab.attach(name), "down": lambda: Lab(name).down(), "repair": lab.repair,
            "impair": lambda: lab.impair("a:eth0", rate="1mbit"), "impairments": lambda: lab.impairments(),
            "state": lab.state, "model": lambda: lab.model, "pods": lab.pods, "nodes": lab.nodes,
            "services": lab.services, "pod": lambda: lab.pod("a"), "node": lambda: lab.node("n1"),
            "service": lambda: lab.service("s"), "status": lab.status, "probe": lab.probe,
            "reach": lambda: lab.reach("a", "b"), "trace": lambda: lab.trace("a", "b"),
            "inspect": lambda: lab.inspect("a"), "namespaces": lab.namespaces,
            "exec": lambda: lab.exec("a", ["true"]), "popen": lambda: lab.popen("a", ["true"]),
            "break_": lambda: lab.break_("endpoint-pod-down", "a"), "logs": lambda: lab.logs("a"),
            "cni_log": lambda: lab.cni_log("a"),
        }
        public = {n for n, _ in inspect.getmembers(Lab) if not n.startswith("_")} - {"name", "owned"}
        assert public == set(calls)
        for what, call in calls.items():
            with pytest.raises(EnvironmentNotReady) as err:
                call()
            words = str(err.value)
            assert f"Lab('{name}').down(force=True)" in words and "netlab down" not in words, (what, words)
        assert sorted(n for n in netns_names() if n.startswith(f"{name}-")) == made  # nothing took it down
        done = Lab(name).down(force=True)
        assert done.was_up and sorted(done.removed_netns) == made
        assert not [n for n in netns_names() if n.startswith(f"{name}-")]
    finally:
        if lab_namespaces(name):
            netlab("down", "--lab", name, "--force", check=False)
        assert not lab_namespaces(name)


def test_the_python_view_of_the_impairments_is_the_clis():
    name = unique_lab("py")
    try:
        lab = Lab.up(topology(name), name=name)
        assert lab.impairments().impairments == ()
        done = lab.impair("a:eth0", rate="10mbit", loss="1%")
        cli_set = json.loads(netlab("impair", "--lab", name, "b:eth0", "--rate", "20mbit", "-o", "json").stdout)
        assert set(to_json(done)) == set(cli_set) == {"lab", "target", "netns", "before", "after", "changes",
                                                     "warnings", "failed"}
        assert (done.target, done.netns, done.before, done.after) == ("a:eth0", f"{name}-a", "none",
                                                                       "rate 10mbit loss 1%")
        mine = to_json(lab.impairments())
        cli = json.loads(netlab("impair", "--lab", name, "-o", "json").stdout)
        # the loss rule's counter may count a frame (an IPv6 solicitation) between the two reads: never fewer
        assert [r.pop("dropped") for r in mine["impairments"]] <= [r.pop("dropped") for r in cli["impairments"]]
        assert mine == cli and [r["target"] for r in mine["impairments"]] == ["a:eth0", "b:eth0"]
        (a_row, _) = lab.impairments().impairments
        assert a_row.kernel == "rate 10mbit loss 1%" and a_row.set_at is not None and a_row.loss_at
        one = to_json(lab.impairments("a:eth0"))
        cli_one = json.loads(netlab("impair", "--lab", name, "a:eth0", "-o", "json").stdout)
        assert [r.pop("dropped") for r in one["impairments"]] <= [r.pop("dropped") for r in cli_one["impairments"]]
        assert one == cli_one
        # the kernel's own view: a tbf of 10mbit on a's eth0
        qdiscs = json.loads(subprocess.run(["tc", "-j", "-n", f"{name}-a", "qdisc", "show", "dev", "eth0"],
                                           capture_output=True, text=True, check=True).stdout)
        assert any(q["kind"] == "tbf" and q["options"]["rate"] == 1250000 for q in qdiscs), qdiscs
    finally:
        lab_down(name)


def test_a_container_whose_command_cannot_run_is_said_as_a_shell_says_it():
    name = unique_lab("py")
    try:
        lab = Lab.up(topology(name, containers="bad"), name=name)
        assert lab.last_up is not None and not lab.last_up.ok
        assert sorted(lab.last_up.failed) == [
            "pod b container bad: could not start: /nonexistent-py: command not found",
            "pod b container perm: could not start: /etc/passwd: permission denied"]
        # the other container runs in the pod's namespace
        pids = subprocess.run(["ip", "netns", "pids", f"{name}-b"], capture_output=True, text=True).stdout.split()
        assert any(open(f"/proc/{p}/cmdline").read().startswith("sleep\0") for p in pids), pids
        status = subprocess.run([*NETLAB, "status", "--lab", name], capture_output=True, text=True)
        out = status.stdout + status.stderr
        assert status.returncode == 1 and "pod b container bad could not start: /nonexistent-py: command not found" in out, out
        assert "pod b container perm could not start: /etc/passwd: permission denied" in out and "Errno" not in out, out
        assert lab.logs("b", "bad") == "netlab: could not start: /nonexistent-py: command not found\n"
        assert in_netns(f"{name}-a", "true").returncode == 0
    finally:
        lab_down(name)
        assert not os.path.exists(state_file(name))
