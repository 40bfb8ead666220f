"""`netlab up --watch` and the containers it restarts, run as a user runs it (test_watch.py has the rest).

restartPolicy OnFailure: a container that failed is restarted with a back-off, one that completed is left,
whether the watcher started it, found it exited before it started, or saw it exit; echo containers come
back with their lab's one echo server; a Never pod's dead sandbox has its containers stopped for good.
A container that cannot start is tried again at once after each apply, then after its back-off.
Each case has a lab of its own, unique name, always taken down.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from helpers import lab_namespaces, netlab, unique_lab, write_topology
from netlab.kernel import pidfd
from netlab import Lab
from watching import as_planned, container_pid, jobs_topology, residents, running, topology, wait_until, watching

pytestmark = pytest.mark.root


def test_on_failure_restarts_a_failed_container_with_back_off_and_leaves_a_completed_one(tmp_path):
    name = unique_lab("im")
    path = write_topology(tmp_path, jobs_topology(name, 0.3))
    with watching(name) as start:
        watcher = start(path)  # it starts the containers: they are its children, their exit status known
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


def test_on_failure_knows_how_containers_it_did_not_start_exited(tmp_path):
    """Containers a plain `up` started are init's children once it has exited: a watcher started later
    reads their exit status from the kernel's taskstats records, so OnFailure leaves the one that
    completed and restarts the one that failed, as the kubelet would."""
    name = unique_lab("im")
    path = write_topology(tmp_path, jobs_topology(name, 8))
    netlab("up", "-t", path)  # the containers' parent exits with it
    with watching(name) as start:
        watcher = start(path)
        assert not any("exited" in x for x in watcher.lines), "\n".join(watcher.lines)  # they outlive the start
        line = watcher.wait_for_line("saw: container job/main exited (exit 0)", timeout=20)
        assert line.endswith("did: nothing (restartPolicy OnFailure)")
        watcher.wait_for_line("container crash/main exited (exit 3)", timeout=20)
        watcher.wait_for_line("did: restarted container crash/main")
        assert not any("restarted container job/main" in x for x in watcher.lines), "\n".join(watcher.lines)


@pytest.mark.skipif(not pidfd.exit_info_supported(), reason="this kernel keeps no exit status with a pidfd")
def test_on_failure_knows_how_containers_exited_before_it_started(tmp_path):
    """Containers of a plain `up` that exited before any watcher ran: nobody read a taskstats record then,
    but the lab's echo server held a pidfd of each, and the kernel kept their exit statuses with them. The
    watcher restarts the one that failed and leaves the one that completed."""
    name = unique_lab("im")
    path = write_topology(tmp_path, jobs_topology(name, 0))

    def codes() -> dict:  # `get pods -o json`'s exit codes, read in this process
        return {p.name: p.containers[0].exit_code for p in Lab(name).pods() if p.name in ("job", "crash")}

    with watching(name) as start:
        netlab("up", "-t", path)
        wait_until(lambda: codes() == {"job": 0, "crash": 3}, 10.0)  # both gone, and reaped by init
        # No resync within the test: the restarted crash, which exits at once, is seen by its pidfd, which
        # the watcher opens on the zombie (nothing else would wake it).
        watcher = start(path, resync="60")
        assert "did: restarted container crash/main (it had exited with code 3)" in watcher.lines[0], watcher.lines
        # the completed job, held before the watcher began: said by its first line, not by a later round
        assert watcher.lines[0].endswith("watching (container job/main exited (exit 0), held: restartPolicy "
                                         "OnFailure)"), watcher.lines
        watcher.wait_for_line("saw: container crash/main exited (exit 3)")  # the new one: back-off
        assert watcher.stop() == 0
        assert not any("job/main" in x for x in watcher.lines[1:]), "\n".join(watcher.lines)
        assert not any("restarted container job/main" in x for x in watcher.lines), "\n".join(watcher.lines)


@pytest.mark.skipif(not pidfd.exit_info_supported(), reason="this kernel keeps no exit status with a pidfd")
def test_a_never_pod_that_exited_before_the_watcher_is_said_by_its_first_line_not_as_news_later(tmp_path):
    """QA qr2 7: a watcher started on a lab whose Never pod had exited minutes before said nothing of it at
    first, then, at the next event, `saw: container job/main exited; did: nothing (restartPolicy Never)`: an old
    exit as news, without its code."""
    name = unique_lab("im")
    path = write_topology(tmp_path, f"""\
