"""A lab made in a private mount namespace (`unshare -m`, systemd's PrivateMounts=), then asked for from the host's,
QA report caps57 defect 4.

Its namespaces are mounts under that namespace's /run/netns; the host's holds only their empty placeholders. The
host saw the lab "gone", and `down --lab` said "down (4 namespaces removed)", exit 0, while its dnsmasq and
namespaces lived on; an `up` from the host failed to enter them. Now `status`, `down` and `up` from the host refuse
in one line naming the mount namespace and the nsenter way there, and change nothing; `list` says it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers import NETLAB, netlab, state_path, unique_lab, write_topology
from test_capless_root_live import one_line, run
from test_caps_ptrace_live import dnsmasq_of, svc_lab

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("nsenter") is None,
                                reason="needs util-linux's unshare and nsenter")


def down_there(pid: int, lab: str) -> None:
    """The lab taken down in the mount namespace of process ``pid``, where it was made (the test's clean-up)."""
    subprocess.run(["nsenter", f"--mount=/proc/{pid}/ns/mnt", *NETLAB, "down", "--lab", lab], capture_output=True,
                   timeout=120, env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_a_lab_of_another_mount_namespace_is_said_so_and_left_as_it_is(tmp_path):
    lab = unique_lab("cp")
    path = write_topology(tmp_path, svc_lab(lab), "topo.yaml")
    made = run("up", "-t", path, prefix=["unshare", "--mount", "--propagation", "private"])
    dns = dnsmasq_of(lab)
    try:
        assert made.returncode == 0, (made.stdout, made.stderr)
        assert len(dns) == 1
        said = f"lab {lab} was made in another mount namespace"
        there = f"nsenter --mount=/proc/{dns[0]}/ns/mnt netlab down --lab {lab}"
        for words in (["down", "--lab", lab], ["status", "--lab", lab], ["up", "-t", path]):
            proc = run(*words)
            one_line(proc, said)
            assert there in proc.stderr, proc.stderr
        listed = netlab("list", check=False)
        assert said in listed.stderr, listed
        assert dnsmasq_of(lab) == dns and os.path.exists(state_path(lab, "state.json"))  # nothing changed
    finally:
        if dns:
            down_there(dns[0], lab)
    assert dnsmasq_of(lab) == [] and not os.path.exists(state_path(lab, "state.json"))


def echo_server_of(lab: str) -> list[int]:
    """The lab's echo server, by the control socket only it is given (the lab's state folder)."""
    sock = state_path(lab, "echo.sock")
    out = subprocess.run(["pgrep", "-f", f"echoserver --control {sock} "], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def test_down_force_of_a_lab_of_another_mount_namespace_is_refused_too(tmp_path):
    """QA caps58 defect 3: `down --force` took no notice: it stopped the lab's containers there, removed the
    placeholders here, said them removed, and forgot the lab's state, whose namespaces lived on there."""
    lab = unique_lab("cp")
    path = write_topology(tmp_path, svc_lab(lab), "topo.yaml")
    made = run("up", "-t", path, prefix=["unshare", "--mount", "--propagation", "private"])
    dns = dnsmasq_of(lab)
    try:
        assert made.returncode == 0 and len(dns) == 1, (made.stdout, made.stderr)
        proc = run("down", "--lab", lab, "--force")
        one_line(proc, f"lab {lab} was made in another mount namespace")
        assert f"nsenter --mount=/proc/{dns[0]}/ns/mnt netlab down --lab {lab}" in proc.stderr, proc.stderr
        assert dnsmasq_of(lab) == dns and os.path.exists(state_path(lab, "state.json"))  # nothing changed
    finally:
        if dns:
            down_there(dns[0], lab)
    assert dnsmasq_of(lab) == [] and not os.path.exists(state_path(lab, "state.json"))


@pytest.mark.parametrize("force", [False, True], ids=["down", "down --force"])
def test_a_lab_with_no_container_of_another_mount_namespace_is_told_by_its_echo_server(tmp_path, force):
    """A lab with no container recorded (nodes only) had nothing to tell it by: `down` said it down and forgot it
    while its namespaces lived on there. Its echo server, found by its control socket in the lab's folder, runs
    there."""
    lab = unique_lab("cp")
    path = write_topology(tmp_path, f"name: {lab}\nnodes:\n  - {{name: n1}}\n", "topo.yaml")
    made = run("up", "-t", path, prefix=["unshare", "--mount", "--propagation", "private"])
    echo = echo_server_of(lab)
    try:
        assert made.returncode == 0 and len(echo) == 1, (made.stdout, made.stderr, echo)
        proc = run("down", "--lab", lab, *(["--force"] if force else []))
        one_line(proc, f"lab {lab} was made in another mount namespace")
        assert f"nsenter --mount=/proc/{echo[0]}/ns/mnt netlab down --lab {lab}" in proc.stderr, proc.stderr
        assert echo_server_of(lab) == echo and os.path.exists(state_path(lab, "state.json"))  # nothing changed
    finally:
        if echo:
            down_there(echo[0], lab)
    assert echo_server_of(lab) == [] and not os.path.exists(state_path(lab, "state.json"))


def test_list_without_sys_ptrace_lists_a_lab_of_another_mount_namespace_and_says_what_it_cannot_tell(tmp_path):
    """`list` reads no process but to tell where a lab none of whose namespaces is mounted here lives: without
    CAP_SYS_PTRACE (QA caps58 defect 1) that one row says so, the listing goes on."""
    from test_caps_ptrace_live import without

    lab = unique_lab("cp")
    path = write_topology(tmp_path, f"name: {lab}\nnodes:\n  - {{name: n1}}\n", "topo.yaml")
    made = run("up", "-t", path, prefix=["unshare", "--mount", "--propagation", "private"])
    echo = echo_server_of(lab)
    try:
        assert made.returncode == 0 and len(echo) == 1, (made.stdout, made.stderr, echo)
        listed = run("list", prefix=without("sys_ptrace"))
        assert listed.returncode == 0 and lab in listed.stdout, (listed.stdout, listed.stderr)
        ours = [line for line in listed.stderr.splitlines() if lab in line]
        assert len(ours) == 1 and "CAP_SYS_PTRACE" in ours[0] and "Traceback" not in listed.stderr, listed.stderr
        assert run("list").stderr.count(f"lab {lab} was made in another mount namespace") == 1
    finally:
        if echo:
            down_there(echo[0], lab)
    assert echo_server_of(lab) == [] and not os.path.exists(state_path(lab, "state.json"))


def test_every_reader_of_a_lab_of_another_mount_namespace_says_where_it_is(tmp_path):
    """QA mf63 defect 1: status, up and down said where the lab lives, but probe, trace, get nodes, exec, inspect
    and logs said it "not up: none of its namespaces is there any more" with a `down --lab` that then refused, and
    `get pods` listed every pod ContainerStatusUnknown, exit 0. Now each says the other mount namespace's line."""
    lab = unique_lab("mf")
    path = write_topology(tmp_path, svc_lab(lab), "topo.yaml")
    made = run("up", "-t", path, prefix=["unshare", "--mount", "--propagation", "private"])
    dns = dnsmasq_of(lab)
    try:
        assert made.returncode == 0 and len(dns) == 1, (made.stdout, made.stderr)
        said = f"lab {lab} was made in another mount namespace"
        there = f"nsenter --mount=/proc/{dns[0]}/ns/mnt netlab down --lab {lab}"
        for words in (["probe", "--lab", lab], ["trace", "--lab", lab, "web", "n1"], ["get", "nodes", "--lab", lab],
                      ["get", "pods", "--lab", lab], ["exec", "--lab", lab, "web", "--", "true"],
                      ["inspect", "--lab", lab, "web"], ["logs", "--lab", lab, "web"]):
            proc = run(*words)
            one_line(proc, said)
            assert there in proc.stderr, (words, proc.stderr)
        assert dnsmasq_of(lab) == dns and os.path.exists(state_path(lab, "state.json"))  # nothing changed
    finally:
        if dns:
            down_there(dns[0], lab)
    assert dnsmasq_of(lab) == [] and not os.path.exists(state_path(lab, "state.json"))
