"""An interrupted probe and the lab's echo server (sweep.py: Sweeper.sweep_until_quiet, Sweeper._waiting)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys

from helpers import ip_json, ipv4_of, lab_namespaces, two_node_topology, wait_for
from netlab.kernel import netns as nsmod
from netlab.probe import sweep
from netlab.probe.sockets import NsSockets


def echo_server_of(lab: str) -> int:
    """The pid of the lab's echo server (one process serves every echo container of a lab)."""
    pids = []
    for p in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            argv = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"netlab.workload.echoserver" in argv and any(lab.encode() in a for a in argv):
            pids.append(int(p))
    assert len(pids) == 1, pids
    return pids[0]


# `netlab probe` whose agent tells, in the file named first, every sweep it makes (how many entries it deleted)
# and every look at the lab's servers' sockets (what they hold unanswered), each with the agent's clock; and
# whose grace (tasks.AGENT_GRACE, what the CLI gives an interrupted agent before its SIGKILL) is the second
# argument: long, so that a machine that runs the resumed echo server late cannot outlast it.
TOLD = """
import json, os, sys, time
REPORT = sys.argv.pop(1)
from netlab.probe import tasks
from netlab.probe.sweep import Sweeper
tasks.AGENT_GRACE = float(sys.argv.pop(1))
sweep, waiting = Sweeper.sweep, Sweeper._waiting
def tell(**what):
    fd = os.open(REPORT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (json.dumps({"t": time.monotonic(), **what}) + "\\n").encode())
    os.close(fd)
def told_sweep(self, *args, **kwargs):
    n = sweep(self, *args, **kwargs)
    tell(swept=n)
    return n
def told_waiting(self, *args, **kwargs):
    n = waiting(self, *args, **kwargs)
    tell(waiting=n)
    return n
Sweeper.sweep, Sweeper._waiting = told_sweep, told_waiting
sys.argv[0] = "netlab"
from netlab.launch import main
main()
"""


