"""``--netlab-artifacts DIR`` never leads into the labs' own files (the state folder, /run/netns, /etc/netns).

A failed test's dumps (inspect/, probe.json, status.json ...) written into ``/run/netlab/LAB`` or a pod's
``/etc/netns`` folder would sit among what keeps the labs running, as a pcap from ``capture -w`` there would: the
plugin refuses the folder as netlab refuses such an output file, before any test runs, in pytest's one-line usage
error (exit 4), however it is spelled. Nothing under these folders is written: the run stops at its configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_with_artifacts(root: Path, artifacts: str,
                          option: str = "--netlab-artifacts") -> subprocess.CompletedProcess:
    """pytest in ``root`` with this checkout's plugin on a passing test (that uses pytest's tmp_path), the artifacts
    in ``artifacts`` (or the folder of another ``option``: pytest's ``--basetemp``)."""
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_case.py").write_text("def test_passes(tmp_path):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", option,
                           artifacts, "test_case.py"], cwd=root, capture_output=True, text=True, timeout=120, env=env)


STATE = "{state}, netlab's state directory"


@pytest.mark.parametrize("spelling,inside", [
    ("{state}/somelab", STATE),
    ("{link}/somelab/dumps", STATE),
    ("{tmp}/out/../state", STATE),
    ("/run/netns/dumps", "/run/netns, the folder of the network namespaces"),
    ("/etc/netns/somelab-a", "/etc/netns, the folder of the pods' files"),
])
def test_an_artifacts_folder_among_the_labs_own_files_is_a_one_line_usage_error(
        tmp_path, state_root, spelling, inside):
    (tmp_path / "run").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(state_root)
    assert state_root == tmp_path / "state" or "{tmp}" not in spelling
    path = spelling.format(state=state_root, link=tmp_path / "link", tmp=tmp_path)
    proc = pytest_with_artifacts(tmp_path / "run", path)
    assert proc.returncode == 4, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"ERROR: --netlab-artifacts {path}: it is inside {inside.format(state=state_root)}, where a failed test's lab state would be written among what keeps the labs "
                     "running; name a folder somewhere else"], proc.stderr
    assert "passed" not in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert not os.path.exists(os.path.join(state_root, "somelab"))


def test_an_artifacts_folder_elsewhere_runs_the_tests(tmp_path):
    (tmp_path / "run").mkdir()
    proc = pytest_with_artifacts(tmp_path / "run", str(tmp_path / "artifacts"))
    assert proc.returncode == 0 and "1 passed" in proc.stdout, (proc.stdout, proc.stderr)


@pytest.mark.parametrize("spelling", ["{state}/somelab", "{link}/somelab", "{tmp}/out/../state"])
def test_pytests_basetemp_among_the_labs_own_files_is_a_one_line_usage_error(tmp_path, state_root, spelling):
    """pytest's ``--basetemp`` is the dumps' default root, and pytest empties it before a test's tmp_path is made
    there: inside the state folder it deleted a lab's files (its state, its pins) and wrote the tests' own among
    them. Refused as ``--netlab-artifacts`` is, and nothing of the state folder is touched."""
    (tmp_path / "run").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(state_root)
    (state_root / "somelab").mkdir()
    (state_root / "somelab" / "state.json").write_text("{}")
    path = spelling.format(state=state_root, link=tmp_path / "link", tmp=tmp_path)
    proc = pytest_with_artifacts(tmp_path / "run", path, option="--basetemp")
    assert proc.returncode == 4, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"ERROR: --basetemp {path}: it is inside {STATE.format(state=state_root)}, which pytest would "
                     "empty, then write the tests' temporary files and the failed tests' lab state in, among what "
                     "keeps the labs running; name a folder somewhere else"], proc.stderr
    assert "passed" not in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert sorted(os.listdir(state_root)) == ["somelab"] and os.listdir(state_root / "somelab") == ["state.json"]


def test_a_basetemp_elsewhere_runs_the_tests(tmp_path):
    (tmp_path / "run").mkdir()
    proc = pytest_with_artifacts(tmp_path / "run", str(tmp_path / "base"), option="--basetemp")
    assert proc.returncode == 0 and "1 passed" in proc.stdout, (proc.stdout, proc.stderr)
