"""The real CLI as root with CAP_SYS_ADMIN and CAP_NET_ADMIN but not CAP_SYS_PTRACE or CAP_NET_RAW (Docker's default
capabilities plus SYS_ADMIN and NET_ADMIN; a `--cap-drop ALL` container given only what netlab named), QA report
caps57, defects 1 and 3 (the fake side: tests/unit/test_caps_needed.py).

Without CAP_SYS_PTRACE: dnsmasq drops its capabilities and so is not dumpable, and /proc/PID/ns/net of it is
EACCES to root; that was read as "gone": `doctor` said ok, `status` said kube-dns's dnsmasq exited, a repair `up`
started a second one (which died: port 53 in use) and `down` said done, leaving it and its namespace alive.
Without CAP_NET_RAW: `doctor` said ok, `probe` failed with "PermissionError", `trace` and `capture` told root to
use sudo.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from helpers import netlab, state_path
from test_capless_root_live import CHECKOUT, netns_of, one_line, run

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux's setpriv")


def without(*names: str) -> list[str]:
    return ["setpriv", "--bounding-set=" + ",".join(f"-{n}" for n in names), "--inh-caps=-all"]


def svc_lab(lab: str) -> str:
    return (f"name: {lab}\nnodes:\n  - {{name: n1}}\npods:\n  - {{name: web, node: n1, labels: {{app: web}}}}\n"
            "services:\n  - {name: web, selector: {app: web}, clusterIP: 10.96.0.20, "
            "ports: [{port: 80, targetPort: 8080}]}\n")


def dnsmasq_of(lab: str) -> list[int]:
    """The lab's dnsmasq processes, by the hosts file only it is given (the lab's state folder)."""
    hosts = state_path(lab, "dns", "hosts")
    out = subprocess.run(["pgrep", "-f", f"addn-hosts={hosts}"], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def test_root_without_sys_ptrace_is_refused_up_front_and_the_lab_is_left_as_it_was(labs, tmp_path):
    lab = labs.name("cp")
    path, _ = labs.up(svc_lab(lab))
    made, dns = netns_of(lab), dnsmasq_of(lab)
    assert len(dns) == 1 and f"{lab}-kube-dns" in made
    said = "host capabilities: root without CAP_SYS_PTRACE"
    for words in (["up", "-t", path], ["down", "--lab", lab]):  # up's repair and rollback, down's sweep read them
        proc = run(*words, prefix=without("sys_ptrace"))
        one_line(proc, said)
        assert "--cap-add SYS_PTRACE" in proc.stderr and "sudo" not in proc.stderr, proc.stderr
    # status, get and exec -c read the lab's containers only: the first they may not read is said, never "exited"
    for words in (["status", "--lab", lab], ["get", "pods", "--lab", lab], ["exec", "--lab", lab, "-c", "main",
                                                                          "web", "--", "true"]):
        proc = run(*words, prefix=without("sys_ptrace"))
        one_line(proc, "root without CAP_SYS_PTRACE")
        assert "--cap-add SYS_PTRACE" in proc.stderr and "exited" not in proc.stdout + proc.stderr, proc
    # what reads no other process works without it (QA caps58 defect 1)
    for words in (["list"], ["validate", "-t", path], ["plan", "-t", path], ["exec", "--lab", lab, "web", "--",
                                                                             "true"], ["inspect", "--lab", lab, "web"]):
        proc = run(*words, prefix=without("sys_ptrace"))
        assert proc.returncode == 0 and "CAP_SYS_PTRACE" not in proc.stderr, (words, proc.stdout, proc.stderr)
    # trace to a port nothing serves: the refusal the packet met, exit 1; why nothing listens (the containers'
    # state) is what it may not read, and is left out (it was exit 3, the result lost: QA qa58r 1)
    proc = run("trace", "--lab", lab, "n1", "web", "--port", "9999", prefix=without("sys_ptrace"))
    assert proc.returncode == 1 and "REFUSED" in proc.stdout and "CAP_SYS_PTRACE" not in proc.stderr, \
        (proc.stdout, proc.stderr)
    doctor = run("doctor", "-t", path, prefix=without("sys_ptrace"))
    assert doctor.returncode == 3 and said in doctor.stdout, (doctor.stdout, doctor.stderr)
    assert netns_of(lab) == made and dnsmasq_of(lab) == dns  # no second dnsmasq, none stopped
    with open(state_path(lab, "state.json")) as f:
        assert json.load(f)["phase"] == "up"
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def test_status_of_a_lab_with_no_process_to_read_works_without_sys_ptrace(labs):
    lab = labs.name("cp")
    labs.up(f"name: {lab}\nnodes:\n  - {{name: n1}}\n")  # no pod: no container, no kube-dns
    for words in (["status", "--lab", lab], ["get", "nodes", "--lab", lab], ["list"]):
        proc = run(*words, prefix=without("sys_ptrace"))
        assert proc.returncode == 0 and "CAP_SYS_PTRACE" not in proc.stderr, (words, proc.stdout, proc.stderr)


# What the code that asks "is this process still in the lab's namespace" gets for a dnsmasq it cannot look at.
ASK = """
import sys
from netlab.kernel import processes
try:
    print(processes.ns_identity(f"/proc/{sys.argv[1]}/ns/net"))
except PermissionError as exc:
    print("PermissionError", exc)
