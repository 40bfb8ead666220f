"""Real labs (root): the library's actions inside a pod as a caller's own tests use them. ``lab.break_``
(``netlab break``) seen by real traffic and the kernel, ``lab.popen`` starting a server another pod
reaches, ``exec`` of a command ending with ``&`` and of a program that cannot run (the CLI's 127 and line),
one error type for a namespace that is gone, and the pytest plugin's dump of a failed test holding its last
``reach`` results.

Every lab is tiny, named qga + 7 hex digits, and always taken down (the ``labs`` fixture).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from helpers import lab_namespaces, netlab
from netlab import Lab
from netlab.api import BreakResult, CannotRun, NetnsGone, UsageError, to_json
from netlab.errors import netlab_command
from test_pytest_plugin import names_written, pytest_in

pytestmark = pytest.mark.root


def small(name: str) -> dict:
    return {"name": name, "nodes": [{"name": "n1"}, {"name": "n2"}],
            "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n2"}]}


def neigh_of(netns: str, dev: str) -> list[dict]:
    out = subprocess.run(["ip", "-n", netns, "-j", "neigh", "show", "dev", dev], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out or "[]")


def test_break_changes_the_kernel_real_traffic_fails_and_repair_puts_it_back(labs):
    name = labs.name("qga")
    with Lab.up(small(name)) as lab:
        b_ip = lab.pod("b").ip
        assert lab.reach("a", "b", proto="tcp", port=8080).reachable
        before = neigh_of(f"{name}-n1", "flannel.1")
        assert before  # Flannel's permanent ARP entry for n2's VTEP (10.244.1.0)
        res = lab.break_("vxlan-arp-missing", "n1")
        assert isinstance(res, BreakResult) and (res.lab, res.scenario, res.target) == (name, "vxlan-arp-missing", "n1")
        assert res.changes and all(isinstance(c, str) for c in res.changes)
        with pytest.raises(AttributeError):
            res.target = "n2"  # type: ignore[misc]  # frozen: a value
        assert set(to_json(res)) == {"lab", "scenario", "target", "changes", "already", "in_place", "warnings"}
        assert res.already is False  # changed now
        assert res.warnings == ()  # a lab as planned: nothing to warn of
        # The kernel's own view: the permanent neighbour entry of the other node's VTEP is gone from flannel.1.
        assert [e for e in neigh_of(f"{name}-n1", "flannel.1") if "PERMANENT" in e.get("state", [])] == []
        ping = subprocess.run(["ip", "netns", "exec", f"{name}-a", "ping", "-c1", "-W1", b_ip], capture_output=True)
        assert ping.returncode != 0  # real traffic across the nodes fails
        assert not lab.reach("a", "b", proto="tcp", port=8080).reachable
        assert not lab.status().clean
        lab.repair()
        assert neigh_of(f"{name}-n1", "flannel.1") == before
        assert lab.reach("a", "b", proto="tcp", port=8080).reachable
        with pytest.raises(UsageError, match=r"^lab\.break_: scenario 'nope': want one of vxlan-arp-missing, "):
            lab.break_("nope")
        with pytest.raises(UsageError, match="n9"):
            lab.break_("bridge-port-down", "n9")


def sysctl_of(netns: str, key: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-n", key], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_break_on_a_broken_lab_breaks_it_again_and_warns_in_its_result_as_the_cli_does(labs):
    """`netlab break` on a lab that was not as planned warns (stderr) that what probe and trace show is not this
    fault's alone; ``lab.break_`` broke silently, its result had no field for it. It breaks all the same (both
    faults in the kernel), and ``warnings`` holds the CLI's line with the library's calls; the CLI's ``-o json``
    holds its own line, with its commands, in the same field."""
    from netlab.realize.state import repair_command

    name = labs.name("qga")
    with Lab.up(small(name)) as lab:
        first = lab.break_("ip-forward-off", "n1")
        assert first.warnings == () and sysctl_of(f"{name}-n1", "net.ipv4.ip_forward") == "0"
        # The same break again: in place already, nothing changed, and the result says so as the CLI does
        # (no warning: the differences are this break's own).
        again = lab.break_("ip-forward-off", "n1")
        assert (first.already, again.already, again.changes, again.warnings) == (False, True, (), ()), again
        assert sysctl_of(f"{name}-n1", "net.ipv4.ip_forward") == "0"
        cli = json.loads(netlab("break", "ip-forward-off", "--lab", name, "--target", "n1", "-o", "json").stdout)
        assert (cli["already"], cli["changes"]) == (again.already, list(again.changes)), cli
        status = lab.status()
        n = len(status.drift) - len(status.kept)
        assert n >= 1, status
        second = lab.break_("vxlan-arp-missing", "n1")
        differences = f"{n} difference{'' if n == 1 else 's'} from its plan"
        assert second.warnings == (
            f"lab {name} was broken already ({differences} before this break): what probe and trace show is not "
            f"this fault's alone; `Lab('{name}').status()` lists them, `Lab('{name}').repair()` repairs them all",)
        # Both faults are in the kernel: n1 routes nothing, and its VTEP entry for n2 is gone.
        assert sysctl_of(f"{name}-n1", "net.ipv4.ip_forward") == "0"
        assert [e for e in neigh_of(f"{name}-n1", "flannel.1") if "PERMANENT" in e.get("state", [])] == []
        now = lab.status()
        m = len(now.drift) - len(now.kept)
        assert m > n, now
        cli = netlab("break", "pod-cidr-route-missing", "--lab", name, "-o", "json")
        said = (f"lab {name} was broken already ({m} differences from its plan before this break): what probe and "
                f"trace show is not this fault's alone; `{netlab_command(f'status --lab {name}')}` lists them, "
                f"`{repair_command(name)}` repairs them all")
        assert (json.loads(cli.stdout)["warnings"], cli.stderr) == ([said], f"netlab: warning: {said}\n")
        lab.repair()
        assert lab.status().clean and sysctl_of(f"{name}-n1", "net.ipv4.ip_forward") == "1"
        assert lab.break_("ip-forward-off", "n1").warnings == ()  # repaired: clean again
        lab.repair()


SERVER = r"""
import http.server, os, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{os.uname().nodename} {self.client_address[0]}".encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
socketserver.TCPServer.allow_reuse_address = True
with socketserver.TCPServer(("", 7100), H) as s:
    print("listening", flush=True)
    s.serve_forever()