name: {name}
nodes: [{{name: node-1}}]
pods:
  - {{name: a, node: node-1, containers: [{{name: main, command: [sleep, infinity]}}]}}
  - {{name: job, node: node-1, restartPolicy: Never, containers: [{{name: main, command: [sh, -c, "exit 1"]}}]}}
""")

    def code() -> object:  # `get pods job -o json`'s exit code, read in this process
        return Lab(name).pod("job").containers[0].exit_code

    with watching(name) as start:
        netlab("up", "-t", path)
        wait_until(lambda: code() == 1, 10.0)
        watcher = start(path)
        assert watcher.lines[0].endswith("watching (container job/main exited (exit 1), held: restartPolicy Never)"), \
            watcher.lines
        mark = len(watcher.lines)
        os.kill(container_pid(name, "a"), signal.SIGKILL)  # an event: the round that said the old exit as news
        watcher.wait_for_line("did: restarted container a/main", after=mark)
        assert watcher.stop() == 0
        assert not any("job/main" in x for x in watcher.lines[1:]), "\n".join(watcher.lines)


def test_killed_echo_containers_come_back_with_their_server(tmp_path):
    """Echo containers are threads of the lab's one echo server: kill -9 of one's thread id kills the
    server with all of them; the watcher watches the server's process and restarts them (Always)."""
    name = unique_lab("im")
    path = write_topology(tmp_path, f"name: {name}\nnodes:\n  - name: node-1\npods:\n  - {{name: e1, node: node-1}}\n"
                                    "  - {name: e2, node: node-1}\n")
    Lab.up(path)  # in this process: the echo server is no child of its `up` either way (its launcher forks it)
    with watching(name) as start:
        watcher = start(path)
        mark = len(watcher.lines)
        old = container_pid(name, "e1")
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: running(container_pid(name, "e1")) and container_pid(name, "e1") != old, 10.0)
        # (the server was started by the `up` before the watcher, not its child: its status is taskstats')
        line = watcher.wait_for_event("container e1/main exited", after=mark, found=True)
        assert "container e2/main exited" in line and "did: restarted container e1/main" in line
        reply = subprocess.run(["ip", "netns", "exec", f"{name}-e2", "hostname"], capture_output=True, text=True)
        assert reply.returncode == 0
        assert watcher.stop() == 0
        assert as_planned(name)


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
    with watching(name) as start:
        watcher = start(path)
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
            # the watcher's own stop is not said again as an exit it saw (QA qw 4)
            assert not any(f"container {pod}/main exited" in x for x in watcher.lines[mark:]), watcher.lines[mark:]
        assert not any("restarted container" in x for x in watcher.lines[mark:]), "\n".join(watcher.lines)
        assert running(keep) and container_pid(name, "keep") == keep  # the server's other thread serves on
        client = ("import socket; s = socket.create_connection(('127.0.0.1', 8080), timeout=5); "
                  "print(s.recv(300).decode())")
        reply = subprocess.run(["ip", "netns", "exec", f"{name}-keep", sys.executable, "-c", client],
                               capture_output=True, text=True, timeout=30)
        assert json.loads(reply.stdout)["pod"] == "keep", reply
        assert watcher.stop() == 0


