"""Workloads (issue 3): containers in pods, exec, logs, the echo server, and no process surviving down."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from helpers import (as_planned_here, lab_namespaces, netlab, read_log, state_path, two_node_topology, up_here,
                     wait_for)
from netlab.errors import netlab_command
from netlab.kernel.processes import running, thread_group
from netlab.realize import state_dir
from netlab.workload.containers import log_path

pytestmark = pytest.mark.root

PY = sys.executable  # an absolute interpreter the containers can exec

# Container A: asks container B (same pod) on localhost:9000 twice a second, logs each answer.
CLIENT = ("import socket, time\n"
          "print('hostname', socket.gethostname(), flush=True)\n"
          "while True:\n"
          "    try:\n"
          "        s = socket.create_connection(('127.0.0.1', 9000), timeout=1)\n"
          "        s.send(b'hello\\n')\n"
          "        print(s.recv(300).decode().strip(), flush=True)\n"
          "    except OSError as exc:\n"
          "        print('error', exc, flush=True)\n"
          "    time.sleep(0.3)\n")


def duo_topology(lab: str) -> str:
    return two_node_topology(lab, pods_per_node=1) + f"""  - name: duo
    node: minikube
    ip: 10.244.0.9
    containers:
      - name: a
        command: [{json.dumps(PY)}, "-c", {json.dumps(CLIENT)}]
      - name: b
        ports: [{{containerPort: 9000}}, {{containerPort: 9053, protocol: UDP}}]
"""


def state(lab: str) -> dict:
    with open(state_path(lab, "state.json")) as fh:
        return json.load(fh)["extra"]["workload"]["pods"]


def pid_of(lab: str, pod: str, container: str) -> int:
    return int(state(lab)[pod]["containers"][container]["pid"])


def in_lab(lab: str) -> list[int]:
    """Pids of processes with a thread in one of the lab's network namespaces (by identity, as down finds
    them: the lab's echo server is one process whose threads sit in the pods)."""
    want = set()
    for ns in lab_namespaces(lab):
        st = os.stat(f"/run/netns/{ns}")
        want.add((st.st_dev, st.st_ino))
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                tids = os.listdir(f"/proc/{name}/task")
            except OSError:
                continue
            for tid in tids:
                try:
                    st = os.stat(f"/proc/{name}/task/{tid}/ns/net")
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) in want and running(int(name)):
                    out.append(int(name))
                    break
    return sorted(out)




def echo_request(lab: str, name: str, dst: str, port: int = 8080, proto: str = "tcp") -> dict:
    """Connect from pod/node NAME (via netlab exec) and return the echo server's JSON reply."""
    code = ("import socket, sys, json\n"
            f"s = socket.socket(socket.AF_INET, socket.SOCK_{'STREAM' if proto == 'tcp' else 'DGRAM'})\n"
            "s.settimeout(2)\n"
            f"s.connect(({dst!r}, {port}))\n"
            + ("" if proto == "tcp" else "s.send(b'hi')\n")
            + "print(json.dumps([s.getsockname(), s.recv(300).decode()]))\n")
    out = netlab("exec", "--lab", lab, name, "--", PY, "-c", code).stdout
    local, reply = json.loads(out)
    return dict(json.loads(reply), local=f"{local[0]}:{local[1]}")


