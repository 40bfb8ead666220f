"""The real CLI in a working directory that was deleted (QA q50 6): a relative output file (`trace -w`, `probe
--junit`, `graph -w`) is one line naming it, exit 2, nothing written; a relative NETLAB_STATE_DIR is refused by
`list` and `doctor` as any unusable state folder, exit 3. Each was a traceback of os.path.abspath (exit 1)."""

from __future__ import annotations

import os
import subprocess

from helpers import NETLAB, two_node_topology

GONE = "the current directory was deleted"


def in_deleted(folder: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI started in ``folder``, which is removed before it runs (a real deleted working directory)."""
    os.makedirs(folder)

    def leave() -> None:
        os.chdir(folder)
        os.rmdir(folder)

    return subprocess.run(NETLAB + list(args), capture_output=True, text=True, preexec_fn=leave, timeout=120,
                          env=env)


def one_line(proc: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert GONE in proc.stderr and all(w in proc.stderr for w in words), proc.stderr


def test_relative_paths_in_a_deleted_working_directory_are_one_line(labs, tmp_path):
    lab = labs.name("fd")
    path, _ = labs.up(two_node_topology(lab))
    here = str(tmp_path / "gone")
    one_line(in_deleted(here, "trace", "--lab", lab, "fedora-1", "fedora-3", "-o", "svg", "-w", "out.svg"), 2,
             "cannot write out.svg")
    one_line(in_deleted(here, "probe", "--lab", lab, "--junit", "j.xml"), 2, "cannot write j.xml")
    one_line(in_deleted(here, "graph", "-t", path, "-o", "svg", "-w", "g.svg"), 2, "cannot write g.svg")
    assert os.listdir(tmp_path) == ["topo.yaml"]  # nothing written anywhere near
    env = dict(os.environ, NETLAB_STATE_DIR="rel")
    listed = in_deleted(here, "list", env=env)
    one_line(listed, 3, "cannot use rel:", "point NETLAB_STATE_DIR at a directory")
    doctor = in_deleted(here, "doctor", env=env)
    assert doctor.returncode == 3 and "Traceback" not in doctor.stderr, doctor
    assert f"FAIL  host state directory: rel: {GONE}" in doctor.stdout, doctor.stdout
    # an absolute output file needs no working directory: the trace is written
    out = str(tmp_path / "out.svg")
    traced = in_deleted(here, "trace", "--lab", lab, "fedora-1", "fedora-3", "-o", "svg", "-w", out)
    assert traced.returncode == 0 and open(out).read().startswith("<"), traced
