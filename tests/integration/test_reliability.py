"""Reliability and safety (issue 6): faults, signals, cycles, concurrency, ownership."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from forked_cli import ForkedCli
from helpers import (NETLAB, in_netns, ip, lab_namespaces, netlab, state_path, two_node_topology, unique_lab,
                     write_topology)
from helpers_racing import paused_at
from netlab.errors import netlab_command

pytestmark = pytest.mark.root


def process_gone(pid: int, within: float = 2.0) -> bool:
    """The process has exited (or is a zombie waiting for its parent), within a bounded wait."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except FileNotFoundError:
            return True
        if stat[stat.rfind(")") + 2] == "Z":
            return True
        time.sleep(0.02)
    return False


def small(lab: str) -> str:
    return f"""name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n2}}]
"""


SWEEP_PARTS = 3


@pytest.fixture(scope="module")
def forked_cli():
    cli = ForkedCli()
    yield cli
    cli.close()


@pytest.mark.parametrize("part", range(SWEEP_PARTS))
def test_fault_sweep_every_operation_of_up(labs, tmp_path, part, forked_cli):
    """Fail, or SIGKILL, after the k-th changing operation, for every k: nothing is left behind.

    The operations are swept in three parts (k = part + 1, part + 4, ...), so that the workers share them.
    Each ``up`` is a CLI process forked from one that loaded netlab once (tests/forked_cli.py): 106 CLI starts
    cost more CPU than the sweep's work."""
    from netlab import Lab

    lab = labs.name("f")
    path = write_topology(tmp_path, small(lab))
    total = Lab.up(path).last_up.operations  # what `up -o json` says as "operations": the sweep's points
    Lab(lab).down()
    assert total > 10
    faults = 0
    for k in range(part + 1, total + 1, SWEEP_PARTS):
        failed = forked_cli.run("up", "-t", path, env={"NETLAB_FAULT_AT": str(k)})
        faults += 1
        assert failed.returncode == 4, (k, failed.stderr)
        assert "injected fault" in failed.stderr and "rolled back" in failed.stderr
        assert "Traceback" not in failed.stderr
        assert lab_namespaces(lab) == [], f"fault at {k} left {lab_namespaces(lab)}"
        killed = forked_cli.run("up", "-t", path, env={"NETLAB_FAULT_AT": str(k), "NETLAB_FAULT_MODE": "kill"})
        faults += 1
        assert killed.returncode == -signal.SIGKILL
        Lab(lab).down()  # what down leaves after the kill, not its words: in this process (no CLI start)
        assert lab_namespaces(lab) == [], f"kill at {k} then down left {lab_namespaces(lab)}"
    Lab.up(path)
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W1", "10.244.1.2").returncode == 0
    print(f"fault sweep, part {part}: {faults} faults injected of {total} operations' {2 * total}, 0 leftovers")


@pytest.mark.parametrize("sig", ["INT", "TERM"])
@pytest.mark.parametrize("at", [3, 20])
def test_signal_during_up_rolls_back(labs, tmp_path, sig, at):
    """SIGINT/SIGTERM at a chosen operation (a test hook, so no race with a fast machine) rolls back."""
    lab = labs.name("s")
    path = write_topology(tmp_path, small(lab))
    proc = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_SIGNAL": f"{at}:{sig}"})
    assert proc.returncode == 128 + getattr(signal, f"SIG{sig}"), proc.stderr  # 130, 143: the signal's convention
    assert f"interrupted by SIG{sig}; rolled back" in proc.stderr and "Traceback" not in proc.stderr
    assert lab_namespaces(lab) == []
    assert netlab("list", "-o", "json").stdout.count(f'"{lab}"') == 0