def test_exec_joins_the_pod_namespaces_and_passes_the_exit_code(labs, tmp_path):
    lab = labs.name("wl")
    path = labs.up_here(two_node_topology(lab, pods_per_node=1))
    assert netlab("exec", "--lab", lab, "fedora-1", "--", "hostname").stdout.strip() == "fedora-1"
    # -t after NAME picks the lab over $NETLAB_LAB, as it does before NAME
    moved = netlab("exec", "fedora-1", "-t", path, "--", "hostname", env={"NETLAB_LAB": "nosuchlab"})
    assert moved.stdout.strip() == "fedora-1"
    assert netlab("exec", "--lab", lab, "fedora-2", "--", "hostname").stdout.strip() == "fedora-2"
    proc = netlab("exec", "--lab", lab, "fedora-1", "--", "sh", "-c", "exit 7", check=False)
    assert proc.returncode == 7
    out = netlab("exec", "--lab", lab, "fedora-1", "--", "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert "10.244.0.2/24" in out
    # A node: its network namespace.
    assert "cni0" in netlab("exec", "--lab", lab, "minikube", "--", "ip", "-o", "link").stdout
    proc = netlab("exec", "--lab", lab, "nosuch", "--", "true", check=False)
    assert proc.returncode == 2 and "no pod, node or host 'nosuch'" in proc.stderr
    proc = netlab("exec", "--lab", lab, "fedora-1", "--", "no-such-command", check=False)
    assert proc.returncode == 127
    # What the kernel will not execute is said in one line, exit 126 as a shell's: a file that is no program
    # (ENOEXEC), a symlink loop; an empty command is refused before anything runs.
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF not really")
    junk.chmod(0o755)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for program, why in ((str(junk), "Exec format error"), (str(tmp_path / "loop"), "Too many levels")):
        proc = netlab("exec", "--lab", lab, "fedora-1", "--", program, check=False)
        assert proc.returncode == 126 and proc.stderr.count("\n") == 1, proc.stderr
        assert f"{program}: cannot execute: {why}" in proc.stderr, proc.stderr
    proc = netlab("exec", "--lab", lab, "fedora-1", "--", "", check=False)
    assert proc.returncode == 2 and "the command is empty" in proc.stderr and "Traceback" not in proc.stderr
    # The default container is the echo server; its log says so.
    assert "listening on 8080/TCP" in netlab("logs", "--lab", lab, "fedora-1").stdout
    # Something else where the log is written is said in one line, never read nor waited for: a directory was
    # a traceback, a FIFO a wait for ever.
    log = log_path(lab, "fedora-1", "main")
    os.rename(log, log + ".kept")
    try:
        for make in (os.mkfifo, os.mkdir):
            make(log)
            proc = netlab("logs", "--lab", lab, "fedora-1", check=False, timeout=30)
            assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc.stderr  # the environment's
            assert f"the log of fedora-1/main, {log}, was replaced while the container runs" in proc.stderr
            if make is os.mkfifo:
                os.unlink(log)
        # The directory stays: down takes the lab down all the same (it was a traceback, the lab left up).
        down = netlab("down", "--lab", lab, check=False)
        assert down.returncode == 0 and "Traceback" not in down.stderr, down.stderr
        assert lab_namespaces(lab) == []
    finally:
        if os.path.lexists(log + ".kept") and not os.path.isdir(log):
            os.rename(log + ".kept", log)


def test_echo_reply_names_the_pod_and_the_client_as_seen(labs):
    lab = labs.name("wl")
    labs.up_here(two_node_topology(lab, pods_per_node=1))
    # fedora-1 -> fedora-2 across nodes: the reply names fedora-2 and fedora-1's own pod IP.
    r = echo_request(lab, "fedora-1", "10.244.1.3")
    assert r["pod"] == "fedora-2"
    assert r["client"] == r["local"] and r["client"].startswith("10.244.0.2:")
    assert r["server"] == "10.244.1.3:8080"
    # From a node: the node's own address on the path (cni0 for its own pod, flannel.1's across nodes).
    r = echo_request(lab, "minikube", "10.244.0.2")
    assert r["pod"] == "fedora-1" and r["client"].startswith("10.244.0.1:")
    r = echo_request(lab, "minikube", "10.244.1.3")
    assert r["pod"] == "fedora-2" and r["client"].startswith("10.244.0.0:") and r["client"] == r["local"]


def test_two_container_pod_shares_network_and_hostname(labs):
    lab = labs.name("wl")
    labs.up_here(duo_topology(lab))
    log_a = lambda: netlab("logs", "--lab", lab, "duo", "-c", "a").stdout  # noqa: E731
    assert wait_for(lambda: '"pod": "duo"' in read_log(log_path(lab, "duo", "a"))), log_a()  # the file logs reads
    lines = log_a().splitlines()
    assert lines[0] == "hostname duo"
    reply = json.loads(next(line for line in lines if line.startswith("{")))
    assert reply["client"].startswith("127.0.0.1:") and reply["server"] == "127.0.0.1:9000"
    # Both containers see the pod's name: they share one UTS namespace, which netlab exec joins too.
    a, b = pid_of(lab, "duo", "a"), pid_of(lab, "duo", "b")
    assert os.stat(f"/proc/{a}/ns/uts").st_ino == os.stat(f"/proc/{b}/ns/uts").st_ino
    assert os.stat(f"/proc/{a}/ns/net").st_ino == os.stat(f"/proc/{b}/ns/net").st_ino
    host_b = subprocess.run(["nsenter", "-t", str(b), "-u", "hostname"], capture_output=True, text=True).stdout
    assert host_b.strip() == "duo"
    # B serves UDP too, answering from the address the datagram was sent to.
    r = echo_request(lab, "fedora-1", "10.244.0.9", 9053, "udp")
    assert r["pod"] == "duo" and r["client"] == r["local"] and r["server"] == "10.244.0.9:9053"

    # Killing container A leaves the pod's namespaces and container B running.
    os.kill(a, signal.SIGKILL)
    assert wait_for(lambda: not running(a))
    assert running(b) and f"{lab}-duo" in lab_namespaces(lab)
    assert netlab("exec", "--lab", lab, "duo", "--", "hostname").stdout.strip() == "duo"
    assert echo_request(lab, "duo", "127.0.0.1", 9000)["pod"] == "duo"
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "pod duo container a exited" in status.stdout
    # up again restarts A, and only A.
    netlab("up", "-t", str(labs.tmp_path / "topo.yaml"))
    assert pid_of(lab, "duo", "b") == b and pid_of(lab, "duo", "a") != a
    assert state(lab)["duo"]["containers"]["a"]["restarts"] == 1
    assert as_planned_here(lab)
    # A changed command is a new container, as a new pod's in Kubernetes (a pod's commands cannot change):
    # its restarts count from 0 again, and B, unchanged, is left running.
    topo = labs.tmp_path / "topo.yaml"
    topo.write_text(topo.read_text().replace('"-c", ', '"-u", "-c", '))
    out = netlab("up", "-t", str(topo)).stdout
    assert "restarted container duo/a (its command changed)" in out, out
    assert state(lab)["duo"]["containers"]["a"]["restarts"] == 0 and pid_of(lab, "duo", "b") == b
    assert "-u" in state(lab)["duo"]["containers"]["a"]["argv"]


def test_a_pods_namespace_deleted_by_hand_gets_its_containers_anew_and_the_old_ones_stop(labs):
    """The pod's sandbox died (its network namespace deleted under running containers): up makes the
    namespace again and restarts the pod's containers in it, and the command container left running in
    the old, nameless namespace is stopped, as the kubelet kills a dead sandbox's containers."""
    lab = labs.name("wl")
    path = labs.up_here(duo_topology(lab))
    a = pid_of(lab, "duo", "a")
    old_net = os.stat(f"/proc/{a}/ns/net").st_ino
    subprocess.run(["ip", "netns", "del", f"{lab}-duo"], check=True)
    assert running(a)  # the container holds the old namespace: it lives on, nameless
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1
    # the repair named is the lab's own `up -t FILE` (realize.state.repair_up), the one run next
    assert (f"pod duo container a runs on in the pod's old, deleted network namespace (pid {a}); "
            f"`{netlab_command(f'up -t {shlex.quote(path)}')}` stops it and starts it in the pod's new one"
            ) in status.stdout, status.stdout
    out = netlab("up", "-t", path, "-o", "json")
    actions = json.loads(out.stdout)["fixed"]
    assert "restarted container duo/a (its pod's network namespace was made again)" in actions, actions
    assert wait_for(lambda: not running(a)), "the old container a still runs in the old namespace"
    new_a = pid_of(lab, "duo", "a")
    assert new_a != a and running(new_a)
    assert os.stat(f"/proc/{new_a}/ns/net").st_ino == os.stat(f"/run/netns/{lab}-duo").st_ino != old_net
    assert state(lab)["duo"]["containers"]["a"]["restarts"] == 1
    # Container a reaches b on localhost in the new namespace, and nothing of the pod is left behind.
    log_a = lambda: read_log(log_path(lab, "duo", "a"))  # noqa: E731
    seen = log_a().count('"pod": "duo"')
    assert wait_for(lambda: log_a().count('"pod": "duo"') > seen + 1), log_a()
    assert len(in_lab(lab)) == 2  # a, and the lab's echo server
    assert as_planned_here(lab)


def test_get_pods_and_status_agree_on_a_pod_whose_namespace_was_deleted(labs):
    """`ip netns del` under a pod: its containers run on in the old, nameless namespace, as status says;
    get pods says so too (not "exited") and shows the lost sandbox as SandboxChanged, the kubelet's
    reason for a dead sandbox, also for a pod whose containers had all exited (nothing held its
    namespace: it is gone for good). up makes both again."""
    lab = labs.name("wl")
    path = labs.up_here(f"""name: {lab}
nodes:
  - name: n1
pods:
  - name: job
    node: n1
    containers:
      - {{name: main, command: [sleep, infinity]}}
      - {{name: side}}
  - name: done
    node: n1
    restartPolicy: Never
    containers:
      - {{name: main, command: ["true"]}}
""")

    def pods() -> dict[str, dict]:
        return {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}

    from netlab import Lab

    assert wait_for(lambda: Lab(lab).pod("done").containers[0].state == "exited", 10), pods()
    main, side = pid_of(lab, "job", "main"), pid_of(lab, "job", "side")
    for pod in ("job", "done"):
        subprocess.run(["ip", "netns", "del", f"{lab}-{pod}"], check=True)
    status = netlab("status", "--lab", lab, check=False).stdout
    for name, pid in (("main", main), ("side", side)):
        assert f"pod job container {name} runs on in the pod's old, deleted network namespace (pid {pid})" in status
    assert f"missing: namespace {lab}-job" in status and f"missing: namespace {lab}-done" in status, status
    got = pods()
    assert [(c["name"], c["state"], c["pid"]) for c in got["job"]["containers"]] == \
        [("main", "running", main), ("side", "running", side)], got["job"]
    assert got["job"]["netns_gone"] and got["done"]["netns_gone"]
    assert got["done"]["containers"][0]["state"] == "exited"
    table = netlab("get", "pods", "--lab", lab, "-o", "wide").stdout  # NAMESPACE first, as kubectl get -A -o wide
    rows = {line.split()[1]: line.split()[1:] for line in table.splitlines()[1:]}
    # READY 0/2: its containers run on in the old namespace, not ready until up makes the sandbox again (it said 2/2)
    assert rows["job"][1:3] == ["0/2", "SandboxChanged"] and "main:running" in rows["job"], table
    assert (got["job"]["ready"], got["job"]["status"]) == ("0/2", "SandboxChanged"), got["job"]
    assert rows["done"][1:3] == ["0/1", "SandboxChanged"], table
    up_here(path)
    got = pods()
    assert not got["job"]["netns_gone"] and not got["done"]["netns_gone"], got
    rows = {line.split()[0]: line.split() for line in netlab("get", "pods", "--lab", lab).stdout.splitlines()[1:]}
    assert rows["job"][1:3] == ["2/2", "Running"], rows


def test_a_container_that_makes_its_own_network_namespace_runs_as_specified(labs):
    """A privileged container may leave the pod's network namespace for one of its own (``unshare --net``).
    It still runs as specified: status is clean, get pods says Running, up leaves it alone. Its record
    keeps the namespace it was started in, which tells it from a container whose pod's namespace was
    deleted under it: that case (the namespace deleted now) is still found, and up replaces it; down
    stops it wherever it runs."""
    lab = labs.name("wl")
    path = labs.up_here(f"""name: {lab}
nodes:
  - name: n1
pods:
  - name: own
    node: n1
    containers:
      - name: main
        command: [unshare, --net, sleep, infinity]
""")
    pid = pid_of(lab, "own", "main")
    pod_net = os.stat(f"/run/netns/{lab}-own")
    assert state(lab)["own"]["containers"]["main"]["net"] == [pod_net.st_dev, pod_net.st_ino, pod_net.st_ctime_ns]
    assert wait_for(lambda: os.stat(f"/proc/{pid}/ns/net").st_ino != pod_net.st_ino)  # unshare has run
    assert as_planned_here(lab)
    pods = json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)
    assert [c["state"] for p in pods["items"] for c in p["containers"]] == ["running"], pods
    out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
    assert out["fixed"] == [] and pid_of(lab, "own", "main") == pid and running(pid), out
    subprocess.run(["ip", "netns", "del", f"{lab}-own"], check=True)
    status = netlab("status", "--lab", lab, check=False)
    assert "runs on in the pod's old, deleted network namespace" in status.stdout, status.stdout
    out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
    assert "restarted container own/main (its pod's network namespace was made again)" in out["fixed"], out
    assert wait_for(lambda: not running(pid)), "the container left behind still runs"
    new = pid_of(lab, "own", "main")
    assert running(new) and as_planned_here(lab)
    netlab("down", "--lab", lab)
    assert wait_for(lambda: not running(new)), "down left the container running in its own namespace"


