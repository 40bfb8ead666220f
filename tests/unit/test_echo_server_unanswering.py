"""The lab's echo server that is slow, stopped or does not answer (workload/echo_start.start_echo,
lifecycle.stop through stopping.drop_echo), without root: a fake server and a fake kernel.

One process serves every echo container of a lab, each from a thread in its pod's namespaces. A plain `up` that
replaced a server that did not answer looked for the other pods' threads only once it had killed it (a thread id of
a gone process names nothing): they were not started again, and `status` said they had exited after an `up` that
exited 0.
"""

from __future__ import annotations


from netlab.kernel import kill
from netlab.kernel import processes as proc
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize import state_dir
from netlab.workload import echo_start, launch
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
    monkeypatch.setattr(echo_start, "new_run", lambda lab, pod, c: None)
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
