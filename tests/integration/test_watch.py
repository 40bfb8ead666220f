"""`netlab up --watch`, run as a user runs it (a separate process, stopped with SIGINT), against real breakage.

The watcher's lab: two nodes, pod ``a`` (restartPolicy Always, the default)
on node-1 and pod ``b`` (restartPolicy Never) on node-2, each with a command
container of its own process (echo containers are threads of the lab's one
echo server: killing one kills them all, as a shared process does). Each case breaks
something with ordinary tools (``ip route del``, ``ip link set down``,
``kill -9``, an edit of the file) and waits for the kernel's view to be
right again, with the watcher's one-line log saying what it saw and did.
The fixture always stops the watcher and checks that Ctrl-C left the lab up
and consistent.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers import NETLAB, ip_json, lab_down, lab_namespaces, netlab, state_path, unique_lab, write_topology
from netlab.kernel import pidfd, processes

pytestmark = pytest.mark.root

BACKOFF = "0.5"


def topology(name: str, extra: str = "") -> str:
    return f"""\
name: {name}
nodes:
  - name: node-1
  - name: node-2
pods:
  - name: a
    node: node-1
    containers:
      - name: main
        command: [sleep, infinity]
  - name: b
    node: node-2
    restartPolicy: Never
    containers:
      - name: main
        command: [sleep, infinity]
{extra}"""


def jobs_topology(name: str, seconds: float) -> str:
    """The watcher's lab and two OnFailure pods whose command runs ``seconds``: job exits 0, crash 3."""
    return topology(name, "".join(f"""\
  - name: {pod}
    node: {node}
    restartPolicy: OnFailure
    containers:
      - name: main
        command: [sh, -c, "sleep {seconds:g}; exit {code}"]
""" for pod, node, code in (("job", "node-1", 0), ("crash", "node-2", 3))))