def told(report) -> list[dict]:
    return [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []


def past_the_old_quiet(events: list[dict]) -> bool:
    """The agent has come to where it stopped before it looked at the servers' sockets: a look at them twice QUIET
    after its clean-up began (its first sweep, then; its last loop began 0.1 s after that sweep, and ended QUIET
    later) with the servers still holding requests (which is why it goes on: it lets them land before it sweeps)."""
    return bool(events) and any(e.get("waiting", 0) > 0 and e["t"] - events[0]["t"] >= 2 * sweep.QUIET
                                for e in events)


class EveryPort:
    def __contains__(self, port: object) -> bool:
        return True


def unanswered(pods: list[NsSockets]) -> int:
    """What the servers of the lab's pods hold unanswered on any port (the kernel's count: NsSockets.waiting)."""
    return sum(p.waiting(EveryPort()) for p in pods)


def _sleep_place(task: str) -> tuple[str, str]:
    """Where the task sleeps as the kernel shows it: its wait channel (a function's name where the kernel has
    kallsyms, "0" where not) and the number of the system call it is in (this machine's)."""
    wchan = open(f"{task}/wchan").read()
    nr = open(f"{task}/syscall").read().split()[0]
    return wchan, nr


_EPOLL: list[tuple[str, str]] = []


def epoll_sleep() -> tuple[str, str]:
    """Where a Python thread asleep in epoll sleeps on this machine, learnt from one: the wait channel's name and
    the syscall's number differ by kernel build and architecture (do_epoll_wait and 232 on x86_64 here)."""
    if not _EPOLL:
        proc = subprocess.Popen([sys.executable, "-c", "import select; select.epoll().poll()"])
        try:
            task = f"/proc/{proc.pid}/task/{proc.pid}"
            assert wait_for(lambda: re.search(r"(?m)^State:\s+S", open(f"{task}/status").read()) is not None
                            and _sleep_place(task)[1] != "running", timeout=10)
            _EPOLL.append(_sleep_place(task))
        finally:
            proc.kill()
            proc.wait()
    return _EPOLL[0]


def loop_asleep(pid: int) -> tuple[bool, int]:
    """Whether the server's loop (its main thread) sleeps in epoll_wait, and how often it has been switched out."""
    task = f"/proc/{pid}/task/{pid}"
    status = open(f"{task}/status").read()
    switches = sum(int(n) for n in re.findall(r"(?m)^(?:non)?voluntary_ctxt_switches:\s+(\d+)$", status))
    return re.search(r"(?m)^State:\s+S", status) is not None and _sleep_place(task) == epoll_sleep(), switches


def server_done(pid: int, pods: list[NsSockets]) -> bool:
    """The echo server has answered all it was sent: its loop sleeps in epoll_wait before and after a look that
    finds nothing unanswered in the pods' sockets, and did not run in between (no switch): a request it had read
    and not answered yet would have it running, or asleep elsewhere."""
    asleep, before = loop_asleep(pid)
    if not asleep or unanswered(pods):
        return False
    return loop_asleep(pid) == (True, before)


def test_ctrl_c_leaves_no_entry_of_an_answer_the_echo_server_sends_late(labs, tmp_path):
    """A loaded machine runs the lab's echo server late: its answers to an interrupted probe's requests went after
    the agent's last sweep, each resolving its client again, and left a pair of entries per answer in the pods
    (seen in CI: [('LAB-p11', '10.244.1.12', 'eth0'), ('LAB-p21', '10.244.1.7', 'eth0')]). The agent swept until
    nothing new came for QUIET, which a server run late outlasts. Now it also sweeps while the servers' sockets
    hold requests not read (the kernel's Recv-Q), within its grace. The server here is stopped (SIGSTOP) from
    before the probe until the agent, interrupted, has passed the point where it used to stop (its own report
    says so); then it answers, and once it has answered everything (its sockets empty, its loop asleep) and every
    resolution those answers began has ended, no entry of the run is left."""
    lab = labs.name("qe")
    labs.up(two_node_topology(lab, pods_per_node=3))
    namespaces = lab_namespaces(lab)
    home = nsmod.current_fd()
    pods = [NsSockets(ns, i, home, probing=False) for i, ns in enumerate(namespaces) if "-fedora-" in ns]
    report = tmp_path / "agent.jsonl"

    def entries() -> set[tuple[str, str, str, str]]:
        return {(ns, n["dst"], n.get("dev", ""), (n.get("state") or [""])[0]) for ns in namespaces
                for n in ip_json("neigh", netns=ns)}

    before = {e[:3] for e in entries()}
    echo = echo_server_of(lab)

    def as_a_terminal_starts_it() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])

    os.kill(echo, signal.SIGSTOP)
    proc = None
    try:
        proc = subprocess.Popen([sys.executable, "-c", TOLD, str(report), "60", "probe", "--lab", lab, "--arp",
                                 "real"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=as_a_terminal_starts_it)
        assert wait_for(lambda: {e[:3] for e in entries()} - before, timeout=60, step=0.01), "no entry made"
        assert wait_for(lambda: unanswered(pods) > 0, timeout=60, step=0.01), "no request waits in the server"
        proc.send_signal(signal.SIGINT)
        assert wait_for(lambda: proc.poll() is not None or past_the_old_quiet(told(report)), timeout=60, step=0.01)
        waited = proc.poll() is None  # the agent went on past its old quiet, for the stopped server's requests
        os.kill(echo, signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
        # Everything the server was sent is answered, and every resolution an answer began has ended (an entry
        # INCOMPLETE in the server's pod: its client's pod has made its own entry once it is answered).
        assert wait_for(lambda: server_done(echo, pods), timeout=60), unanswered(pods)
        assert wait_for(lambda: not any(e[3] == "INCOMPLETE" for e in entries()), timeout=60)
    finally:
        os.kill(echo, signal.SIGCONT)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in pods:
            p.close()
        os.close(home)
    assert proc.returncode == 130, (out, err)
    made = sorted(e for e in entries() if e[:3] not in before)
    assert not made, f"{len(made)} entries the interrupted probe's answers made are left: {made[:10]}"
    events = told(report)
    assert waited, f"the agent stopped while the stopped server held requests: {events}"
    assert [e["waiting"] for e in events if "waiting" in e][-1] == 0, events  # it ended once all was answered


def test_a_servers_accepted_connection_counts_until_its_answer_and_fin_are_acknowledged(labs):
    """The lab's echo server may have accepted an interrupted probe's connection and not answered it yet: the
    request read or not, the answer and the FIN still to come, each resolving the client's address again after
    the agent's sweeps (CI: LAB-p6 REACHABLE to LAB-p12, LAB-p12 STALE to LAB-p6). The agent's wait counted only
    what listeners and UDP sockets held. Now an accepted connection with more to send counts too, until its
    answer and FIN are acknowledged. Real sockets in two pods of a lab; the count is the kernel's (sock_diag)."""
    lab = labs.name("qa")
    labs.up(f"name: {lab}\nnodes:\n  - {{name: n1}}\npods:\n  - {{name: a, node: n1}}\n  - {{name: b, node: n1}}\n")
    port = 4321
    home = nsmod.current_fd()
    server_side, client_side = NsSockets(f"{lab}-a", 0, home, probing=False), nsmod.Held(f"{lab}-b", home)
    try:
        with server_side.held:
            listener = socket.create_server(("0.0.0.0", port))
        with client_side:
            client = socket.create_connection((ipv4_of(f"{lab}-a", "eth0"), port), timeout=5)
        with listener, client:
            # a connection not accepted: in the listener's queue, and a connection of its own already
            assert wait_for(lambda: server_side.waiting({port}) == 2)
            conn, _ = listener.accept()
            with conn:
                assert server_side.waiting({port}) == 1  # accepted: the answer is still to come
                assert server_side.waiting({port + 1}) == 0  # another port's servers hold nothing
                client.sendall(b"hello")
                assert wait_for(lambda: server_side.waiting({port}) == 1 + 5)  # and the request not read yet
                assert conn.recv(5) == b"hello"
                assert server_side.waiting({port}) == 1  # read, not answered
                conn.sendall(b"hello")
                conn.shutdown(socket.SHUT_WR)  # the echo server's answer, then its FIN
                assert client.recv(5) == b"hello"
                # acknowledged: the server's side waits in FIN-WAIT-2 for the client, with nothing more to send
                assert wait_for(lambda: server_side.waiting({port}) == 0)
    finally:
        server_side.close()
        client_side.close()
        os.close(home)