"""


def test_a_namespace_root_may_not_read_is_not_taken_for_gone(labs):
    lab = labs.name("cp")
    labs.up(svc_lab(lab))
    dns = dnsmasq_of(lab)
    assert len(dns) == 1
    env = {**os.environ, "PYTHONPATH": CHECKOUT}
    got = subprocess.run([*without("sys_ptrace"), sys.executable, "-c", ASK, str(dns[0])], capture_output=True,
                         text=True, env=env, timeout=60)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("PermissionError") and "CAP_SYS_PTRACE" in got.stdout, got.stdout


@pytest.mark.parametrize("words", [["probe"], ["trace", "web", "svc/web"], ["capture", "web:eth0", "-c", "1"]],
                         ids=lambda w: w[0])
def test_root_without_net_raw_is_told_so_by_probe_trace_and_capture(labs, words):
    lab = labs.name("cp")
    path, _ = labs.up(svc_lab(lab))
    proc = run(words[0], "--lab", lab, *words[1:], prefix=without("net_raw"))
    one_line(proc, "root without CAP_NET_RAW")
    assert "--cap-add NET_RAW" in proc.stderr and "sudo" not in proc.stderr, proc.stderr
    doctor = run("doctor", "-t", path, prefix=without("net_raw"))
    assert "root without CAP_NET_RAW" in doctor.stdout and "probe, trace and capture" in doctor.stdout, doctor.stdout
    # what works without it is not refused
    assert run("status", "--lab", lab, prefix=without("net_raw")).returncode == 0


# The Python API's probe, reach and trace, as root without CAP_NET_RAW (QA caps58 defect 2): the probe agent failed
# with "PermissionError: [Errno 1] Operation not permitted" inside an EnvironmentNotReady, trace with a bare
# PermissionError.
API = """
import sys
from netlab import Lab
from netlab.errors import NetlabError
lab = Lab(sys.argv[1])
try:
    {call}
except NetlabError as exc:
    print(type(exc).__name__, exc.exit_code, str(exc))
"""


@pytest.mark.parametrize("call", ["lab.probe()", "lab.reach('web', 'n1')", "lab.trace('web', 'n1')"],
                         ids=lambda c: c.split("(")[0])
def test_the_apis_probe_reach_and_trace_refuse_root_without_net_raw_before_any_work(labs, call):
    lab = labs.name("cp")
    labs.up(svc_lab(lab))
    env = {**os.environ, "PYTHONPATH": CHECKOUT}
    got = subprocess.run([*without("net_raw"), sys.executable, "-c", API.format(call=call), lab],
                         capture_output=True, text=True, env=env, timeout=120)
    assert got.returncode == 0 and "Traceback" not in got.stderr, (got.stdout, got.stderr)
    assert got.stdout.startswith("EnvironmentNotReady 3 FAIL  host capabilities: root without CAP_NET_RAW"), got.stdout
    assert got.stdout.count("\n") == 1 and "--cap-add NET_RAW" in got.stdout and "PermissionError" not in got.stdout


def test_the_apis_down_refuses_root_without_sys_ptrace_before_any_change(labs):
    """Lab.down reads every process (its sweep): without CAP_SYS_PTRACE refused up front, as `netlab down` is."""
    lab = labs.name("cp")
    labs.up(svc_lab(lab))
    made, dns = netns_of(lab), dnsmasq_of(lab)
    env = {**os.environ, "PYTHONPATH": CHECKOUT}
    got = subprocess.run([*without("sys_ptrace"), sys.executable, "-c", API.format(call="lab.down()"), lab],
                         capture_output=True, text=True, env=env, timeout=120)
    assert got.returncode == 0 and "Traceback" not in got.stderr, (got.stdout, got.stderr)
    assert got.stdout.startswith("EnvironmentNotReady 3 FAIL  host capabilities: root without CAP_SYS_PTRACE"), \
        got.stdout
    assert netns_of(lab) == made and dnsmasq_of(lab) == dns
    with open(state_path(lab, "state.json")) as f:
        assert json.load(f)["phase"] == "up"


# status, pods (get) and logs read the lab's recorded containers: where one may not be read, the CLI's one line
API_READS = """
import sys
from netlab import Lab
from netlab.errors import NetlabError
lab = Lab(sys.argv[1])
for call in (lambda: lab.status(), lambda: lab.pods(), lambda: lab.pod("web"), lambda: lab.logs("kube-dns")):
    try:
        call()
        print("no error")
    except NetlabError as exc:
        print(type(exc).__name__, exc.exit_code, str(exc).replace(chr(10), "|"))
"""


def test_the_apis_status_pods_and_logs_say_the_clis_line_without_sys_ptrace(labs):
    """Lab.status, pods (`get pods`) and logs of a lab whose kube-dns dnsmasq root may not read raised a bare
    processes.CannotTell (a PermissionError, no NetlabError): the EnvironmentNotReady of the CLI's line now."""
    lab = labs.name("cp")
    labs.up(svc_lab(lab))
    cli = run("status", "--lab", lab, prefix=without("sys_ptrace"))
    one_line(cli, "root without CAP_SYS_PTRACE")
    line = cli.stderr.strip().removeprefix("netlab: ")
    env = {**os.environ, "PYTHONPATH": CHECKOUT}
    got = subprocess.run([*without("sys_ptrace"), sys.executable, "-c", API_READS, lab],
                         capture_output=True, text=True, env=env, timeout=120)
    assert got.returncode == 0 and "Traceback" not in got.stderr, (got.stdout, got.stderr)
    said = [re.sub(r"/proc/\d+/", "/proc/PID/", s) for s in got.stdout.splitlines()]  # whichever it met first
    assert said == ["EnvironmentNotReady 3 " + re.sub(r"/proc/\d+/", "/proc/PID/", line)] * 4, said
