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
    in ``artifacts`` (or the folder of another ``option``: pytest's ``--basetemp``, else in ``root``: not pytest's
    default, a pytest-of-USER folder in the system's temporary directory, kept after the run)."""
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_case.py").write_text("def test_passes(tmp_path):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    basetemp = [] if option == "--basetemp" else ["--basetemp", str(root / "base")]
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", option,
                           artifacts, *basetemp, "test_case.py"], cwd=root, capture_output=True, text=True, timeout=120, env=env)


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


@pytest.mark.parametrize("spelling", ["{base}", "{tmp}/out/../base", "{tmp}/out/up"])
def test_pytests_basetemp_above_the_state_folder_is_a_one_line_usage_error(tmp_path, monkeypatch, spelling):
    """pytest empties ``--basetemp`` whole before a test's tmp_path is made there: ``--basetemp /tmp/x`` with the
    state folder /tmp/x/state (or ``/run`` with /run/netlab) deleted every lab's state and pins. Refused before
    any test runs, however it is spelled (``..``, a symlink), and nothing of the state folder is touched."""
    state = tmp_path / "base" / "state"
    (state / "somelab").mkdir(parents=True)
    (state / "somelab" / "state.json").write_text("{}")
    (tmp_path / "base" / "other.txt").write_text("not pytest's")
    (tmp_path / "run").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "up").symlink_to(tmp_path / "base")
    monkeypatch.setenv("NETLAB_STATE_DIR", str(state))
    path = spelling.format(tmp=tmp_path, base=tmp_path / "base")
    proc = pytest_with_artifacts(tmp_path / "run", path, option="--basetemp")
    assert proc.returncode == 4, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"ERROR: --basetemp {path}: {STATE.format(state=state)}, is inside it, and pytest "
                     "empties it before it writes the tests' temporary files there: the labs' files would be "
                     "deleted; name a folder somewhere else"], proc.stderr
    assert "passed" not in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert sorted(os.listdir(state)) == ["somelab"] and os.listdir(state / "somelab") == ["state.json"]
    assert sorted(os.listdir(tmp_path / "base")) == ["other.txt", "state"]


@pytest.mark.parametrize("path,held", [("/", "{state}"), ("/run", "/run/netlab"), ("/etc", "/etc/netns"),
                                       ("/etc/../etc/", "/etc/netns")])
def test_a_folder_above_the_labs_own_folders_is_said_to_hold_one(state_root, path, held):
    """``/run`` holds the default state folder (other labs of the machine keep theirs there) and /run/netns,
    ``/etc`` holds the pods' files: what pytest's emptying of such a ``--basetemp`` would delete (judged here,
    never handed to pytest)."""
    from netlab.realize.own_files import holds_own_folder

    found = holds_own_folder(path)
    assert found is not None and found[0] == held.format(state=state_root), found
    assert holds_own_folder(str(state_root / "somelab")) is None
    assert holds_own_folder(str(state_root.parent / "elsewhere")) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="a bind mount in a mount namespace of its own needs root")
def test_a_basetemp_with_a_mount_of_a_labs_folder_below_it_is_said_to_hold_it(tmp_path, state_root):
    """``mount --bind /run/netlab/lab /tmp/x/l``: emptying /tmp/x deletes the lab's files through the mount.
    In a private mount namespace (unshare), so the machine's mounts are never touched."""
    (state_root / "somelab").mkdir()
    (tmp_path / "x" / "l").mkdir(parents=True)
    script = ("import sys; from netlab.realize.own_files import holds_own_folder; "
              "print(holds_own_folder(sys.argv[1]), holds_own_folder(sys.argv[2]))")
    env = dict(os.environ, PYTHONPATH=str(ROOT), NETLAB_STATE_DIR=str(state_root))
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           'mount --bind "$1" "$2" && exec "$3" -c "$4" "$5" "$6"', "sh",
                           str(state_root / "somelab"), str(tmp_path / "x" / "l"), sys.executable, script,
                           str(tmp_path / "x"), str(tmp_path / "y")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"('{state_root}', \"netlab's state directory\") None", proc.stdout


def test_watch_of_a_lab_name_is_the_tests_usage_error_and_the_run_goes_on(tmp_path):
    """``watch(request.node, "somelab")``: the name went into the test's labs, and the report of its failure ended
    the whole run in pytest's INTERNALERROR (``'str' object has no attribute '_down'``, exit 3), the tests after it
    never run. Now the call itself raises the UsageError, naming Lab.attach; that test fails, the next one runs."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_case.py").write_text(
        "from netlab.pytest_plugin import watch\n\n"
        "def test_watches_a_name(request):\n    watch(request.node, 'somelab')\n\n"
        "def test_after_it():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rf",
                           "--basetemp", str(tmp_path / "base"), "test_case.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "1 failed, 1 passed" in proc.stdout and "INTERNALERROR>" not in proc.stdout + proc.stderr, proc.stdout
    assert ("UsageError: netlab.pytest_plugin.watch: lab must be a netlab.api.Lab, not str 'somelab' "
            "(Lab.attach('somelab') gives the running lab of that name)") in proc.stdout, proc.stdout
