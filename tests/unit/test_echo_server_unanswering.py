"""The lab's echo server that is slow, stopped or does not answer (workload/echo_start.start_echo,
lifecycle.stop through stopping.drop_echo), without root: a fake server and a fake kernel.

One process serves every echo container of a lab, each from a thread in its pod's namespaces. Two ways it took
the other pods' echo containers down:

- a plain `up` that replaced a server that did not answer looked for the other pods' threads only once it had
  killed it (a thread id of a gone process names nothing): they were not started again, and `status` said they
  had exited after an `up` that exited 0;
- the stop of one pod that `up` makes anew (moved to another node) asked the server to drop its thread and, when
  the server was slow (busy with another peer's request), stopped every process with a thread in the pod's
  namespace: the server, and every pod's echo container with it (RESTARTS went up for pods nobody touched).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from netlab.kernel import kill
from netlab.kernel import processes as proc
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize import state_dir
from netlab.realize.state import LabState
from netlab.workload import again, echo_start, launch, lifecycle, stopping
from netlab.workload.containers import container_argv, log_path

LAB = "ecu"


def lab_of(*pods: tuple[str, str]):
    text = f"name: {LAB}\nnodes: [{{name: n1}}, {{name: n2}}]\npods:\n" + "".join(
        f"  - {{name: {name}, node: {node}}}\n" for name, node in pods)
    return resolve(validate_source(parse_yaml(text, "t.yaml")))


def records(lab, tids: dict[str, int]) -> dict:
    """The workload records of a lab whose echo containers run as the threads ``tids`` (pod -> thread id)."""
    return {pod.name: {"netns": pod.netns, "uts": f"/nonexistent/{pod.name}", "created": 1.0, "containers": {
        c.name: {"argv": container_argv(pod, c), "log": log_path(LAB, pod.name, c.name), "restarts": 0,
                 "pid": tids[pod.name], "start": 7}
        for c in pod.containers}} for pod in lab.pods if pod.name in tids}


class Server:
    """A fake lab echo server: its threads (tid -> pod), alive until killed."""

    def __init__(self, pid: int, threads: dict[int, str]):
        self.pid, self.threads, self.alive = pid, dict(threads), True

    def kill(self) -> list[int]:
        self.alive = False
        self.threads.clear()
        return []


def test_a_new_server_for_one_that_does_not_answer_takes_every_running_pods_echo_container(monkeypatch, tmp_path):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    lab = lab_of(("a", "n1"), ("b", "n2"), ("c", "n1"))
    server = Server(4242, {501: "a", 502: "b"})
    pods = records(lab, {"a": 501, "b": 502})
    pods["c"] = {"netns": lab.pods[2].netns, "uts": "/nonexistent/c", "containers": {"main": {
        "argv": container_argv(lab.pods[2], lab.pods[2].containers[0]), "log": log_path(LAB, "c", "main"),
        "restarts": 0}}}
    monkeypatch.setattr(launch, "server_pid", lambda name: server.pid if server.alive else None)
    monkeypatch.setattr(proc, "proc_state", lambda pid: "S" if server.alive and pid == server.pid else None)
    monkeypatch.setattr(launch, "ask", lambda *args, **kw: None)  # running, not answering (busy, or traced)
    monkeypatch.setattr(launch, "stop_server", lambda name: server.kill())
    # The kernel: a record names an echo server's thread while that server holds it.
    monkeypatch.setattr(echo_start, "is_echo_thread", lambda crec: crec.get("pid") in server.threads)
    monkeypatch.setattr(kill, "terminate", lambda pids, still_ours, **kw: [])
    monkeypatch.setattr(echo_start, "new_run", lambda lab, pod, c, said=None: None)
    launched: list[list[dict]] = []
    monkeypatch.setattr(launch, "launch_echo", lambda specs, control, log: launched.append(specs) or "launcher")

    def await_echo(launcher, specs, pods):
        answer = launch.Answer(ready={s["id"]: (900 + i, 9) for i, s in enumerate(specs)}, complete=True)
        return launch.record(answer, specs, pods)

    monkeypatch.setattr(launch, "await_echo", await_echo)
    (a, b, c), starting = lab.pods, {}
    problems = echo_start.start_echo(lab, pods, [(c, c.containers[0], "never started")],
                                     [(a, a.containers[0]), (b, b.containers[0])], starting)
    assert problems == []
    assert not server.alive
    assert len(launched) == 1 and sorted(s["id"] for s in launched[0]) == ["a/main", "b/main", "c/main"], launched
    for pod in ("a", "b"):
        crec = pods[pod]["containers"]["main"]
        assert crec["restarts"] == 1 and crec["pid"] >= 900, crec  # the new server's thread, a restart counted
        assert starting[f"{pod}/main"] == f"restarted container {pod}/main (its echo server did not answer)"
    assert pods["c"]["containers"]["main"]["restarts"] == 0 and pods["c"]["containers"]["main"]["pid"] >= 900


class SlowServer:
    """A fake lab echo server on the lab's real control socket: it answers ``remove`` (its threads leave the pods
    named) only after ``busy`` seconds, as the real one does once another peer's request has held it."""

    def __init__(self, path: str, threads: dict[int, str], busy: float):
        self.threads, self.busy, self.requests = dict(threads), busy, []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.done = threading.Event()
        self.worker = threading.Thread(target=self.run, daemon=True)
        self.worker.start()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                if not data:
                    continue  # launch.server_pid only looked who listens
                req = json.loads(data)
                self.requests.append(req)
                time.sleep(self.busy)
                gone = [cid for cid in req.get("ids", []) if cid.split("/")[0] in self.threads.values()]
                self.threads = {t: p for t, p in self.threads.items() if f"{p}/main" not in gone}
                added = [spec["id"] for spec in req.get("specs", [])]  # an add: each served, as a new thread
                self.threads.update({900 + i: cid.split("/")[0] for i, cid in enumerate(added)})
                lines = [f"D {cid}" for cid in gone] + [f"R {cid} {900 + i} 9" for i, cid in enumerate(added)]
                try:
                    conn.sendall(("".join(line + "\n" for line in lines) + "OK\n").encode())
                except OSError:
                    pass  # the peer gave up

    def close(self) -> None:
        self.done.set()
        self.worker.join()
        self.sock.close()