def test_a_signal_early_in_a_converge_leaves_the_running_lab_as_it_was(labs, tmp_path):
    """The run names its new namespaces in the state before it makes them (a pod, the cluster DNS pod); stopped
    before it made them, it kept those names, and status said the lab had namespaces it does not have."""
    lab = labs.name("s")
    path = write_topology(tmp_path, small(lab))
    netlab("up", "-t", path)
    write_topology(tmp_path, small(lab).replace("{name: b, node: n2}]", "{name: b, node: n2}, {name: c, node: n1, "
                                                "labels: {app: web}}]\nservices: [{name: web, selector: {app: web}, "
                                                "ports: [{port: 80, targetPort: 8080}]}]"))
    proc = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_SIGNAL": "1:INT"})
    assert proc.returncode == 130 and "rolled back" in proc.stderr, proc.stderr
    with open(state_path(lab, "state.json")) as fh:
        assert sorted(json.load(fh)["netns"]) == sorted(f"{lab}-{n}" for n in ("a", "b", "n1", "n2", "underlay"))
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0, status.stdout
    assert sorted(lab_namespaces(lab)) == sorted(f"{lab}-{n}" for n in ("a", "b", "n1", "n2", "underlay"))


def test_a_failed_converge_that_removes_a_pod_leaves_it_whole_or_says_so(labs, tmp_path, forked_cli):
    """A converge that removes pod b (and adds two pods and a Service) fails at its k-th step. Its rollback said
    "rolled back" where b had lost its veth (deleted early, from the node's side, as an extra link) or its
    containers. Now b is whole after the rollback, or, once its removal began, the message says so and
    `up --lab` brings it back."""
    from netlab import Lab

    lab = labs.name("r")
    old = small(lab)
    new = old.replace("{name: a, node: n1}, {name: b, node: n2}]", "{name: a, node: n1, labels: {app: web}}, "
                      "{name: c, node: n1, labels: {app: web}}, {name: d, node: n2}]\nservices: [{name: web, "
                      "selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}]")
    path = write_topology(tmp_path, old)
    netlab("up", "-t", path)
    write_topology(tmp_path, new)
    total = json.loads(netlab("up", "-t", path, "-o", "json").stdout)["operations"]  # the converge's steps
    write_topology(tmp_path, old)
    netlab("up", "-t", path)
    said = []
    for k in sorted({*range(1, total + 1, 3), total}):
        write_topology(tmp_path, new)
        failed = forked_cli.run("up", "-t", path, env={"NETLAB_FAULT_AT": str(k)})
        assert failed.returncode == 4 and "rolled back" in failed.stderr, (k, failed.stderr)
        if "which it had begun to remove" in failed.stderr:
            said.append(k)
            assert f"but for b, which it had begun to remove (`{netlab_command(f'up --lab {lab}')}` makes it again)" \
                in failed.stderr, failed.stderr
            netlab("up", "--lab", lab)
        status = Lab(lab).status()  # as `status` judges it, in this process: the rollback is the test's point
        assert status.clean, (k, status.drift)
    assert said and said[-1] == total  # the last steps come after the removal (the features' starts)


def test_fifty_down_up_cycles_without_sleep(labs, tmp_path):
    """Each up makes the lab's five namespaces anew right after the down before it: the kernel still destroys the
    old ones and their devices, which no new name or device meets ("File exists"). The kernel's side, not the
    CLI's: up and down in this process (a CLI start costs more CPU than a cycle of this lab)."""
    from netlab import Lab

    lab = labs.name("c")
    path = write_topology(tmp_path, small(lab))
    names = sorted(f"{lab}-{n}" for n in ("a", "b", "n1", "n2", "underlay"))
    for cycle in range(50):
        up = Lab.up(path)  # a failed up raises (ApplyFailed: the kernel's "File exists" among them), rolled back
        assert up.last_up.ok and sorted(up.last_up.created_netns) == names, (cycle, up.last_up)
        assert not any("File exists" in w for w in up.last_up.warnings), (cycle, up.last_up.warnings)
        down = up.down()
        assert down.was_up and sorted(down.removed_netns) == names and not down.problems, (cycle, down)
    assert lab_namespaces(lab) == []


def test_four_labs_in_parallel_do_not_disturb_each_other(labs, tmp_path):
    names = [labs.name("p") for _ in range(4)]
    paths = [write_topology(tmp_path, two_node_topology(n, pods_per_node=1), f"{n}.yaml") for n in names]

    def cycle(path_and_name):
        path, name = path_and_name
        netlab("up", "-t", path)
        ok = netlab("probe", "--lab", name, check=False).returncode == 0
        st = netlab("status", "--lab", name, check=False).returncode
        netlab("down", "--lab", name)
        return ok, st

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(cycle, zip(paths, names)))
    assert results == [(True, 0)] * 4
    for name in names:
        assert lab_namespaces(name) == []


