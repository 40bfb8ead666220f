"""The real CLI as root without CAP_SYS_ADMIN/CAP_NET_ADMIN (`setpriv --bounding-set=-sys_admin,-net_admin`, an
unprivileged container's root), with a relative NETLAB_STATE_DIR, with one that is a regular file, and after a lab's
whole state folder went (QA report qr, defects 3-6 and 8; the fake side: tests/unit/test_capless_root_and_state_dir.py).

Capless root: `doctor` and `up` ended in `KeyError: 'veth'`; `down` stopped the echo server, removed the pods'
/etc/netns files and set phase `deleting` before its first setns was refused, and `list` called that down "killed".
A relative NETLAB_STATE_DIR: the lab came up with every echo container failing (FileNotFoundError on
`<dir>/<lab>/echo.log`: the server runs with another cwd). A file: "cannot use <file>/<lab>/state.json: Not a
directory", and `list` said "no lab is up", exit 0. A lab whose folder went: `list` said "no lab is up".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

import netlab as netlab_pkg
from helpers import NETLAB, netlab, state_path, unique_lab, write_topology

SETPRIV = shutil.which("setpriv")
CAPLESS = [SETPRIV or "setpriv", "--bounding-set=-sys_admin,-net_admin"]


def one_pod(lab: str) -> str:
    return (f"name: {lab}\nnodes:\n  - {{name: n1, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}}\n"
            "pods:\n  - {name: p1, node: n1, ip: 10.244.0.2}\n")


def netns_of(lab: str) -> list[str]:
    """The lab's namespaces, as the kernel's /run/netns lists them (`ip -j netns list`)."""
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return sorted(n["name"] for n in json.loads(out or "[]") if n["name"].startswith(lab + "-"))


# The checkout under test, for a process started in another directory (PYTHONPATH=. would name that one)
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(netlab_pkg.__file__)))


def run(*args: str, prefix: list[str] | None = None, env: dict | None = None, cwd: str | None = None):
    path = os.pathsep.join([CHECKOUT, *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([*(prefix or []), *NETLAB, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": path, **(env or {})}, cwd=cwd)


def one_line(proc: subprocess.CompletedProcess, text: str) -> None:
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and text in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.skipif(SETPRIV is None, reason="needs util-linux's setpriv")
def test_capless_root_is_refused_before_any_change_with_the_doctors_line(labs):
    lab = labs.name("cap")
    labs.up(one_pod(lab))
    made = netns_of(lab)
    etc = sorted(os.listdir(f"/etc/netns/{lab}-p1")) if os.path.isdir(f"/etc/netns/{lab}-p1") else None
    said = "host capabilities: root without CAP_NET_ADMIN and CAP_SYS_ADMIN"
    for words in (["down", "--lab", lab], ["status", "--lab", lab], ["list"], ["up", "--lab", lab]):
        proc = run(*words, prefix=CAPLESS)
        one_line(proc, said)
        assert "sudo" not in proc.stderr, proc.stderr
    doctor = run("doctor", prefix=CAPLESS)
    assert doctor.returncode == 3 and doctor.stdout.count("FAIL") == 1 and said in doctor.stdout, doctor
    assert "Traceback" not in doctor.stderr and "CONFIG_" not in doctor.stdout, doctor
    # nothing changed: the namespaces, the pod's files, the phase; the echo container still runs (status exit 0)
    assert netns_of(lab) == made and f"{lab}-p1" in made
    assert (sorted(os.listdir(f"/etc/netns/{lab}-p1")) if etc is not None else None) == etc
    with open(state_path(lab, "state.json")) as f:
        assert json.load(f)["phase"] == "up"
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    listed = netlab("list", check=False)  # other tests' labs may be listed too, a killed one among them: not ours
    ours = [line for line in (listed.stdout + listed.stderr).splitlines() if lab in line]
    assert ours and not [line for line in ours if "killed" in line], listed


def test_a_relative_state_dir_is_the_folder_under_the_directory_netlab_started_in(tmp_path):
    lab = unique_lab("cap")
    path = write_topology(tmp_path, one_pod(lab), "topo.yaml")
    env = {"NETLAB_STATE_DIR": "rel-state"}
    try:
        up = run("up", "-t", path, env=env, cwd=str(tmp_path))
        assert up.returncode == 0 and "could not start" not in up.stderr, (up.stdout, up.stderr)
        assert f"{lab}-p1" in netns_of(lab)
        assert os.path.isfile(tmp_path / "rel-state" / lab / "state.json")
        assert os.path.isfile(tmp_path / "rel-state" / lab / "echo.log")
        status = run("status", "--lab", lab, env=env, cwd=str(tmp_path))
        assert status.returncode == 0, (status.stdout, status.stderr)
        probe = run("probe", "--lab", lab, env=env, cwd=str(tmp_path))
        assert probe.returncode == 0, (probe.stdout, probe.stderr)
    finally:
        down = run("down", "--lab", lab, env=env, cwd=str(tmp_path))
    assert down.returncode == 0 and netns_of(lab) == [], (down.stdout, down.stderr)


def test_a_state_dir_that_is_a_file_is_said_so_by_every_command(tmp_path):
    lab = unique_lab("cap")
    path = write_topology(tmp_path, one_pod(lab), "topo.yaml")
    file = tmp_path / "x"
    file.write_text("x\n")
    env = {"NETLAB_STATE_DIR": str(file)}
    said = f"{file} is not a directory; point NETLAB_STATE_DIR at a directory of root's own"
    for words in (["up", "-t", path], ["status", "--lab", lab], ["list"], ["down", "--lab", lab]):
        one_line(run(*words, env=env), said)
        assert netns_of(lab) == [] and file.read_text() == "x\n"
    doctor = run("doctor", env=env)
    assert doctor.returncode == 3 and f"FAIL  host state directory: {file} is not a directory; fix: point " \
        "NETLAB_STATE_DIR at a directory of root's own" in doctor.stdout, doctor


def test_a_lab_whose_state_folder_went_is_listed_lost_and_down_force_takes_it(labs):
    lab = labs.name("cap")
    labs.up(one_pod(lab))
    made = netns_of(lab)
    folder = state_path(lab)
    try:
        subprocess.run(["umount", "-l", os.path.join(folder, "uts")], check=True)  # the lab's pins' tmpfs
        shutil.rmtree(folder)
        listed = netlab("list", check=False)
        assert "no lab is up" not in listed.stderr and lab in listed.stdout, listed
        row = [line for line in listed.stdout.splitlines() if lab in line]
        assert "lost" in row[0], listed.stdout
        assert f"netlab down --lab {lab} --force" in listed.stderr, listed.stderr
        assert netns_of(lab) == made  # list changes nothing
    finally:
        netlab("down", "--lab", lab, "--force", check=False)
    assert netns_of(lab) == []
