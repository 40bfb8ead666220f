"""One echo loop for many pods: each listening socket answers with its own pod's name, logs to its own
container's log, and goes alone when dropped (sockets made in-process on 127.0.0.1; no root)."""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest

from helpers import read_log
from netlab.workload import launch
from netlab.workload.echo import EchoLoop, Log, Served, listen, listening_line
from netlab.workload.echoserver import EchoServer


class Running:
    """An EchoLoop turned by a thread of the test; ``call`` runs a function between two rounds."""

    def __init__(self, loop: EchoLoop):
        self.loop = loop
        self.stop = threading.Event()
        self.calls: list = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.loop.run_once(0.02)
            while self.calls:
                fn, done = self.calls.pop(0)
                fn()
                done.set()

    def call(self, fn) -> None:
        done = threading.Event()
        self.calls.append((fn, done))
        assert done.wait(5)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def pods(tmp_path):
    """Two pods' echo containers in one loop, each on its own TCP and UDP port of 127.0.0.1."""
    loop = EchoLoop()
    out = {}
    for pod in ("fedora-1", "fedora-2"):
        socks = listen([(0, "TCP"), (0, "UDP")], address="127.0.0.1")
        log = Log.open(str(tmp_path / f"{pod}.main.log"))
        loop.serve(Served(f"{pod}/main", pod, log), socks)
        out[pod] = {s.type: s.getsockname()[1] for s in socks}
    running = Running(loop)
    yield running, out, tmp_path
    running.close()
    for key in list(loop.listening):
        loop.drop(key)


def tcp(port: int, send: bytes | None = b"netlab probe 1\n") -> tuple[dict, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        if send is not None:
            s.sendall(send)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        return json.loads(data.decode().splitlines()[-1]), "{}:{}".format(*s.getsockname())


def udp(port: int) -> tuple[dict, str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.connect(("127.0.0.1", port))
        s.send(b"hello")
        return json.loads(s.recv(500)), "{}:{}".format(*s.getsockname())


def test_each_pods_sockets_answer_with_that_pods_name_and_the_client_as_seen(pods):
    _running, ports, _ = pods
    for pod, p in ports.items():
        got, me = tcp(p[socket.SOCK_STREAM])
        assert got == {"pod": pod, "client": me, "server": f"127.0.0.1:{p[socket.SOCK_STREAM]}"}
        got, me = udp(p[socket.SOCK_DGRAM])
        assert got == {"pod": pod, "client": me, "server": f"127.0.0.1:{p[socket.SOCK_DGRAM]}"}


def test_http_and_a_silent_client_get_the_same_line(pods):
    _running, ports, _ = pods
    port = ports["fedora-2"][socket.SOCK_STREAM]
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and json.loads(body)["pod"] == "fedora-2"
    got, _ = tcp(port, send=None)  # says nothing: answered after GREETING_WAIT
    assert got["pod"] == "fedora-2"


def test_each_request_is_logged_in_its_own_containers_log(pods):
    running, ports, tmp = pods
    tcp(ports["fedora-1"][socket.SOCK_STREAM])
    udp(ports["fedora-1"][socket.SOCK_DGRAM])
    running.call(lambda: None)  # one more round: the logs are written at the end of each
    one = (tmp / "fedora-1.main.log").read_text().splitlines()
    assert [line.split()[1] for line in one] == ["tcp", "udp"]
    assert (tmp / "fedora-2.main.log").read_text() == ""


def test_dropping_one_pod_closes_its_ports_and_connections_and_leaves_the_other(pods):
    running, ports, _ = pods
    # A connection of fedora-1 that is still open (answered, draining) when it is dropped.
    held = socket.create_connection(("127.0.0.1", ports["fedora-1"][socket.SOCK_STREAM]), timeout=3)
    held.sendall(b"netlab probe 2\n")
    assert json.loads(held.makefile().readline())["pod"] == "fedora-1"
    running.call(lambda: running.loop.drop("fedora-1/main"))
    assert held.recv(100) == b""  # closed by the server
    held.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ports["fedora-1"][socket.SOCK_STREAM]), timeout=3)
    assert tcp(ports["fedora-2"][socket.SOCK_STREAM])[0]["pod"] == "fedora-2"
    assert set(running.loop.listening) == {"fedora-2/main"}


def test_the_listening_line_names_every_port():
    assert listening_line("duo", [(9000, "UDP"), (9053, "UDP")]) == "echo server for pod duo listening on 9000/UDP, 9053/UDP"


