"""A lab whose state file was deleted (by hand, or lost) while the lab runs on (root).

`down` without a state said "lab X is not up; nothing to do" and exited 0, while it deleted the lab's folder
(its echo server's control socket, the logs) and left the namespaces, the server and the pods' UTS pins: the lab
ran on, unseen by `list` and `status`, and only the next `up` met its namespaces. Now every command that finds
no state but what a run of the lab made (namespaces tagged as its, or its folder's files) says the state was
lost, in one line, exit 3, and changes nothing; `down --force` takes all of it, the server and the pins too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from netlab.errors import down_command, netlab_command
from helpers import STATE_ROOT, anything_of, lab_namespaces, netlab, someone_elses_etc_netns, state_path
from netlab import Lab
from netlab.api import labs as netlab_labs
from netlab.kernel.processes import running
from netlab.workload.launch import server_pid

pytestmark = pytest.mark.root


def topology(lab: str) -> str:
    return f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n1}}]\n"


def pin_mounts(lab: str) -> list[str]:
    """Mount points under the lab's folder (its UTS pins' tmpfs and the pins), as findmnt lists them."""
    out = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.startswith(state_path(lab) + "/")]


def pod_folders(lab: str) -> dict[str, dict[str, str]]:
    """The folders /etc/netns/<lab>-*, with their files' text (the last lab to leave /etc/netns removes it)."""
    names = sorted(os.listdir("/etc/netns")) if os.path.isdir("/etc/netns") else []
    return {d: {f: open(os.path.join("/etc/netns", d, f)).read() for f in sorted(os.listdir(f"/etc/netns/{d}"))}
            for d in names if d.startswith(f"{lab}-")}


def lost(lab: str, left: str) -> str:
    return (f"netlab: lab {lab} has no state file ({state_path(lab, 'state.json')}), yet {left}: its state was "
            f"lost; take the lab down with `{netlab_command(f'down --lab {lab} --force')}` (it deletes only namespaces "
            "tagged as the lab's, pods' files in /etc/netns whose first line says they are the lab's, and the files "
            "netlab wrote in the lab's folder)\n")


def test_a_lab_whose_state_was_deleted_is_said_lost_left_alone_and_taken_down_by_force(labs):
    lab = labs.name("isl")
    labs.up_here(topology(lab))
    os.unlink(state_path(lab, "state.json"))
    names, files, server = lab_namespaces(lab), sorted(os.listdir(state_path(lab))), server_pid(lab)
    assert len(names) == 4 and server is not None and pin_mounts(lab)
    said = lost(lab, f"4 namespaces tagged as its remain ({', '.join(names[:3])} and 1 more)")
    for command in (["down"], ["status"], ["get", "pods"], ["up"], ["exec", "a"]):
        proc = netlab(*command, "--lab", lab, *(["--", "true"] if command[0] == "exec" else []), check=False)
        assert (proc.returncode, proc.stdout, proc.stderr) == (3, "", said), (command, proc)
    listed = netlab("list")  # listed (it was not), with the way out
    assert [line.split()[:2] for line in listed.stdout.splitlines() if line.startswith(lab)] == [[lab, "lost"]]
    assert said in listed.stderr, listed
    # nothing changed: the namespaces, the folder's files, the server, the pins
    assert lab_namespaces(lab) == names and sorted(os.listdir(state_path(lab))) == files
    assert server_pid(lab) == server and pin_mounts(lab)

    out = netlab("down", "--lab", lab, "--force")
    assert out.stdout == f"lab {lab} is down (4 namespaces removed)\n", out
    assert lab_namespaces(lab) == [] and not os.path.exists(state_path(lab)) and not pin_mounts(lab)
    assert pod_folders(lab) == {}
    assert not running(server)  # the server is gone (a zombie till init reaps it)