def test_up_twice_starts_no_duplicates(labs):
    lab = labs.name("wl")
    path = labs.up_here(duo_topology(lab))
    before = in_lab(lab)
    assert len(before) == 2  # container a, and the lab's echo server (one process for its three echo containers)
    netlab("up", "-t", path)
    assert in_lab(lab) == before


def test_down_stops_every_process_in_the_lab(labs):
    lab = labs.name("wl")
    labs.up_here(duo_topology(lab))
    # A learner's processes: one plain, one that ignores SIGTERM, one in a node.
    extra = [
        subprocess.Popen(["ip", "netns", "exec", f"{lab}-fedora-1", "sleep", "1000"]),
        subprocess.Popen(["ip", "netns", "exec", f"{lab}-duo", "sh", "-c", "trap '' TERM; sleep 1000 & wait"]),
        subprocess.Popen(["ip", "netns", "exec", f"{lab}-minikube", "sleep", "1000"]),
    ]
    assert wait_for(lambda: len(in_lab(lab)) >= 2 + 4)
    pids = in_lab(lab)
    uts = state_path(lab, "uts", "duo")
    assert os.path.exists(uts)
    t0 = time.monotonic()
    netlab("down", "--lab", lab)
    assert time.monotonic() - t0 < 15
    for p in extra:
        p.wait(timeout=5)
    assert not [p for p in pids if running(p)]
    assert not lab_namespaces(lab)
    assert not os.path.exists(state_path(lab))
    with open("/proc/self/mountinfo") as fh:
        assert state_path(lab) + "/" not in fh.read()


