"""The real CLI with a NETLAB_STATE_DIR no command can use, and commands that change nothing (QA q28, defects 2, 3
and 7; the fake side: tests/unit/test_state_dir_unusable.py).

A symlink loop: `list`, `status`, `get` and `up` called every lab on the machine "corrupt" and gave `down --force`
for each. A name too long, or a loop above it: `doctor` ended in a traceback. `down` with nothing to do, and a
refused `up`, left the state folder behind (a relative one in the working directory).
"""

from __future__ import annotations

import json
import os
import subprocess

from helpers import unique_lab, write_topology
from test_capless_root_live import one_pod, run


def netns() -> list[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return sorted(n["name"] for n in json.loads(out or "[]"))


def test_an_unusable_state_folder_is_one_line_from_every_command_and_the_doctor(tmp_path):
    lab = unique_lab("sd2")
    topo = write_topology(tmp_path, one_pod(lab), "topo.yaml")
    os.symlink(tmp_path / "l2", tmp_path / "l1")
    os.symlink(tmp_path / "l1", tmp_path / "l2")
    loop, long = str(tmp_path / "l1"), str(tmp_path / ("c" * 256))
    cases = {loop: f"netlab: {loop} is a symlink; refusing to use it (point NETLAB_STATE_DIR at ",
             long: f"netlab: cannot use {long}: File name too long; point NETLAB_STATE_DIR at "}
    files = sorted(os.listdir(tmp_path))
    for path, said in cases.items():
        env = {"NETLAB_STATE_DIR": path}
        for words in (["list"], ["status", "--lab", lab], ["get", "pods"], ["up", "-t", topo], ["down", "--lab", lab]):
            proc = run(*words, env=env)
            assert (proc.returncode, proc.stdout) == (3, ""), (words, proc)
            assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(said), (words, proc.stderr)
            assert "corrupt" not in proc.stderr and "--force" not in proc.stderr
        for below in (path, os.path.join(path, "x")):
            doctor = run("doctor", env={"NETLAB_STATE_DIR": below})
            assert doctor.returncode == 3 and "Traceback" not in doctor.stderr + doctor.stdout, doctor
            assert f"FAIL  host state directory: {below}" in doctor.stdout, doctor.stdout
            assert not [n for n in netns() if n.startswith(lab)]  # `ip netns list`: nothing made (others' change)
    assert sorted(os.listdir(tmp_path)) == files


def test_a_command_that_changes_nothing_leaves_no_state_folder(tmp_path):
    lab = unique_lab("sd2")
    topo = write_topology(tmp_path, one_pod(lab), "topo.yaml")
    fresh = tmp_path / "fresh"
    down = run("down", "--lab", lab, env={"NETLAB_STATE_DIR": str(fresh)})
    assert (down.returncode, down.stdout) == (0, f"lab {lab} is not up; nothing to do\n"), down
    assert not os.path.lexists(fresh)
    up = run("up", "-t", topo)  # in the suite's state folder
    try:
        assert up.returncode == 0, up
        work = tmp_path / "work"
        work.mkdir()
        refused = run("up", "-t", topo, env={"NETLAB_STATE_DIR": "relstate"}, cwd=str(work))
        assert refused.returncode == 3 and refused.stderr.count("\n") == 1, refused
        assert os.listdir(work) == []  # no ./relstate
    finally:
        gone = run("down", "--lab", lab)
    assert gone.returncode == 0 and not [n for n in netns() if n.startswith(lab + "-")], gone