def test_a_lost_lab_without_namespaces_still_has_its_server_and_pins_stopped_by_force(labs):
    """Its state deleted, then its namespaces by hand: what its folder holds (the echo server's socket, the
    pins' tmpfs) is the proof; the server runs on, holding the nameless namespaces, until `down --force`."""
    lab = labs.name("isf")
    labs.up_here(topology(lab))
    os.unlink(state_path(lab, "state.json"))
    for name in lab_namespaces(lab):
        subprocess.run(["ip", "netns", "del", name], check=True)  # the user's doing, in the lab's own namespaces
    files, server = sorted(os.listdir(state_path(lab))), server_pid(lab)
    assert server is not None and "echo.sock" in files
    proc = netlab("down", "--lab", lab, check=False)
    listed = ", ".join(f for f in files if f not in ("lock", "netlab-lab"))
    assert (proc.returncode, proc.stderr) == (3, lost(lab, f"its folder {state_path(lab)} holds what a run of it "
                                                           f"left ({listed})")), proc
    assert sorted(os.listdir(state_path(lab))) == files and server_pid(lab) == server

    netlab("down", "--lab", lab, "--force")
    assert not os.path.exists(state_path(lab)) and not pin_mounts(lab)
    assert not running(server)
    assert pod_folders(lab) == {}  # the pods' files went too