def test_listen_is_all_or_nothing():
    taken = listen([(0, "TCP")], address="127.0.0.1")[0]
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OSError):
            listen([(0, "UDP"), (port, "TCP")], address="127.0.0.1")
    finally:
        taken.close()


def test_a_container_whose_pod_cannot_be_entered_is_reported_and_not_served(tmp_path):
    """The server's add(): a namespace that does not exist is an error line for that container only."""
    server = EchoServer(EchoLoop())
    spec = {"id": "ghost/main", "pod": "ghost", "netns": "netlab-unit-no-such-ns", "uts": None,
            "log": str(tmp_path / "ghost.main.log"), "ports": [[8080, "TCP"]]}
    (line,) = list(server.add([spec]))
    assert line.startswith("E ghost/main ") and "No such file" in line
    assert server.threads == {} and "cannot listen" in (tmp_path / "ghost.main.log").read_text()


def test_the_servers_answer_is_recorded_per_container():
    answer = launch.Answer()
    answer.read("P - 41\nR a/main 42 1000\nE b/main Address already in use\nS 41\n")
    assert answer.server == 41 and answer.complete
    pods = {"a": {"containers": {"main": {"error": "old"}}}, "b": {"containers": {"main": {"pid": 7, "start": 1}}},
            "c": {"containers": {"main": {}}}}
    specs = [{"id": "a/main"}, {"id": "b/main"}, {"id": "c/main"}]
    problems = launch.record(answer, specs, pods)
    assert pods["a"]["containers"]["main"] == {"pid": 42, "start": 1000}
    assert pods["b"]["containers"]["main"] == {"error": "Address already in use"}
    assert "no answer from the echo server" in pods["c"]["containers"]["main"]["error"]
    assert [p.split(":")[0] for p in problems] == ["pod b container main", "pod c container main"]


def test_a_control_answer_without_its_last_line_is_no_answer():
    cut = launch.Answer()
    cut.read("R a/main 42 1000\n")
    assert not cut.complete
    whole = launch.Answer()
    whole.read("D a/main\nOK\n")
    assert whole.complete and whole.removed == {"a/main"}


def test_a_log_starts_over_at_its_limit_as_the_kubelet_rotates_and_a_pipe_is_left_alone(tmp_path, monkeypatch):
    """Every connection is logged: without a limit a probed lab's logs grew without end, in /run (memory)."""
    from netlab.workload import echo_log

    monkeypatch.setattr(echo_log, "LOG_MAX", 400)
    path = tmp_path / "web.main.log"
    log = Log.open(str(path))
    for i in range(30):
        log.write(f"tcp 10.244.0.3:{40000 + i} -> 10.244.0.2:8080")  # 40 bytes a line
        log.flush()
        assert path.stat().st_size <= 400 + 200, i  # the limit, and at most the notice and one round over it
    text = path.read_text()
    assert "netlab: this log reached 0 MiB and starts over" in text.splitlines()[0]
    assert text.splitlines()[-1].endswith(":40029 -> 10.244.0.2:8080")  # the newest lines are kept
    assert ":40000 -> " not in text  # the oldest are gone
    log.close()
    # Appended by another writer in between (a restart appends to the same file): the size is the file's.
    again = Log.open(str(path))
    assert again.size == path.stat().st_size
    again.close()
    read, write = os.pipe()
    piped = Log(write, own=False)
    assert piped.size is None  # a pipe (the standalone server's stdout) is never truncated
    piped.write("x" * 500)
    piped.flush()
    assert len(os.read(read, 1000)) == 501
    os.close(read)
    os.close(write)