@pytest.fixture
def slow(monkeypatch, tmp_path):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    monkeypatch.setattr(launch, "CONTROL_TIMEOUT", 0.3)  # the real 5 s, and the real 10 s of another's request,
    monkeypatch.setattr(launch, "BUSY_WAIT", 5.0, raising=False)  # scaled down: the server is busy 1 s
    servers: list[SlowServer] = []

    def make(threads: dict[int, str]) -> SlowServer:
        servers.append(SlowServer(launch.control_path(LAB, create=True), threads, busy=1.0))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def fake_kernel(monkeypatch, server: SlowServer, pods: dict) -> list[str]:
    """kill.stop_namespaces of the fake kernel: a process with a thread in a namespace that goes is stopped (the
    echo server: all its threads, every pod's echo container); returns what it stopped."""
    stopped: list[str] = []

    def stop_namespaces(names, uts_files=(), grace=3.0, ours=None, others=None):
        pods_in = {pod for pod, prec in pods.items() if prec["netns"] in names}
        if set(server.threads.values()) & pods_in:
            stopped.append("the echo server")
            server.threads.clear()
        return []

    monkeypatch.setattr(kill, "stop_namespaces", stop_namespaces)
    return stopped


def test_the_stop_of_one_pod_waits_for_a_slow_server_to_drop_only_its_echo_container(monkeypatch, slow):
    lab = lab_of(("a", "n1"), ("b", "n2"), ("c", "n1"))
    server = slow({501: "a", 502: "b", 503: "c"})
    state = LabState(lab=LAB)
    pods = records(lab, {"a": 501, "b": 502, "c": 503})
    state.extra["workload"] = {"version": 1, "pods": pods}
    stopped = fake_kernel(monkeypatch, server, dict(pods))
    said = lifecycle.stop(state, [lab.pods[2].netns])  # pod c moves: its old namespace goes
    assert server.requests == [{"op": "remove", "ids": ["c/main"]}]
    assert stopped == [] and said == [], (stopped, said)
    assert server.threads == {501: "a", 502: "b"}  # the other pods' echo containers: the same threads
    assert sorted(state.extra["workload"]["pods"]) == ["a", "b"]


def test_a_stopped_server_goes_with_the_pod_and_the_stop_says_so(monkeypatch, slow):
    lab = lab_of(("a", "n1"), ("b", "n2"))
    server = slow({501: "a", 502: "b"})
    state = LabState(lab=LAB)
    pods = records(lab, {"a": 501, "b": 502})
    state.extra["workload"] = {"version": 1, "pods": pods}
    stopped = fake_kernel(monkeypatch, server, dict(pods))
    monkeypatch.setattr(proc, "proc_state", lambda pid: "T" if pid == os.getpid() else None)  # SIGSTOP
    said = lifecycle.stop(state, [lab.pods[1].netns])
    assert server.requests == []  # not asked: it would keep the run waiting for nothing
    assert stopped == ["the echo server"]
    assert said == [f"the lab's echo server (pid {os.getpid()}) is stopped (SIGSTOP): it goes with pod b, whose "
                    "namespace it is in, and every pod's echo container is started again in a new one"], said