@pytest.mark.skipif(not pidfd.exit_info_supported(), reason="this kernel keeps no exit status with a pidfd")
def test_each_run_of_a_container_has_its_own_exit(tmp_path):
    """OnFailure, one container, each run its own exit: run 1 exits 3 (restarted at once), run 2 exits 4 (held
    by its back-off), then a plain `up` in another terminal restarts it, and run 3 completes (exit 0). The
    watcher kept one exit per container, not per run: it said run 2's exit 4 for run 3, and restarted the
    completed container once the back-off was over ("saw: ... (exit 4); did: restarted container runs/main
    (it had exited with code 0)"), a 4th run that OnFailure forbids. Now each exit belongs to its run, and
    `get pods` keeps the run before the current one's as the kubelet's lastState."""
    name = unique_lab("im")
    count, go = tmp_path / "runs", tmp_path / "go"
    command = (f"n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}; "
               f"case $n in 1) exit 3;; 2) sleep 0.3; exit 4;; esac; while [ ! -e {go} ]; do sleep 0.05; done; exit 0")
    path = write_topology(tmp_path, f"""\
name: {name}
nodes:
  - name: node-1
pods:
  - name: runs
    node: node-1
    restartPolicy: OnFailure
    containers:
      - name: main
        command: [sh, -c, "{command}"]
""")

    def seen() -> dict:  # `get pods -o json`'s container, read in this process
        c = Lab(name).pods()[0].containers[0]
        return {k: getattr(c, k) for k in ("state", "exit_code", "last_exit_code", "restarts")}

    with watching(name) as start:
        watcher = start(path, backoff="5", resync="1")
        watcher.wait_for_line("saw: container runs/main exited (exit 3); did: restarted container runs/main")
        # (its wait counts from this exit, the kubelet's FinishedAt: tests/unit/test_watch_backoff.py measures it)
        watcher.wait_for_line("saw: container runs/main exited (exit 4); did: nothing (back-off: restart in ")
        held_at = time.monotonic()
        assert seen() == {"state": "exited", "exit_code": 4, "last_exit_code": 3, "restarts": 1}
        up = netlab("up", "-t", path)
        assert "restarted container runs/main (it had exited with code 4)" in up.stdout, up.stdout
        assert seen() == {"state": "running", "exit_code": None, "last_exit_code": 4, "restarts": 2}
        mark = len(watcher.lines)
        go.touch()
        watcher.wait_for_line("saw: container runs/main exited (exit 0); did: nothing (restartPolicy OnFailure)",
                              after=mark)
        time.sleep(max(0.0, held_at + 5 + 1.5 - time.monotonic()))  # past run 2's back-off and a resync
        assert count.read_text().strip() == "3", "\n".join(watcher.lines)  # no 4th run
        assert residents(f"{name}-runs", watcher) == []
        assert not any("restarted container runs/main" in x for x in watcher.lines[mark:]), "\n".join(watcher.lines)
        # A resync that came when run 2's back-off ended, while the `up` above held the lab, saw run 2's exit still
        # there, waited for that `up` and found nothing to change: its line says the exit it saw, not a new one.
        said = [int(code) for line in watcher.lines if "to release the lab; did: nothing to change" not in line
                for code in re.findall(r"runs/main exited \(exit (\d+)\)", line)]
        assert said == sorted(set(said), key=said.index) == [3, 4, 0], "\n".join(watcher.lines)  # once each, in order
        assert seen() == {"state": "exited", "exit_code": 0, "last_exit_code": 4, "restarts": 2}
        assert watcher.stop() == 0


def test_a_container_that_cannot_start_is_tried_again_at_once_after_each_apply(tmp_path):
    """The kubelet's first retry of a container that cannot start is at once (back-off 0 s, then 10, 20, 40 s ...):
    after the first apply and after a file apply that changed only its command (no notification comes, and no
    process exits), the watcher's next round tries it again. It waited for the periodic check (up to --resync):
    with --resync 600 no retry came at all."""
    name = unique_lab("hi")
    bad = "  - {name: c, node: node-1, containers: [{name: main, command: [/nonexistent/%s]}]}\n"
    path = write_topology(tmp_path, topology(name, bad % "x"))
    with watching(name) as start:
        watcher = start(path, resync="600")
        first = next(i for i, x in enumerate(watcher.lines) if "saw: lab " in x)
        assert "pod c container main: could not start: /nonexistent/x" in watcher.lines[first], watcher.lines
        # (its saw: may begin with the first apply's late echo: "saw: link cni0 up in ...; container c/main ...")
        retry = watcher.wait_for_event("container c/main failed to start", after=first + 1)
        assert "; did: pod c container main: could not start: /nonexistent/x" in retry, retry  # tried, not held
        with open(path, "w") as fh:
            fh.write(topology(name, bad % "y"))  # another command: a new pod's container, its back-off anew
        mark = len(watcher.lines)
        applied = watcher.wait_for_line(f"saw: {path} changed; did: ", after=mark)
        assert "pod c container main: could not start: /nonexistent/y" in applied, applied
        after = watcher.lines.index(applied) + 1
        retry = watcher.wait_for_event("container c/main failed to start", after=after)
        assert "; did: pod c container main: could not start: /nonexistent/y" in retry, retry