def gone_by_hand(lab: str) -> None:
    """All of lab ``lab`` but what /etc holds, as a reboot leaves it (/run is a tmpfs) or a user's clean-up by hand:
    its echo server stopped, its UTS pins unmounted, its namespaces and its state folder deleted, each by name."""
    server = server_pid(lab)
    assert server is not None
    os.kill(server, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while running(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(server)
    for target in sorted(pin_mounts(lab), key=len, reverse=True):  # the pins, then the tmpfs they are on
        subprocess.run(["umount", target], check=True)
    for name in lab_namespaces(lab):
        subprocess.run(["ip", "netns", "del", name], check=True)
    shutil.rmtree(state_path(lab))


def test_a_lab_whose_folder_and_namespaces_are_gone_leaves_pod_files_only_down_force_takes(labs):
    """Its pods' files under /etc/netns outlive the rest, and their first line is the only proof whose they are:
    `down` said "not up; nothing to do" and `down --force` found nothing, so they stayed for good. Now `down` says
    so (exit 3, nothing changed) and `down --force` takes exactly them: not a folder of lab <lab>-x, whose name
    begins as the lab's pods' do, nor one of the lab's names holding the user's own file."""
    lab = labs.name("isp")
    labs.up_here(topology(lab))
    try:
        check_pod_files_left(lab)
    finally:  # the fixture's plain `down` says the files are left, and leaves them
        if anything_of(lab):
            netlab("down", "--lab", lab, "--force", check=False)


def check_pod_files_left(lab: str) -> None:
    gone_by_hand(lab)
    assert lab_namespaces(lab) == [] and not os.path.exists(state_path(lab))
    left = pod_folders(lab)
    assert sorted(left) == [f"{lab}-a", f"{lab}-b"] and all(
        text.startswith(f"# netlab {lab}: ") for files in left.values() for text in files.values()), left
    other, own = f"/etc/netns/{lab}-x-web", f"/etc/netns/{lab}-c"  # lab <lab>-x's pod web; the user's
    with someone_elses_etc_netns(make=(other, own)):
        with open(f"{other}/hosts", "w") as fh:
            fh.write(f"# netlab {lab}-x: pod web's hosts file, as the kubelet writes it\n")
        with open(f"{own}/hosts", "w") as fh:
            fh.write(f"# my own, not netlab {lab}'s\n")
        before = pod_folders(lab)
        proc = netlab("down", "--lab", lab, check=False)
        said = (f"netlab: lab {lab} is not up (no state file {state_path(lab, 'state.json')}, no namespace tagged "
                f"as its), yet its pods' files remain in /etc/netns ({lab}-a, {lab}-b): take them away with "
                f"`{netlab_command(f'down --lab {lab} --force')}` (it deletes only the files whose first line says "
                "they are the lab's)\n")
        assert (proc.returncode, proc.stdout, proc.stderr) == (3, "", said), proc
        assert pod_folders(lab) == before and not os.path.exists(state_path(lab))
        listed = netlab("list")
        rows = [line.split()[:2] for line in listed.stdout.splitlines() if line.startswith(f"{lab} ")]
        if STATE_ROOT == "/run/netlab":  # list looks at the pods' files with the default state directory only
            assert rows == [[lab, "lost"]] and said in listed.stderr, listed
        else:
            assert rows == [] and said not in listed.stderr, listed
        status = netlab("status", "--lab", lab, check=False)  # to the other commands the lab is not up
        assert status.returncode == 2 and f"lab '{lab}' is not up" in status.stderr, status

        out = netlab("down", "--lab", lab, "--force")
        assert out.stdout == (f"lab {lab} is down (0 namespaces removed; its pods' files in /etc/netns removed: "
                              f"{lab}-a, {lab}-b)\n"), out
        assert pod_folders(lab) == {d: before[d] for d in (f"{lab}-c", f"{lab}-x-web")}
        assert not os.path.exists(state_path(lab))
    assert pod_folders(lab) == {}
    assert netlab("down", "--lab", lab).stdout == f"lab {lab} is not up; nothing to do\n"


def test_down_of_a_lab_that_is_not_up_is_still_nothing_to_do(labs):
    lab = labs.name("isn")
    proc = netlab("down", "--lab", lab)
    assert proc.stdout == f"lab {lab} is not up; nothing to do\n" and not os.path.exists(state_path(lab))


def lab_processes(lab: str) -> list[str]:
    """Every process whose command line names the lab (its echo server's control socket, its containers' argv)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if lab in argv and int(pid) != os.getpid():
            found.append(f"{pid}: {argv}")
    return found


@pytest.mark.parametrize("kill", ["state-write", "state-temp-written", "state-renamed", "1", "last"])
def test_an_up_killed_before_during_or_after_its_first_state_write_is_listed_and_taken_down_by_plain_down(
        labs, tmp_path, kill):
    """SIGKILL in the up's first state write (its temporary file whole, not renamed) left the lab's folder with
    that file: `list` said the lab's state was lost, and only `down --force` took it; killed just before it, the
    folder with its lock alone, which `list` did not show. The write-ahead names every namespace before one
    exists, so such an up made nothing else: `list` says so (phase interrupted), and plain `down` removes the
    folder. Killed later (the state renamed, before its sum; at the first namespace; at the
    last step, its echo server and container running: it was listed up) it is listed creating, with a line saying the up ended and
    that `down` takes what it made; then nothing of it is left: no namespace, no folder, no process."""
    lab = labs.name("kw")
    path = tmp_path / "topo.yaml"
    sleeper = f"{{name: c, command: [sh, -c, 'sleep 1000; :', {lab}]}}"  # its shell's argv names the lab
    path.write_text(f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - {{name: a, node: n1}}\n"
                    f"  - {{name: b, node: n1, containers: [{sleeper}]}}\n")
    env = {"NETLAB_FAULT_MODE": "kill"}
    if kill == "last":  # the up's operations, counted by the library's same up
        env["NETLAB_FAULT_AT"] = str(Lab.up(str(path)).last_up.operations)
        Lab(lab).down()
    elif kill.isdigit():
        env["NETLAB_FAULT_AT"] = kill
    else:
        env["NETLAB_FAULT_POINT"] = kill
    killed = netlab("up", "-t", str(path), check=False, env=env)
    assert killed.returncode == -signal.SIGKILL, killed
    left = sorted(os.listdir(state_path(lab)))
    if kill == "state-write":
        assert left == ["lock", "netlab-lab"] and not lab_namespaces(lab), left  # the folder's mark: made with it
    if kill == "state-temp-written":
        assert left == ["lock", "netlab-lab", f"state.json.tmp.{left[2].rsplit('.', 1)[1]}"] and \
            not lab_namespaces(lab), left
    if kill == "last":
        assert lab_namespaces(lab) and server_pid(lab) is not None  # what down must take
        assert any(f"sleep 1000; : {lab}" in p for p in lab_processes(lab)), lab_processes(lab)
    listed = netlab("list")
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    said = [line for line in listed.stderr.splitlines() if f"lab {lab}" in line]
    # at the last step too: the lab is up once the up finished (its state said up, saved before the features
    # started, and list said nothing of the up killed)
    phase, todo = ("interrupted", "removes it") if kill in ("state-write", "state-temp-written") else \
        ("creating", "takes away what it made")
    assert rows[lab][1] == phase, listed.stdout
    assert len(said) == 1 and said[0].endswith(f"`{down_command(lab)}` {todo}"), listed.stderr
    assert "--force" not in said[0]
    down = netlab("down", "--lab", lab)
    assert down.stdout.startswith(f"lab {lab} is down (") and down.stderr == "", down
    assert lab_namespaces(lab) == []
    assert not os.path.lexists(state_path(lab)), os.listdir(state_path(lab))
    assert lab_processes(lab) == [] and pin_mounts(lab) == []
    assert lab not in [row.lab for row in netlab_labs()]  # list's rows