class Watcher:
    """``netlab up -t FILE --watch`` in a process of its own; its lines, as they come."""

    def __init__(self, path: str, env: dict | None = None, resync: str = "2"):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(NETLAB + ["up", "-t", path, "--watch", "--restart-backoff", BACKOFF,
                                               "--resync", resync], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env={**os.environ, **(env or {})})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for_line("saw: lab ", timeout=60)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, text: str, timeout: float = 10.0, after: int = 0) -> str:
        return self._wait(lambda line: text in line, f"no line with {text!r}", timeout, after)

    def wait_for_event(self, event: str, timeout: float = 10.0, after: int = 0) -> str:
        """The line whose ``saw:`` list reports ``event``: the watcher joins the events of one batch with
        "; " ("saw: link eth0 up in X; namespace deleted in Y (drift); did: ..."), and an event of an
        earlier change (a link coming up after a repair) may arrive in the same batch, before it."""
        seen = re.compile(r"saw: (?:[^;]*; )*?" + re.escape(event))
        return self._wait(lambda line: seen.search(line) is not None, f"no saw: line reporting {event!r}",
                          timeout, after)

    def _wait(self, matches, missing: str, timeout: float, after: int) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if matches(line):
                    return line
            assert self.proc.poll() is None, "the watcher ended:\n" + "\n".join(self.lines)
            time.sleep(0.02)
        raise AssertionError(f"{missing} within {timeout} s:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("the watcher did not stop on SIGINT:\n" + "\n".join(self.lines))
        self._reader.join(5)
        return self.proc.returncode


def container_pid(lab: str, pod: str) -> int | None:
    with open(state_path(lab, "state.json")) as fh:
        rec = json.load(fh)["extra"]["workload"]["pods"][pod]["containers"]["main"]
    return rec.get("pid")


def running(pid: int | None) -> bool:
    return pid is not None and processes.running(pid)


def residents(netns: str, watcher: "Watcher") -> list[str]:
    """The processes in a namespace (``ip netns pids``), with their command lines, but for the watcher and the
    readers it forks: they step into each namespace for a moment whenever they read the lab (a resync)."""
    listed = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    theirs = processes.cmdline(watcher.proc.pid)
    out = []
    for pid in listed:
        argv = processes.cmdline(int(pid))  # [] once it is gone
        if argv and argv != theirs:
            out.append(f"{pid} {' '.join(argv)}")
    return out


def wait_until(check, timeout: float, step: float = 0.01) -> float:
    """Seconds until ``check()`` held; AssertionError after ``timeout``."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("im")
    path = write_topology(tmp_path_factory.mktemp("watch"), topology(name))
    watcher = None
    try:
        watcher = Watcher(path)
        yield name, path, watcher
        # Ctrl-C: the watcher ends at once, says so, and the lab stays up and as the plan says
        # (b, restartPolicy Never, stays exited: the only difference status may report).
        assert watcher.stop() == 0
        assert "stopped watching lab" in watcher.lines[-1] and "it stays up" in watcher.lines[-1]
        assert f"{name}-a" in lab_namespaces(name)
        status = netlab("status", "--lab", name, check=False)
        drift = [line for line in status.stdout.splitlines()[1:-1]]
        assert all(line.strip().startswith("containers: pod b ") for line in drift), status.stdout
    finally:
        if watcher is not None:
            watcher.stop()
        lab_down(name)


def test_a_deleted_route_comes_back_within_a_second(lab):
    name, _, watcher = lab
    mark = len(watcher.lines)
    subprocess.run(["ip", "-n", f"{name}-node-1", "route", "del", "10.244.1.0/24"], check=True)
    took = wait_until(lambda: ip_json("route", "show", "10.244.1.0/24", netns=f"{name}-node-1") != [], 1.0)
    line = watcher.wait_for_line(f"did: replace route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in "
                                 f"{name}-node-1", after=mark)
    # What it saw: the notification, or the comparison's words (see test_a_link_set_down_is_healed).
    assert (f"route 10.244.1.0/24 deleted in {name}-node-1" in line
            or f"missing: route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in {name}-node-1" in line), line
    print(f"route back after {took:.3f} s: {line}")


def test_a_link_set_down_is_healed(lab):
    name, _, watcher = lab
    mark = len(watcher.lines)
    subprocess.run(["ip", "-n", f"{name}-a", "link", "set", "eth0", "down"], check=True)
    wait_until(lambda: "UP" in ip_json("link", "show", "eth0", netns=f"{name}-a")[0]["flags"], 1.0)
    line = watcher.wait_for_line(f"did: set up of link eth0 in {name}-a", after=mark)
    # What it saw: the notification, or, when notifications of an earlier change (carriers coming up late
    # after the lab was made) woke it first and its comparison found the link down before it read this
    # one, the comparison's words.
    assert f"link eth0 down in {name}-a" in line or f"different: link eth0 in {name}-a (down)" in line, line
    # The pod's routes went with its link; they are back too, and traffic flows.
    wait_until(lambda: len(ip_json("route", netns=f"{name}-a")) == 3, 2.0)
    assert subprocess.run(["ip", "netns", "exec", f"{name}-a", "ping", "-c1", "-W2", "10.244.1.2"],
                          capture_output=True).returncode == 0


def test_a_deleted_namespace_is_made_again_at_once(lab):
    name, _, watcher = lab
    mark = len(watcher.lines)
    subprocess.run(["ip", "netns", "del", f"{name}-a"], check=True)  # no netlink message: inotify on /run/netns
    line = watcher.wait_for_event(f"namespace deleted in {name}-a", after=mark, timeout=5)
    assert "did: created 1 namespaces" in line and "restarted container a/main" in line
    assert subprocess.run(["ip", "netns", "exec", f"{name}-a", "ping", "-c1", "-W2", "10.244.1.2"],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("scenario,target", [("ip-forward-off", "node-1"), ("vxlan-arp-missing", "node-2")])
def test_a_break_scenario_is_healed(lab, scenario, target):
    """`netlab break` (the catalogue's real faults) under the watcher: healed without anyone running up."""
    name, _, watcher = lab
    mark = len(watcher.lines)
    out = netlab("break", scenario, "--lab", name, "--target", target)
    assert f"broke {scenario}" in out.stdout
    line = watcher.wait_for_line("did: ", after=mark, timeout=5)
    assert "saw: " in line and "repair failed" not in line, line
    wait_until(lambda: netlab("status", "--lab", name, check=False).returncode == 0, 5.0, step=0.2)
    probe = netlab("probe", "--lab", name, check=False)
    assert probe.returncode == 0, probe.stdout


def test_a_killed_container_is_restarted_and_restart_policy_never_is_kept(lab):
    name, _, watcher = lab
    mark = len(watcher.lines)
    old = container_pid(name, "a")
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: container_pid(name, "a") != old and running(container_pid(name, "a")), 5.0)
    line = watcher.wait_for_line("container a/main exited (exit 137)", after=mark)
    assert "did: restarted container a/main" in line
    # Killed again at once: the kubelet's back-off makes it wait (0.5 s here, then 1 s ...).
    mark = len(watcher.lines)
    again = container_pid(name, "a")
    os.kill(again, signal.SIGKILL)
    wait_until(lambda: container_pid(name, "a") != again and running(container_pid(name, "a")), 5.0)
    assert any("back-off" in x for x in watcher.lines[mark:]) or \
        watcher.wait_for_line("did: restarted container a/main", after=mark)
    # b's restartPolicy is Never: it stays exited, and the watcher says why, once.
    mark = len(watcher.lines)
    b = container_pid(name, "b")
    os.kill(b, signal.SIGKILL)
    line = watcher.wait_for_event("container b/main exited", after=mark)
    assert "did: nothing (restartPolicy Never)" in line and "(exit 137)" in line
    time.sleep(2.5)  # past a resync
    assert container_pid(name, "b") == b and not running(b)
    assert sum("b/main" in x for x in watcher.lines[mark:]) == 1


def test_an_edited_topology_adds_a_pod(lab):
    name, path, watcher = lab
    mark = len(watcher.lines)
    with open(path, "a") as fh:
        fh.write("  - name: c\n    node: node-1\n")
    wait_until(lambda: f"{name}-c" in lab_namespaces(name), 10.0)
    line = watcher.wait_for_line(f"saw: {path} changed; did: created 1 namespaces", after=mark)
    assert "started container c/main" in line
    assert subprocess.run(["ip", "netns", "exec", f"{name}-c", "ping", "-c1", "-W2", "10.244.1.2"],
                          capture_output=True).returncode == 0
    # An invalid edit is reported and changes nothing.
    mark = len(watcher.lines)
    with open(path, "a") as fh:
        fh.write("  - name: d\n    node: node-9\n")
    line = watcher.wait_for_line(f"saw: {path} changed; did: nothing, it is not valid", after=mark)
    assert "node-9" in line and f"{name}-d" not in lab_namespaces(name)


def test_the_loop_survives_a_failed_repair_and_retries_with_back_off(tmp_path):
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))
    netlab("up", "-t", path)
    watcher = None
    try:
        # Every repair's 5th step fails (a test hook of netlab.lab.journal): the repair is rolled back.
        # The watcher's first up has 4 steps (the features' starts: services, cni, workload, impair);
        # a repair has its route op before them, so its 5th step is a feature's start.
        watcher = Watcher(path, env={"NETLAB_FAULT_AT": "5"})
        subprocess.run(["ip", "-n", f"{name}-node-1", "route", "del", "10.244.1.0/24"], check=True)
        first = watcher.wait_for_line("did: repair failed: injected fault")
        assert first.endswith("retry in 0.5s") and f"route 10.244.1.0/24 deleted in {name}-node-1" in first
        watcher.wait_for_line("retry in 1.0s", timeout=10)
        watcher.wait_for_line("retry in 2.0s", timeout=10)
        assert watcher.proc.poll() is None  # still watching
        assert watcher.stop() == 0
        fixed = netlab("up", "-t", path)  # a plain up repairs what the failed ones could not
        assert "10.244.1.0/24" in fixed.stdout
    finally:
        if watcher is not None:
            watcher.stop()
        lab_down(name)