def test_waiting_for_a_busy_server_outlasts_one_other_peers_request():
    from netlab.workload import echocontrol, echoserver

    assert launch.BUSY_WAIT >= echoserver.READY_WAIT + echocontrol.REQUEST_WAIT  # an add's work, once read


def answers(monkeypatch) -> list:
    """Each answer launch.ask got (None: none in time)."""
    got: list = []
    ask = launch.ask
    monkeypatch.setattr(launch, "ask", lambda *args, **kw: got.append(ask(*args, **kw)) or got[-1])
    return got


def test_removing_a_container_taken_out_of_a_pod_waits_out_a_busy_server(monkeypatch, slow):
    lab = lab_of(("a", "n1"), ("b", "n2"))
    server = slow({501: "a", 502: "b"})
    crec = records(lab, {"a": 501})["a"]["containers"]["main"]
    monkeypatch.setattr(stopping, "task_in", lambda crec, netns: "S")  # the kernel: the thread, in the pod
    monkeypatch.setattr(stopping, "is_echo_thread", lambda crec: True)
    monkeypatch.setattr(proc, "ns_identity", lambda path: (1, 2))
    got = answers(monkeypatch)
    stopping.stop_container(LAB, "a/main", crec, lab.pods[0].netns)
    assert server.requests == [{"op": "remove", "ids": ["a/main"]}]
    assert len(got) == 1 and got[0] is not None and got[0].removed == {"a/main"}, got


def test_a_rollbacks_removal_waits_out_a_busy_server_which_stays_with_the_other_pods(monkeypatch, slow):
    lab = lab_of(("a", "n1"), ("b", "n2"))
    server = slow({501: "a", 502: "b"})
    pods = records(lab, {"a": 501, "b": 502})
    stopped = fake_kernel(monkeypatch, server, pods)
    monkeypatch.setattr(again, "is_echo_thread", lambda crec: True)
    monkeypatch.setattr(again, "task_in", lambda crec, netns: "S")
    again.stop_made(LAB, pods, [lab.pods[1].netns])  # pod b's sandbox, made again by the run, goes
    assert server.requests == [{"op": "remove", "ids": ["b/main"]}]
    assert stopped == [] and server.threads == {501: "a"}


def test_an_add_waits_out_a_busy_server_instead_of_replacing_it_and_every_pods_echo_container(monkeypatch, slow):
    lab = lab_of(("a", "n1"), ("b", "n2"))
    server = slow({501: "a"})
    pods = records(lab, {"a": 501, "b": 0})
    del pods["b"]["containers"]["main"]["pid"]
    replaced: list[str] = []
    monkeypatch.setattr(launch, "stop_server", lambda name: replaced.append(name) or [])  # (its pid is ours)
    monkeypatch.setattr(kill, "terminate", lambda pids, still_ours, **kw: [])
    monkeypatch.setattr(echo_start, "is_echo_thread", lambda crec: True)
    monkeypatch.setattr(launch, "launch_echo", lambda *args: replaced.append("launched"))
    monkeypatch.setattr(launch, "await_echo", lambda launcher, specs, pods: [])
    (a, b), starting = lab.pods, {}
    problems = echo_start.start_echo(lab, pods, [(b, b.containers[0], "new")], [(a, a.containers[0])], starting)
    assert problems == [] and replaced == [], (problems, replaced)
    assert [(req["op"], [spec["id"] for spec in req["specs"]]) for req in server.requests] == [("add", ["b/main"])]
    assert pods["b"]["containers"]["main"]["pid"] == 900 and pods["a"]["containers"]["main"]["pid"] == 501
    assert starting == {} and server.threads == {501: "a", 900: "b"}


def test_a_server_whose_thread_stays_in_the_pod_that_goes_is_said(monkeypatch):
    """The server answered, but one echo container's thread did not leave the pod within its wait: the pod's
    namespace still holds it when `up` returns unless the server goes with the pod, which `up` says."""
    monkeypatch.setattr(launch, "server_pid", lambda name: 4321)
    monkeypatch.setattr(proc, "proc_state", lambda pid: "S")
    answer = launch.Answer(complete=True)
    answer.read("D b/main\nE b/web its thread is still in its pod")
    monkeypatch.setattr(launch, "ask", lambda *args, **kw: answer)
    (line,) = stopping.drop_echo(LAB, ["b/main", "b/web"])
    assert "echo server (pid 4321)" in line and "b/web" in line and "pod b" in line, line
    answer.errors.clear()
    assert stopping.drop_echo(LAB, ["b/main", "b/web"]) == []