def test_same_lab_two_commands_one_waits(labs, tmp_path):
    lab = labs.name("w")
    path = write_topology(tmp_path, small(lab))
    first = subprocess.Popen(NETLAB + ["up", "-t", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.05)
    second = netlab("up", "-t", path, check=False)
    first.communicate(timeout=60)
    assert first.returncode == 0 and second.returncode == 0
    assert netlab("status", "--lab", lab).returncode == 0


def test_decoys_survive_down(labs, tmp_path):
    """A look-alike namespace made by hand and lookalike chains in a node are not the lab's."""
    lab = labs.name("d")
    decoy = f"{lab}-fedora-9"
    subprocess.run(["ip", "netns", "add", decoy], check=True)
    try:
        labs.up(two_node_topology(lab, pods_per_node=1))
        node = f"{lab}-minikube"
        subprocess.run(["ip", "netns", "exec", node, "iptables", "-t", "nat", "-N", "KUBE-SVC-DECOY"], check=True)
        netlab("down", "--lab", lab)
        assert decoy in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", decoy], check=True)


def test_existing_namespace_stops_up_before_any_change(labs, tmp_path):
    """A namespace made by someone else (no netlab tag) stops up; its removal is not advised."""
    lab = labs.name("o")
    squatter = f"{lab}-fedora-2"
    subprocess.run(["ip", "netns", "add", squatter], check=True)
    try:
        path = write_topology(tmp_path, two_node_topology(lab, pods_per_node=1))
        proc = netlab("up", "-t", path, check=False)
        assert proc.returncode == 3  # found before any change: the environment, not a rolled-back apply
        assert squatter in proc.stderr and "not made by netlab" in proc.stderr
        assert "ip netns del" not in proc.stderr  # not proven stale: it is someone else's
        assert lab_namespaces(lab) == [squatter]
        assert not os.path.exists(state_path(lab))
    finally:
        subprocess.run(["ip", "netns", "del", squatter], check=True)


def test_edited_state_cannot_make_down_delete_others(labs, tmp_path):
    """A state edited to list someone else's namespace is corrupt: down refuses it, and
    down --force goes by the lab's tags, so the victim survives both."""
    lab = labs.name("e")
    victim = unique_lab("v")
    subprocess.run(["ip", "netns", "add", victim], check=True)
    try:
        labs.up(two_node_topology(lab, pods_per_node=1))
        path = state_path(lab, "state.json")
        state = json.load(open(path))
        state["netns"][victim] = "intent"
        state["netns"]["../../proc/1/ns/net"] = "intent"
        state["netns"][f"{lab}-nothere"] = "ino:1"
        with open(path, "w") as fh:
            json.dump(state, fh)
        proc = netlab("down", "--lab", lab, check=False)
        assert proc.returncode == 3 and "corrupt" in proc.stderr
        assert victim in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        netlab("down", "--lab", lab, "--force")
        assert victim in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert lab_namespaces(lab) == []
    finally:
        subprocess.run(["ip", "netns", "del", victim], check=True)


def test_state_dir_must_be_root_only_and_not_a_symlink(tmp_path):
    env_dir = tmp_path / "state"
    env_dir.symlink_to(tmp_path)
    proc = netlab("list", check=False, env={"NETLAB_STATE_DIR": str(env_dir)})
    assert proc.returncode == 3 and "symlink" in proc.stderr
    env_dir.unlink()
    env_dir.mkdir(mode=0o777)
    os.chmod(env_dir, 0o777)
    proc = netlab("up", "-t", write_topology(tmp_path, small(unique_lab())), check=False,
                  env={"NETLAB_STATE_DIR": str(env_dir)})
    assert proc.returncode == 3 and "writable" in proc.stderr


# Every program a netlab process (or a child it forks) starts, as Python's audit hooks see it before the exec:
# subprocess.Popen's (executable, args), os.posix_spawn's and os.exec*'s (path, argv).
AUDITED = """
import json, os, sys
LOG = sys.argv.pop(1)
def hook(event, args):
    if event in ("subprocess.Popen", "os.posix_spawn", "os.exec"):
        exe, argv = args[0], args[1]
        argv = argv if isinstance(argv, (str, bytes)) else [os.fsdecode(a) for a in argv]
        with open(LOG, "a") as fh:
            fh.write(json.dumps([event, None if exe is None else os.fsdecode(exe), os.fsdecode(argv)
                                 if isinstance(argv, bytes) else argv]) + "\\n")
sys.addaudithook(hook)
sys.argv[0] = "netlab"
from netlab.launch import main
main()
"""


def test_no_shell_and_absolute_binaries(tmp_path):
    """Subprocesses are argv lists with absolute paths: the source has no shell call (grep, as a reviewer would),
    and every program `up`, `status`, `probe`, `trace` and `down` of a two-node lab start (the CLI and the children
    it forks) is an argv list whose program is an absolute path when it is exec'd (audit hooks)."""
    import pathlib
    import re
    import sys

    root = pathlib.Path(__file__).resolve().parents[2] / "netlab"
    offenders = [str(path) for path in root.rglob("*.py")
                 if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(", path.read_text())]
    assert offenders == []
    log, lab = tmp_path / "exec.log", unique_lab("dc")
    topo = write_topology(tmp_path, two_node_topology(lab))
    audited = [sys.executable, "-c", AUDITED, str(log)]
    try:
        for args in (["up", "-t", topo], ["status", "--lab", lab], ["probe", "--lab", lab, "--proto", "tcp"],
                     ["trace", "--lab", lab, "fedora-1", "fedora-2"]):
            proc = subprocess.run(audited + args, capture_output=True, text=True, timeout=300)
            assert proc.returncode in (0, 1), (args, proc.stderr)
    finally:
        subprocess.run(audited + ["down", "--lab", lab], capture_output=True, timeout=300)
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    programs = {os.path.basename(exe or argv[0]) for _, exe, argv in runs if not isinstance(argv, str)}
    assert {"iptables-restore", "iptables-save"} <= programs, programs  # the hook saw netlab's own tools
    wrong = [run for run in runs if isinstance(run[2], str) or not os.path.isabs(run[1] or run[2][0])]
    assert wrong == [], wrong
    assert ip("netns", "list").returncode == 0


def test_namespace_remade_by_hand_under_a_lab_name_survives_down(labs, tmp_path):
    """Someone deletes a lab namespace and makes one of the same name: it is not the lab's any more."""
    lab = labs.name("r")
    labs.up(small(lab))
    state = json.load(open(state_path(lab, "state.json")))
    echo_b = state["extra"]["workload"]["pods"]["b"]["containers"]["main"]["pid"]
    victim = f"{lab}-b"
    subprocess.run(["ip", "netns", "del", victim], check=True)
    subprocess.run(["ip", "netns", "add", victim], check=True)
    try:
        proc = netlab("down", "--lab", lab)
        assert victim in proc.stderr and "not this lab's" in proc.stderr
        assert lab_namespaces(lab) == [victim]
        # The lab's own container of b (in the lab's old, nameless namespace) did not survive,
        # and nothing of the lab is left in its state directory (the UTS namespace unpinned).
        assert process_gone(echo_b)
        assert not os.path.exists(state_path(lab))
    finally:
        subprocess.run(["ip", "netns", "del", victim], check=True)


@pytest.mark.parametrize("half, share", [("removed", None), ("unmounted", 1)],
                         ids=["file-removed-read-here", "unmounted-forked-readers"])
def test_a_namespace_deleted_while_status_reads_it_is_missing_not_an_error(labs, tmp_path, monkeypatch, half, share):
    """`ip netns del` (or `netlab down` in another terminal) between status listing the lab and reading one
    of its namespaces: the kernel's namespace is unmounted from its file, then the file removed. Met in either
    half, by this process or a forked reader, status says the namespace is missing (exit 1, one line), as for
    one deleted before it began; it used to end in a traceback (FileNotFoundError, or setns's EINVAL)."""
    from click.testing import CliRunner

    from netlab.cli import cli
    from netlab.kernel import live_read, netns as nsmod, readmany

    lab = labs.name()
    labs.up(small(lab))
    victim = f"{lab}-b"
    path = nsmod.netns_path(victim)
    read = live_read.read_netns

    def delete_then_read(netns, *args, **kwargs):
        # Just before the victim is read, wherever it is read (a forked reader runs this too): once.
        if netns == victim and nsmod.is_nsfs(path):
            if half == "removed":
                ip("netns", "del", victim)
            else:
                subprocess.run(["umount", "-l", path], check=True)
        return read(netns, *args, **kwargs)

    monkeypatch.setattr(live_read, "read_netns", delete_then_read)
    if share:
        monkeypatch.setattr(readmany, "MIN_SHARE", share)  # a reader per core for this small lab
    out = CliRunner().invoke(cli, ["status", "--lab", lab])
    assert out.exit_code == 1, out.output
    assert f"missing: namespace {victim}" in out.stdout
    assert not isinstance(out.exception, OSError) and "Traceback" not in out.output
    assert not nsmod.is_nsfs(path)  # the kernel's view: no namespace mounted there
    assert os.path.exists(path) == (half == "unmounted")
    monkeypatch.undo()
    if half == "unmounted":
        ip("netns", "del", victim)  # the other half of the deletion: its file (the lab's own)
    labs.up(small(lab))
    assert netlab("status", "--lab", lab).returncode == 0
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W2", "10.244.1.2").returncode == 0


def test_inspect_of_a_pod_whose_namespace_is_gone_is_one_line(labs, tmp_path):
    """The other commands that enter a namespace say the same one line for one that is gone (exit 2); inspect
    ended in a traceback."""
    lab = labs.name()
    path, _ = labs.up(small(lab))
    ip("netns", "del", f"{lab}-b")
    repair = netlab_command(f"up -t {shlex.quote(path)}")  # the lab as its file made it: its file repairs it
    gone = f"namespace {lab}-b was deleted while lab {lab} is up; `{repair}` makes it again"
    for args in (["inspect", "--lab", lab, "b"], ["inspect", "--lab", lab, "b", "-o", "json"],
                 ["exec", "--lab", lab, "b", "--", "true"], ["capture", "--lab", lab, "b:eth0", "--timeout", "1"],
                 ["trace", "--lab", lab, "a", "b"]):
        proc = netlab(*args, check=False)
        json_doc = [json.loads(proc.stdout)["error"]] if "json" in args else []  # the error document
        assert (proc.returncode, json_doc or proc.stdout) == (2, [gone] if json_doc else ""), proc.stderr
        assert proc.stderr == f"netlab: {gone}\n"  # that lab's, and the up that makes the namespace again
    netlab(*shlex.split(repair)[2:])  # the command as said
    assert netlab("exec", "--lab", lab, "b", "--", "true").returncode == 0


# The two orders of a probe whose agent a `netlab down` stopped, each held in place (not a race the machine's load
# decides): the down still at work when the probe judges its agent's end (held at its test hook, its lock held,
# the lab's processes stopped), or done with the lab by then (the probe's judgement held until it has finished).
DOWN_ORDERS = {
    "at work": "is being taken down (`netlab down`): the probe's agent was stopped with the lab's other processes",
    # a plain lab's report (probe/plain_report.py) reads the agent's answer before the models: the agent stopped,
    # the run goes on with them, which look at the lab again and find the down at work
    "at work, plain": "is being taken down (`netlab down`): its namespaces go with it",
    "done": "was taken down (`netlab down`) meanwhile: the probe's agent was stopped with the lab's other processes; "
            "it is not up",
}


@pytest.mark.parametrize("order", DOWN_ORDERS)
def test_down_during_a_probe_is_said_in_one_line(labs, monkeypatch, order):
    """`netlab down` in another terminal while a probe runs: down stops every process in the lab's namespaces,
    the probe's agent too. The probe says so in one line (exit 2), as trace does, not that its agent died (exit 3):
    the lab is being taken down when the down is still at work as the probe looks, else it was taken down and is
    not up. The agent's work is a sleep here, so that down surely finds it at work. The down starts once the probe
    waits for its agent's answer (`probe` forks it before it has read the lab: probe/early.py; a down that finished
    before the probe read the lab is a lab that is not up)."""
    import threading

    from click.testing import CliRunner

    from netlab.cli import cli
    from netlab.errors import UsageError
    from netlab.kernel import netns as nsmod
    from netlab.kernel.child import Child
    from netlab.probe import agent, runner

    lab = labs.name()
    labs.up(small(lab))
    inodes = {f"net:[{os.stat(nsmod.netns_path(ns)).st_ino}]" for ns in lab_namespaces(lab)}
    waiting, judged, down_done = threading.Event(), threading.Event(), threading.Event()

    def agent_at_work(job):  # in the forked agent: in the lab's namespace, as the real one
        nsmod.join(job.home)
        time.sleep(60)

    def agent_in_the_lab() -> bool:
        me = os.getpid()
        children = open(f"/proc/{me}/task/{me}/children").read().split()
        return any(os.readlink(f"/proc/{pid}/ns/net") in inodes for pid in children if os.path.exists(f"/proc/{pid}"))

    def waits_for_its_agent(result):  # the agent's answer awaited: by the run's judge or a plain lab's report
        def wait(*args, **kwargs):
            waiting.set()
            return result(*args, **kwargs)
        return wait

    def judged_once_down_is_done(taken_down):
        def judge(*args, **kwargs):
            assert down_done.wait(120)
            return taken_down(*args, **kwargs)
        return judge

    def down_once_the_probe_waits_for_its_agent() -> None:
        assert waiting.wait(120)
        deadline = time.monotonic() + 30
        while not agent_in_the_lab() and time.monotonic() < deadline:
            time.sleep(0.02)
        if order == "done":
            netlab("down", "--lab", lab)
            down_done.set()
            return
        down = paused_at("down-stopped", "down", "--lab", lab)  # the lab's processes stopped, its lock held
        judged.wait(120)
        out, err = down.communicate("\n", timeout=300)
        assert down.returncode == 0, (out, err)

    monkeypatch.setattr(agent, "run_job", agent_at_work)
    monkeypatch.setattr(Child, "result", waits_for_its_agent(Child.result))
    if order != "at work, plain":  # the models' run, which reads the lab before it waits for the agent
        from netlab.probe import plain_report

        monkeypatch.setattr(plain_report, "report", lambda *args, **kwargs: None)
    if order == "done":
        monkeypatch.setattr(runner, "_taken_down", judged_once_down_is_done(runner._taken_down))
    other_terminal = threading.Thread(target=down_once_the_probe_waits_for_its_agent)
    other_terminal.start()
    try:
        out = CliRunner().invoke(cli, ["probe", "--lab", lab, "--proto", "icmp"])
    finally:
        judged.set()
        other_terminal.join()
    assert isinstance(out.exception, UsageError), out.output  # exit 2 from the program
    assert str(out.exception) == f"lab {lab} {DOWN_ORDERS[order]}"
    assert lab_namespaces(lab) == []


def test_a_probe_of_a_lab_being_taken_down_is_refused(labs):
    """A probe that starts while a `netlab down` takes the lab away (held at its test hook: the lab's processes
    stopped, its lock held, its namespaces not yet deleted) says so in one line, exit 2, as it does once the
    namespaces are gone: not a probe of a lab on its way out (all 6 probes as expected, exit 0)."""

    lab = labs.name()
    labs.up(small(lab))
    down = paused_at("down-stopped", "down", "--lab", lab)
    try:
        r = netlab("probe", "--lab", lab, "--proto", "icmp", check=False)
    finally:
        out, err = down.communicate("\n", timeout=300)
    assert (r.returncode, r.stdout, r.stderr) == (
        2, "", f"netlab: lab {lab} is being taken down (`netlab down`): its namespaces go with it\n")
    assert down.returncode == 0, (out, err)
    assert lab_namespaces(lab) == []