def test_down_while_watching_ends_the_watch_and_the_lab_stays_down(tmp_path):
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))
    watcher = None
    try:
        watcher = Watcher(path)
        netlab("down", "--lab", name)
        line = watcher.wait_for_line(f"saw: lab {name} was taken down; did: stop watching", timeout=15) \
            if watcher.proc.poll() is None else next(x for x in watcher.lines if "was taken down" in x)
        assert line
        assert watcher.proc.wait(15) == 0
        # Its containers exit and its namespaces vanish while the watcher may be reading them: that is the lab
        # going (the state says "deleting" first), not a check that failed.
        assert not any("check failed" in x for x in watcher.lines), "\n".join(watcher.lines)
        time.sleep(1)
        assert lab_namespaces(name) == [] and not os.path.exists(state_path(name))  # not brought back
    finally:
        if watcher is not None:
            watcher.stop()
        lab_down(name)


def test_a_second_watcher_of_a_lab_is_refused_and_one_may_start_once_the_first_ends(tmp_path):
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))
    first = again = None
    try:
        first = Watcher(path)
        with open(state_path(name, "state.json"), "rb") as fh:
            before = fh.read()
        second = netlab("up", "-t", path, "--watch", check=False, timeout=30)
        assert second.returncode == 3 and second.stdout == "", second
        assert second.stderr.strip().splitlines() == [
            f"netlab: lab {name} is already watched by pid {first.proc.pid} (netlab up --watch); one watcher per "
            "lab: stop that one (Ctrl-C) first"], second.stderr
        with open(state_path(name, "state.json"), "rb") as fh:
            assert fh.read() == before  # it applied nothing
        assert first.proc.poll() is None
        lines = len(first.lines)
        subprocess.run(["ip", "-n", f"{name}-node-1", "route", "del", "10.244.1.0/24"], check=True)
        first.wait_for_line("did: replace route 10.244.1.0/24", after=lines)  # the first watches on
        assert first.stop() == 0
        assert not os.path.exists(state_path(name, "watcher"))  # it takes its lock file with it
        again = Watcher(path)  # the lab is free to watch again
        netlab("down", "--lab", name)
        assert again.proc.wait(15) == 0
        time.sleep(0.5)
        assert not os.path.exists(state_path(name))  # nothing of the watchers' left either
    finally:
        for watcher in (first, again):
            if watcher is not None:
                watcher.stop()
        lab_down(name)