"""
CLIENT = ("import sys, urllib.request; "
          "print(urllib.request.urlopen(f'http://{sys.argv[1]}:7100/', timeout=5).read().decode())")


def open_files(pid: int) -> list[str]:
    """What the process's descriptors point to; one closed while they are listed (the connection reach made,
    which the server may still be closing) is left out."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            continue
    return out


def test_popen_starts_a_server_in_the_pod_that_another_pod_reaches_and_down_stops_it(labs):
    name = labs.name("qga")
    lab = Lab.up(small(name))
    try:
        server = lab.popen("b", [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "listening"
        # In the pod's network namespace (the kernel's identity of it: the inode of its nsfs file).
        assert os.stat(f"/proc/{server.pid}/ns/net").st_ino == os.stat(f"/run/netns/{name}-b").st_ino
        got = lab.exec("a", [sys.executable, "-c", CLIENT, lab.pod("b").ip], check=True, timeout=20).stdout.split()
        assert got == ["b", lab.pod("a").ip]  # answered in pod b, the client's own address (no NAT)
        assert lab.reach("a", "b", proto="tcp", port=7100).reachable
        # No descriptor of the pod's namespace files is left open in the long-lived process.
        assert not [path for path in open_files(server.pid) if path.startswith(("/run/netns", "/run/netlab"))]
        assert server.poll() is None
    finally:
        lab.down()
    assert server.wait(timeout=10) < 0  # down stopped it (a signal), as every process in the lab's namespaces
    assert lab_namespaces(name) == []


def test_a_with_block_of_popen_stops_the_server_when_it_ends_and_the_lab_stays_up(labs):
    """popen's docstring offered the Popen as a context manager: a plain Popen's ``with`` only waited, and the
    block around a server never ended (QA qt #2). It stops the server now (SIGTERM), reaps it, and leaves the lab
    up. The harness's bound: a timer kills the server after 60 s (SIGKILL, -9), so a block that would not end does,
    and fails the status check."""
    name = labs.name("pt")
    lab = Lab.up(small(name))
    try:
        with lab.popen("b", [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True) as server:
            bound = threading.Timer(60, server.kill)
            bound.start()
            assert server.stdout is not None and server.stdout.readline().strip() == "listening"
            got = lab.exec("a", [sys.executable, "-c", CLIENT, lab.pod("b").ip], check=True, timeout=20).stdout
            assert got.split() == ["b", lab.pod("a").ip]
        bound.cancel()
        assert server.returncode == -15 and not os.path.exists(f"/proc/{server.pid}")  # SIGTERM; reaped
        assert not lab.reach("a", "b", proto="tcp", port=7100).reachable  # nothing listens any more
        assert lab.status().clean  # the lab is up, as planned
    finally:
        lab.down()
    assert lab_namespaces(name) == []


def test_exec_of_a_command_ending_with_ampersand_returns_and_the_job_serves(labs):
    name = labs.name("qga")
    with Lab.up(small(name)) as lab:
        start = time.monotonic()
        done = lab.exec("b", f"echo started; {sys.executable} -c '{SERVER}' &", timeout=10)
        assert time.monotonic() - start < 5  # before, it waited for the job's pipe: TimeoutExpired after 10 s
        assert done.returncode == 0 and done.stdout.startswith("started")
        for _ in range(50):
            got = lab.exec("a", [sys.executable, "-c", CLIENT, lab.pod("b").ip], timeout=20)
            if got.returncode == 0:
                break
            time.sleep(0.1)
        assert got.stdout.split() == ["b", lab.pod("a").ip], got.stderr
        assert lab.exec("a", "echo a\\&").stdout == "a&\n"  # an escaped & is no background job: printed


def test_exec_of_a_program_that_cannot_run_returns_what_netlab_exec_exits_with(labs):
    """``netlab exec L a -- /nonexistent`` says "command not found" and exits 127, as a shell does; the library's
    ``exec`` raised Python's FileNotFoundError, no netlab error and no exit status. It returns the command's
    status and line (``check=True``: CalledProcessError, as for any command that failed); ``popen``, which
    returns no status, raises CannotRun with them (it raised FileNotFoundError)."""
    name = labs.name("qga")
    with Lab.up(small(name)) as lab:
        for argv, code in ((["/nonexistent"], 127), (["no-such-program"], 127), (["/etc"], 126)):
            cli = netlab("exec", "--lab", name, "a", "--", *argv, check=False)
            done = lab.exec("a", argv)
            assert (done.returncode, done.stdout, done.stderr) == (cli.returncode, "", cli.stderr), cli.stderr
            assert done.returncode == code and done.stderr.startswith(f"netlab: {argv[0]}: ")
            with pytest.raises(CannotRun) as raised:  # popen: netlab's error, with the same line and status
                lab.popen("a", argv)
            assert (raised.value.returncode, f"netlab: {raised.value}\n") == (cli.returncode, cli.stderr)
        with pytest.raises(subprocess.CalledProcessError) as failed:
            lab.exec("a", ["/nonexistent"], check=True)
        assert failed.value.returncode == 127


def test_a_pods_namespace_deleted_is_netns_gone_from_every_method(labs):
    """Said as a Python caller types its way out (QA qt #4: it named `sudo netlab up --lab L`, the CLI's)."""
    name = labs.name("pt")
    with Lab.up(small(name)) as lab:
        with pytest.raises(UsageError, match=r"^lab\.pods: selector must be a string or None, not int 42$"):
            lab.pods(42)  # type: ignore[arg-type]
        subprocess.run(["ip", "netns", "del", f"{name}-b"], check=True)
        # QA pt63 5: reach from b was a ProbeResult (outcome "error", "namespace L-b does not exist"), and reach to b
        # said reachable=True (b's echo server holds its namespace on) while probe() says b's flows not probed
        for call in (lambda: lab.exec("b", "true"), lambda: lab.trace("a", "b"), lambda: lab.inspect("b"),
                     lambda: lab.popen("b", ["true"]), lambda: lab.reach("b", "a"), lambda: lab.reach("a", "b")):
            with pytest.raises(NetnsGone) as err:
                call()
            assert isinstance(err.value, UsageError) and err.value.exit_code == 2
            assert str(err.value) == (f"namespace {name}-b was deleted while lab {name} is up; "
                                      f"`Lab({name!r}).repair()` makes it again")  # that lab's
        lab.repair()


def test_a_wrong_argument_type_on_a_real_lab_is_a_usage_error_and_the_lab_is_unchanged(labs):
    """The QA's calls on a lab that is up: each one UsageError line, no process left in the pod, no impairment
    set, the lab still up and as planned (unit checks of every method: tests/unit/test_api_argument_types.py)."""
    name = labs.name("qga")
    with Lab.up(small(name)) as lab:
        before = lab.exec("a", ["ip", "-j", "addr"]).stdout
        pids = subprocess.run(["ip", "netns", "pids", f"{name}-a"], capture_output=True, text=True).stdout
        for call in (lambda: lab.exec("a", 5), lambda: lab.exec("a", [1, 2]),  # type: ignore[arg-type, list-item]
                     lambda: lab.exec("a", ["cat"], input=b"x"),  # type: ignore[arg-type]
                     lambda: lab.exec("a", ["true"], timeout="5"),  # type: ignore[arg-type]
                     lambda: lab.exec("a", ["true"], env={"A": 1}),  # type: ignore[dict-item]
                     lambda: lab.popen("a", 5),  # type: ignore[arg-type]
                     lambda: lab.impair(5, rate="1mbit"),  # type: ignore[arg-type]
                     lambda: lab.inspect("a", 5),  # type: ignore[arg-type]
                     lambda: lab.down(wait="x"),  # type: ignore[arg-type]
                     # a flag that is not True or False: down(force="no") took the lab down, clear=1 cleared
                     lambda: lab.down(force="no"), lambda: lab.impair("a:eth0", clear=1),  # type: ignore[arg-type]
                     lambda: lab.exec("a", ["false"], check="no"),  # type: ignore[arg-type]
                     # Popen sets the user before popen's preexec_fn enters the pod: only root may (EPERM)
                     lambda: lab.popen("a", ["id"], user="nobody")):
            with pytest.raises(UsageError) as raised:
                call()
            assert "\n" not in str(raised.value) and str(raised.value).startswith("lab.")
        assert lab.status().clean and f"{name}-a" in lab_namespaces(name)
        assert subprocess.run(["ip", "netns", "pids", f"{name}-a"], capture_output=True, text=True).stdout == pids
        assert lab.exec("a", ["ip", "-j", "addr"]).stdout == before
        assert "netem" not in lab.exec("n1", ["tc", "qdisc", "show"]).stdout + lab.exec("a", ["tc", "qdisc",
                                                                                            "show"]).stdout
        # What popen's refusal of user= says to do instead: the program runs as that user, in the pod.
        with lab.popen("a", ["runuser", "-u", "nobody", "--", "sh", "-c", "id -un; hostname; ip -o -4 addr show eth0"],
                       stdout=subprocess.PIPE, text=True) as proc:
            out = proc.communicate(timeout=20)[0].split("\n")
        assert proc.returncode == 0 and out[:2] == ["nobody", "a"] and f" {lab.pod('a').ip}/" in out[2]


def test_a_failed_tests_dump_holds_its_last_reach_results(tmp_path):
    artifacts = tmp_path / "artifacts"
    topo = json.dumps({"name": "qgdump", "nodes": [{"name": "n1"}],
                       "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}]})
    proc = pytest_in(tmp_path, f'''
import pytest

@pytest.mark.netlab({topo})
def test_reach(netlab_lab):
    open("name-1", "w").write(netlab_lab.name)
    assert netlab_lab.reach("a", "b", proto="tcp", port=8080).reachable
    assert netlab_lab.reach("a", "b", proto="tcp", port=9999).reachable, "on purpose: nothing listens there"
''', "--netlab-artifacts", str(artifacts))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "1 failed" in out, out
    (name,) = names_written(tmp_path)
    (test_folder,) = [p.name for p in artifacts.iterdir()]  # the test id's own folder: test_case.py--test_reach-HASH
    assert re.fullmatch(r"test_case\.py--test_reach-[0-9a-f]{8}", test_folder), test_folder
    reaches = json.loads((artifacts / test_folder / name / "reaches.json").read_text())
    assert [(r["port"], r["observed"]) for r in reaches] == [(8080, "reachable"), (9999, "unreachable")], reaches
    assert lab_namespaces(name) == []