def test_a_held_command_containers_log_starts_over_at_its_limit_and_only_a_log_of_the_lab_is_touched(
        tmp_path, monkeypatch):
    """A command container writes its log itself (a cluster DNS that logs every query, a chatty user command):
    the lab's server, which holds its pidfd, starts it over past LOG_MAX as it does its own containers' logs,
    the container's next lines landing at the start. It takes only a `<pod>.<container>.log` name in the lab's
    log folder, and follows no symbolic link."""
    from netlab.kernel import processes as proc
    from netlab.workload import echo_log

    monkeypatch.setattr(echo_log, "LOG_MAX", 2**20)  # whole blocks are cut: a 64 KiB page too
    logs = tmp_path / "logs"
    logs.mkdir()
    outside = tmp_path / "precious.log"
    outside.write_text("y" * (2**20 + 1000))
    (logs / "link.main.log").symlink_to(outside)
    writer = os.open(logs / "dns.main.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # as up opens it for dnsmasq
    os.write(writer, b"".join(b"query %06d\n" % i for i in range(100000)))  # 1.3 MB, 13 bytes a line
    server = EchoServer(EchoLoop(), str(logs))
    me = {"pid": os.getpid(), "start": proc.start_time(os.getpid())}
    names = ["dns.main.log", "link.main.log", "../precious.log", "a/b.c.log", "bad"]
    items = [dict(me, id=f"p{i}/main", log=name) for i, name in enumerate(names)]
    assert list(server.hold(items, [os.pidfd_open(os.getpid()) for _ in items])) == [f"K {i['id']}" for i in items]
    assert sorted(server.held_logs.values()) == [str(logs / "dns.main.log"), str(logs / "link.main.log")]
    server.keep_logs()
    os.write(writer, b"after\n")  # the container's next write: at the new end
    lines = read_log(logs / "dns.main.log").splitlines()
    assert lines[0].rstrip().endswith("netlab: this log reached 1 MiB and starts over with its newest 0 MiB, as "
                                      "the kubelet rotates a container's log at containerLogMaxSize")
    first = int(lines[1].split()[1])  # its newest tenth (13 bytes a line), from a whole line
    assert lines[1:] == [f"query {i:06d}" for i in range(first, 100000)] + ["after"]
    assert 2**20 // 10 - 200 <= len(lines[1:]) * 13 < 2**20 // 10 + 2**16 + 200
    assert outside.read_text() == "y" * (2**20 + 1000)  # the link was not followed
    text = (logs / "dns.main.log").read_bytes()
    server.keep_logs()
    assert (logs / "dns.main.log").read_bytes() == text  # under the limit: left as it is
    for cid in [i["id"] for i in items]:
        server.drop(cid)
    assert not server.held and not server.held_logs
    os.close(writer)


def test_an_echo_container_the_server_stopped_is_told_exited_as_by_sigterm(tmp_path):
    """`netlab break endpoint-pod-down` stops an echo container: a thread of the lab's one server, no process of
    its own, so no exit status anywhere; `get pods` said ContainerStatusUnknown. The server knows it stopped
    serving it: `exits` tells it as a container the kubelet stops, killed by SIGTERM (143), for the very thread
    recorded (its tid and start), until the container is served again."""
    import signal
    import types

    from netlab.kernel.taskstats import exit_status

    server = EchoServer(EchoLoop())
    thread = types.SimpleNamespace(tid=4242, ticks=777, release=threading.Event(), left=threading.Event())
    thread.left.set()  # it has left the pod's namespaces
    server.threads["web/main"] = thread
    server.logs["web/main"] = Log.open(str(tmp_path / "web.main.log"))
    assert list(server.exits(["web/main"])) == []  # it runs
    assert server.remove("web/main") and thread.release.is_set()
    (line,) = list(server.exits(["web/main", "other/main"]))
    _x, cid, tid, start, status = line.split()
    assert (cid, tid, start) == ("web/main", "4242", "777") and int(status) == signal.SIGTERM
    assert exit_status(int(status)) == 143
    # served again (up restarts it): how the run before ended is not the new run's
    spec = {"id": "web/main", "pod": "web", "netns": "netlab-unit-no-such-ns", "uts": None,
            "log": str(tmp_path / "web.main.log"), "ports": [[8080, "TCP"]]}
    list(server.add([spec]))
    assert list(server.exits(["web/main"])) == []


def test_a_command_containers_log_keeps_its_newest_lines_and_an_exited_ones_is_left_alone(tmp_path, monkeypatch):
    """QA q51 1: past the cap the log was emptied, every 10 s, the newest lines with it, even the log of a container
    that had exited (a crashed app's last "FATAL" line gone). As the kubelet rotates only a running container's
    log, and keeps its newest output, the server starts over a running one's with its newest lines (a tenth of the
    cap) and leaves an exited one's as it is."""
    import subprocess

    from netlab.kernel import processes as proc
    from netlab.workload import echo_log

    monkeypatch.setattr(echo_log, "LOG_MAX", 2**20)
    logs = tmp_path / "logs"
    logs.mkdir()
    body = b"".join(b"request %06d ok\n" % i for i in range(70000))  # 1.2 MB, 18 bytes a line
    for name in ("run.main.log", "dead.main.log"):
        (logs / name).write_bytes(body + b"FATAL: database connection lost\n")
    dead = subprocess.Popen(["true"])
    dead_fd = os.pidfd_open(dead.pid)
    dead_start = proc.start_time(dead.pid)
    dead.wait()
    server = EchoServer(EchoLoop(), str(logs))
    me = {"id": "run/main", "pid": os.getpid(), "start": proc.start_time(os.getpid()), "log": "run.main.log"}
    gone = {"id": "dead/main", "pid": dead.pid, "start": dead_start, "log": "dead.main.log"}
    assert list(server.hold([me, gone], [os.pidfd_open(os.getpid()), dead_fd])) == ["K run/main", "K dead/main"]
    assert server.runs("run/main") and not server.runs("dead/main")
    server.keep_logs()
    assert (logs / "dead.main.log").read_bytes() == body + b"FATAL: database connection lost\n"  # left alone
    lines = read_log(logs / "run.main.log").splitlines()
    assert "starts over with its newest" in lines[0]
    first = int(lines[1].split()[1])
    assert lines[1:] == [f"request {i:06d} ok" for i in range(first, 70000)] + ["FATAL: database connection lost"]
    for cid in ("run/main", "dead/main"):
        server.drop(cid)


def test_an_echo_container_whose_thread_does_not_leave_its_pod_is_not_said_removed(tmp_path, monkeypatch):
    """The server drops a container by closing its sockets and letting its thread go back to the server's own
    namespaces; it waited for that (READY_WAIT) and then said it removed (D) regardless. `up` took that for the
    thread gone from the pod whose namespace goes, and said the pod's containers stopped while the thread was
    still in the pod's network namespace (a flake on a machine 99% busy). A thread still in its pod is said so."""
    import types

    from netlab.workload import echocontrol, echoserver

    monkeypatch.setattr(echoserver, "READY_WAIT", 0.01)  # the real 5 s, scaled down: the thread never leaves
    server = EchoServer(EchoLoop())
    for cid, left in (("web/main", True), ("db/main", False)):
        thread = types.SimpleNamespace(tid=4242, ticks=777, release=threading.Event(), left=threading.Event())
        if left:
            thread.left.set()
        server.threads[cid] = thread
        server.logs[cid] = Log.open(str(tmp_path / f"{cid.replace('/', '.')}.log"))
    assert echocontrol.removed(server, "web/main") == "D web/main"
    line = echocontrol.removed(server, "db/main")
    assert line is not None and line.startswith("E db/main ") and "still in its pod" in line, line
    assert echocontrol.removed(server, "gone/main") is None  # not served: nothing to say


def test_a_container_and_a_check_whose_listening_socket_was_destroyed_are_no_longer_served(tmp_path):
    """QA: `ss -K` on a listening socket of the server (10256 on a node, a pod's 8080) left curl refused while
    status said all as planned: the server went on counting them served. The loop lists the key lost (its socket
    destroyed: tests/integration/test_echo_socket_destroyed.py); the server then stops serving it: the container
    is told exited with code 1 and the check is no longer among those served, and the server stays to say so until
    they are served again or removed."""
    import types

    from netlab.kernel.taskstats import exit_status
    from netlab.workload import healthserve

    server = EchoServer(EchoLoop())
    thread = types.SimpleNamespace(tid=4242, ticks=777, release=threading.Event(), left=threading.Event())
    thread.left.set()
    server.threads["web/main"] = thread
    server.logs["web/main"] = Log.open(str(tmp_path / "web.main.log"))
    check = Served("healthz/n1", "n1", None, (200, b"{}"), proxy=True)
    server.health["healthz/n1"] = (("netlab-unit-no-such-ns", 10256, None), check)
    server.loop.lost = ["web/main", "healthz/n1"]
    server.forget_lost()
    assert server.loop.lost == [] and "web/main" not in server.threads and server.health == {}
    (line,) = list(server.exits(["web/main"]))
    assert exit_status(int(line.split()[4])) == 1
    assert list(healthserve.served(server)) == []
    assert "a listening socket was destroyed" in read_log(str(tmp_path / "web.main.log"))
    assert server.lost == {"web/main"} and server.lost_checks == {"healthz/n1"}  # it stays to tell status
    list(healthserve.sync(server, []))  # up hands the whole set: the lost one is listened for anew, or gone
    assert server.lost_checks == set()
    server.remove("web/main")  # its pod removed
    assert server.lost == set()