def test_on_failure_restarts_a_failed_container_with_back_off_and_leaves_a_completed_one(tmp_path):
    name = unique_lab("im")
    path = write_topology(tmp_path, jobs_topology(name, 0.3))
    watcher = None
    try:
        watcher = Watcher(path)  # it starts the containers: they are its children, their exit status known
        line = watcher.wait_for_line("saw: container job/main exited (exit 0)")
        assert line.endswith("did: nothing (restartPolicy OnFailure)")
        watcher.wait_for_line("container crash/main exited (exit 3)")
        watcher.wait_for_line("did: restarted container crash/main")
        # It keeps failing: after the first restart, each waits out its back-off (0.5 s, 1 s, 2 s ...).
        watcher.wait_for_line("saw: container crash/main exited (exit 3); did: nothing (back-off: restart in",
                              timeout=15)
        time.sleep(3)
        restarts = [x for x in watcher.lines if "restarted container crash/main" in x]
        assert 2 <= len(restarts) <= 4, "\n".join(watcher.lines)  # ~0.3 s runs: not one restart per exit
        # The completed job is said once and never restarted.
        assert sum("job/main exited (exit 0); did: nothing (restartPolicy OnFailure)" in x for x in watcher.lines) == 1
        assert not any("restarted container job/main" in x for x in watcher.lines), "\n".join(watcher.lines)
    finally:
        if watcher is not None:
            watcher.stop()
        lab_down(name)


def test_on_failure_knows_how_containers_it_did_not_start_exited(tmp_path):
    """Containers a plain `up` started are init's children once it has exited: a watcher started later
    reads their exit status from the kernel's taskstats records, so OnFailure leaves the one that
    completed and restarts the one that failed, as the kubelet would."""
    name = unique_lab("im")
    path = write_topology(tmp_path, jobs_topology(name, 8))
    netlab("up", "-t", path)  # the containers' parent exits with it
    watcher = None
    try:
        watcher = Watcher(path)
        assert not any("exited" in x for x in watcher.lines), "\n".join(watcher.lines)  # they outlive the start
        line = watcher.wait_for_line("saw: container job/main exited (exit 0)", timeout=20)
        assert line.endswith("did: nothing (restartPolicy OnFailure)")
        watcher.wait_for_line("container crash/main exited (exit 3)", timeout=20)
        watcher.wait_for_line("did: restarted container crash/main")
        assert not any("restarted container job/main" in x for x in watcher.lines), "\n".join(watcher.lines)
    finally:
        if watcher is not None:
            watcher.stop()
        lab_down(name)


@pytest.mark.skipif(not pidfd.exit_info_supported(), reason="this kernel keeps no exit status with a pidfd")
def test_on_failure_knows_how_containers_exited_before_it_started(tmp_path):
    """Containers of a plain `up` that exited before any watcher ran: nobody read a taskstats record then,
    but the lab's echo server held a pidfd of each, and the kernel kept their exit statuses with them. The
    watcher restarts the one that failed and leaves the one that completed."""
    name = unique_lab("im")
    path = write_topology(tmp_path, jobs_topology(name, 0))

    def codes() -> dict:
        pods = json.loads(netlab("get", "pods", "--lab", name, "-o", "json").stdout)["items"]
        return {p["name"]: p["containers"][0]["exit_code"] for p in pods if p["name"] in ("job", "crash")}

    watcher = None
    try:
        netlab("up", "-t", path)
        wait_until(lambda: codes() == {"job": 0, "crash": 3}, 10.0)  # both gone, and reaped by init
        # No resync within the test: the restarted crash, which exits at once, is seen by its pidfd, which
        # the watcher opens on the zombie (nothing else would wake it).
        watcher = Watcher(path, resync="60")
        assert "did: restarted container crash/main (it had exited with code 3)" in watcher.lines[0], watcher.lines
        watcher.wait_for_line("saw: container crash/main exited (exit 3)")  # the new one: back-off
        watcher.wait_for_line("saw: container job/main exited (exit 0); did: nothing (restartPolicy OnFailure)")
        assert not any("restarted container job/main" in x for x in watcher.lines), "\n".join(watcher.lines)
    finally:
        if watcher is not None:
            watcher.stop()
        lab_down(name)