def test_containers_do_not_hold_the_lock_or_die_with_the_cli(labs):
    lab = labs.name("wl")
    labs.up(two_node_topology(lab, pods_per_node=1))
    pid = pid_of(lab, "fedora-1", "main")
    lock = state_path(lab, "lock")
    for fd in os.listdir(f"/proc/{pid}/fd"):
        assert os.path.realpath(f"/proc/{pid}/fd/{fd}") != lock
    # Its own session, and the CLI that started it is gone.
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    assert int(fields[3]) == thread_group(pid)  # session id: a session of its own (the lab's echo server's)
    # Another command takes the lock at once (nobody else holds it).
    t0 = time.monotonic()
    netlab("status", "--lab", lab)
    assert time.monotonic() - t0 < 10


def test_a_container_that_cannot_start_is_reported_recorded_and_tried_again(labs):
    """A command that is not there, and one the kernel refuses to exec: each is a clear problem, no pid."""
    lab = labs.name("wl")
    topo = two_node_topology(lab, pods_per_node=1) + """  - name: broken
    node: minikube
    ip: 10.244.0.9
    containers:
      - name: missing
        command: ["no-such-program-netlab"]
      - name: notexec
        command: ["/etc"]
"""
    path, proc = labs.up(topo, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # the lab is up, its workload not as asked: as status says it (below)
    assert "pod broken container missing: could not start: no-such-program-netlab: command not found" in out, out
    assert "pod broken container notexec: could not start: /etc: permission denied" in out, out
    recs = state(lab)["broken"]["containers"]
    assert "command not found" in recs["missing"]["error"] and "pid" not in recs["missing"]
    assert recs["notexec"]["error"] == "/etc: permission denied" and "pid" not in recs["notexec"]
    status = netlab("status", "--lab", lab, check=False)
    assert "pod broken container notexec could not start" in status.stdout + status.stderr
    # The next up tries again (and fails the same way): it never counts a failed start as running.
    again = netlab("up", "-t", path, check=False)
    assert "pod broken container missing: could not start" in again.stdout + again.stderr


def mounts_under(path: str) -> dict[str, tuple[str, str]]:
    """The kernel's mount table at and under ``path``: mount point -> (file system type, source)."""
    out = {}
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields, _, fs = line.partition(" - ")
            point = fields.split(" ")[4]
            if point == path or point.startswith(path + "/"):
                out[point] = tuple(fs.split(" ")[:2])
    return out


# The UTS namespaces duo_topology's lab pins: its pods', its nodes' and the underlay's (workload/node_uts.py).
PINNED = ("fedora-1", "fedora-2", "duo", "minikube", "minikube-m02", "underlay")


def test_the_pins_live_on_the_labs_own_tmpfs_and_go_with_it_in_one_unmount(labs):
    lab = labs.name("wl")
    labs.up_here(duo_topology(lab))
    udir = os.path.realpath(state_path(lab, "uts"))
    mounts = mounts_under(udir)
    # The tmpfs first, then a namespace (nsfs) pinned on it per pod and per node, hostname = its name.
    assert mounts.pop(udir) == ("tmpfs", "netlab-uts")
    assert mounts == {f"{udir}/{name}": ("nsfs", "nsfs") for name in PINNED}
    assert netlab("exec", "--lab", lab, "duo", "--", "hostname").stdout.strip() == "duo"
    assert netlab("exec", "--lab", lab, "minikube", "--", "hostname").stdout.strip() == "minikube"
    netlab("down", "--lab", lab)
    assert mounts_under(os.path.dirname(udir)) == {}
    assert not lab_namespaces(lab) and not os.path.exists(state_path(lab))


def test_pins_unmounted_by_hand_are_said_by_exec_and_status_and_made_again_by_up(labs):
    """Someone unmounts the lab's pins (`umount -l` of its tmpfs): exec still runs, but says the hostname there
    is the host's; status names each pod's UTS namespace; up makes them again and says so (it said "nothing to
    change" while it made them)."""
    lab = labs.name("wl")
    path = labs.up_here(duo_topology(lab))
    udir = os.path.realpath(state_path(lab, "uts"))
    subprocess.run(["umount", "-l", udir], check=True)
    assert mounts_under(udir) == {}
    ran = netlab("exec", "--lab", lab, "duo", "--", "hostname")
    assert ran.stdout.strip() == os.uname().nodename
    assert ran.stderr == ("netlab: pod duo's UTS namespace is missing, so `hostname` there is the host's; "
                          f"`{netlab_command(f'up -t {path}')}` makes it again\n")  # the lab's own file
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1 and "pod duo: UTS namespace (hostname duo) is missing" in st.stdout
    out = labs.up(duo_topology(lab))[1].stdout
    assert all(f"made pod {pod}'s UTS namespace again (hostname {pod})" in out
               for pod in ("fedora-1", "fedora-2", "duo")), out
    assert mounts_under(udir).pop(udir) == ("tmpfs", "netlab-uts")
    assert netlab("exec", "--lab", lab, "duo", "--", "hostname").stdout.strip() == "duo"
    assert as_planned_here(lab)


def test_pins_in_a_plain_folder_are_each_unmounted_as_before(labs):
    # A lab of an older netlab keeps its pins in the folder itself; netlab never mounts over a folder
    # that is not empty (here: the empty file the pins are links of, left there before up).
    lab = labs.name("wl")
    state_dir.lab_dir(lab)  # the lab's folder as netlab makes it (marked), the older netlab's pins in it
    os.makedirs(state_path(lab, "uts"), mode=0o700)
    open(state_path(lab, "uts", ".pin"), "w").close()
    labs.up_here(duo_topology(lab))
    udir = os.path.realpath(state_path(lab, "uts"))
    assert mounts_under(udir) == {f"{udir}/{name}": ("nsfs", "nsfs") for name in PINNED}
    assert netlab("exec", "--lab", lab, "fedora-2", "--", "hostname").stdout.strip() == "fedora-2"
    netlab("down", "--lab", lab)
    assert mounts_under(os.path.dirname(udir)) == {}
    assert not lab_namespaces(lab) and not os.path.exists(state_path(lab))