def test_killed_echo_containers_come_back_with_their_server(tmp_path):
    """Echo containers are threads of the lab's one echo server: kill -9 of one's thread id kills the
    server with all of them; the watcher watches the server's process and restarts them (Always)."""
    name = unique_lab("im")
    path = write_topology(tmp_path, f"name: {name}\nnodes:\n  - name: node-1\npods:\n  - {{name: e1, node: node-1}}\n"
                                    "  - {name: e2, node: node-1}\n")
    netlab("up", "-t", path)
    watcher = None
    try:
        watcher = Watcher(path)
        mark = len(watcher.lines)
        old = container_pid(name, "e1")
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: running(container_pid(name, "e1")) and container_pid(name, "e1") != old, 10.0)
        # (the server was started by the `up` before the watcher, not its child: its status is taskstats')
        line = watcher.wait_for_event("container e1/main exited", after=mark)
        assert "container e2/main exited" in line and "did: restarted container e1/main" in line
        reply = subprocess.run(["ip", "netns", "exec", f"{name}-e2", "hostname"], capture_output=True, text=True)
        assert reply.returncode == 0
        assert watcher.stop() == 0
        assert netlab("status", "--lab", name, check=False).returncode == 0
    finally:
        if watcher is not None:
            watcher.stop()
        lab_down(name)


def test_a_never_pods_dead_sandbox_has_its_containers_stopped_and_not_started_again(tmp_path):
    """Pods of restartPolicy Never whose network namespace is deleted under their running containers (the
    sandbox died): the watcher makes the namespace again, as it does any, but, as the kubelet does for such
    a pod (it kills a dead sandbox's containers, and makes no new sandbox for a pod that must not
    restart), stops the containers left in the old namespace and starts none in the new one: a command
    container (its own process) and an echo container (a thread of the lab's echo server) alike."""
    name = unique_lab("im")
    path = write_topology(tmp_path, f"""\
name: {name}
nodes:
  - name: node-1
pods:
  - name: n
    node: node-1
    restartPolicy: Never
    containers:
      - name: main
        command: [sleep, infinity]
  - name: e
    node: node-1
    restartPolicy: Never
  - name: keep
    node: node-1
    restartPolicy: Never
""")
    watcher = None
    try:
        watcher = Watcher(path)
        n, e, keep = (container_pid(name, pod) for pod in ("n", "e", "keep"))
        assert running(n) and running(e) and running(keep)
        mark = len(watcher.lines)
        for pod in ("n", "e"):
            subprocess.run(["ip", "netns", "del", f"{name}-{pod}"], check=True)
        for pod in ("n", "e"):
            watcher.wait_for_line(f"stopped container {pod}/main (its pod's network namespace was made again; "
                                  "restartPolicy Never)", after=mark, timeout=10)
        wait_until(lambda: not running(n) and not running(e), 5.0)
        assert {f"{name}-n", f"{name}-e"} <= set(lab_namespaces(name))  # the network is the lab's: made again
        time.sleep(2.5)  # past a resync: still not started again, and said no more than once each
        assert container_pid(name, "n") == n and container_pid(name, "e") == e
        for pod in ("n", "e"):
            inside = residents(f"{name}-{pod}", watcher)
            assert inside == [], f"pod {pod}'s new namespace holds {inside}"
            assert sum(f"stopped container {pod}/main" in x for x in watcher.lines[mark:]) == 1
        assert not any("restarted container" in x for x in watcher.lines[mark:]), "\n".join(watcher.lines)
        assert running(keep) and container_pid(name, "keep") == keep  # the server's other thread serves on
        client = ("import socket; s = socket.create_connection(('127.0.0.1', 8080), timeout=5); "
                  "print(s.recv(300).decode())")
        reply = subprocess.run(["ip", "netns", "exec", f"{name}-keep", sys.executable, "-c", client],
                               capture_output=True, text=True, timeout=30)
        assert json.loads(reply.stdout)["pod"] == "keep", reply
        assert watcher.stop() == 0
    finally:
        if watcher is not None:
            watcher.stop()
        lab_down(name)
