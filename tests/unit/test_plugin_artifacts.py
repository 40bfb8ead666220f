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
from types import SimpleNamespace

import pytest

from netlab.realize import state_dir

ROOT = Path(__file__).resolve().parents[2]


def pytest_with_artifacts(root: Path, artifacts: str, option: str = "--netlab-artifacts",
                          tests: str = "def test_passes(tmp_path):\n    pass\n",
                          *more: str) -> subprocess.CompletedProcess:
    """pytest in ``root`` with this checkout's plugin on ``tests`` (a passing test that uses pytest's tmp_path), the
    artifacts in ``artifacts`` (or the folder of another ``option``: pytest's ``--basetemp``, else in ``root``: not
    pytest's default, a pytest-of-USER folder in the system's temporary directory, kept after the run)."""
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_case.py").write_text(tests)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    # The plugin named, no autoload: pytest's autoload of every installed plugin (hypothesis's imports all of
    # hypothesis) costs ~0.8 s of CPU a run. tests/unit/test_plugin_topology.py loads the plugin by its entry point.
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    basetemp = [] if option == "--basetemp" else ["--basetemp", str(root / "base")]
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "netlab.pytest_plugin", "-p", "no:cacheprovider",
                           "-q", *more, option, artifacts, *basetemp, "test_case.py"],
                          cwd=root, capture_output=True, text=True, timeout=120, env=env)


class Config:
    """What the plugin's pytest_configure reads of pytest's configuration: ``--netlab-artifacts``, ``--basetemp``.
    Its folders refused, pytest_configure raises before it keeps anything (its registry, its SIGTERM handler)."""

    def __init__(self, artifacts: str | None = None, basetemp: str | None = None):
        self.option = SimpleNamespace(basetemp=basetemp)
        self.artifacts = artifacts

    def addinivalue_line(self, name: str, line: str) -> None:
        pass

    def getoption(self, name: str) -> str | None:
        assert name == "netlab_artifacts", name
        return self.artifacts

    @property
    def stash(self) -> dict:
        raise AssertionError("pytest_configure refused no folder: it went on to keep its registry")


def usage_error(**options: str) -> str:
    """The pytest.UsageError the plugin's pytest_configure raises for these options (pytest prints it as its one
    line ``ERROR: ...`` and exits 4, before any test runs: the child runs below show it once for each kind)."""
    from netlab import pytest_plugin

    with pytest.raises(pytest.UsageError) as info:
        pytest_plugin.pytest_configure(Config(**options))  # type: ignore[arg-type]
    return f"ERROR: {info.value}"


def assert_one_line_usage_error(proc: subprocess.CompletedProcess, line: str) -> None:
    """pytest's exit 4 and its one line on stderr, before any test ran; nothing of a traceback."""
    assert proc.returncode == 4, (proc.returncode, proc.stdout, proc.stderr)
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [line], proc.stderr
    assert "passed" not in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


STATE = "{state}, netlab's state directory"


def spelled(tmp_path: Path, state_root: Path, spelling: str) -> str:
    """``spelling`` of a folder in the state folder, with tmp_path/link a symlink to the state folder."""
    (tmp_path / "run").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(state_root)
    assert state_root == tmp_path / "state" or "{tmp}" not in spelling
    return spelling.format(state=state_root, link=tmp_path / "link", tmp=tmp_path)


def artifacts_refused(path: str, inside: str) -> str:
    return (f"ERROR: --netlab-artifacts {path}: it is inside {inside}, where a failed test's lab state would be "
            "written among what keeps the labs running; name a folder somewhere else")


@pytest.mark.parametrize("spelling,inside", [
    ("{state}/somelab", STATE),
    ("{link}/somelab/dumps", STATE),
    ("{tmp}/out/../state", STATE),
    ("/run/netns/dumps", "/run/netns, the folder of the network namespaces"),
    ("/etc/netns/somelab-a", "/etc/netns, the folder of the pods' files"),
])
def test_an_artifacts_folder_among_the_labs_own_files_is_a_usage_error(tmp_path, state_root, spelling, inside):
    path = spelled(tmp_path, state_root, spelling)
    assert usage_error(artifacts=path) == artifacts_refused(path, inside.format(state=state_root))
    assert not os.path.exists(os.path.join(state_root, "somelab"))


def test_an_artifacts_folder_among_the_labs_own_files_is_pytests_one_line_usage_error(tmp_path, state_root):
    path = spelled(tmp_path, state_root, "{link}/somelab/dumps")
    proc = pytest_with_artifacts(tmp_path / "run", path)
    assert_one_line_usage_error(proc, artifacts_refused(path, STATE.format(state=state_root)))
    assert not os.path.exists(os.path.join(state_root, "somelab"))


WATCHES = ("from netlab.pytest_plugin import watch\n\n"
           "def test_passes(tmp_path):\n    pass\n\n"
           "def test_watches_a_name(request):\n    watch(request.node, 'somelab')\n\n"
           "def test_after_it():\n    pass\n")


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> subprocess.CompletedProcess:
    """One child run for the tests below: the artifacts and pytest's --basetemp (run/base) in folders of their own,
    a test that uses tmp_path, one that watches a lab's name, and one after it."""
    root = tmp_path_factory.mktemp("elsewhere")
    (root / "run").mkdir()
    with pytest.MonkeyPatch.context() as mp:  # before the tests' own state folders (function-scoped) are made
        mp.setenv("NETLAB_STATE_DIR", str(root / "state"))
        return pytest_with_artifacts(root / "run", str(root / "artifacts"), "--netlab-artifacts", WATCHES, "-rA")


def test_an_artifacts_folder_and_a_basetemp_elsewhere_run_the_tests(elsewhere):
    assert elsewhere.returncode != 4, (elsewhere.stdout, elsewhere.stderr)  # no usage error: the tests ran
    assert "\nPASSED test_case.py::test_passes\n" in elsewhere.stdout, (elsewhere.stdout, elsewhere.stderr)


def test_watch_of_a_lab_name_is_the_tests_usage_error_and_the_run_goes_on(elsewhere):
    """``watch(request.node, "somelab")``: the name went into the test's labs, and the report of its failure ended
    the whole run in pytest's INTERNALERROR (``'str' object has no attribute '_down'``, exit 3), the tests after it
    never run. Now the call itself raises the UsageError, naming Lab.attach; that test fails, the next one runs."""
    out = elsewhere.stdout
    assert elsewhere.returncode == 1, (elsewhere.returncode, out, elsewhere.stderr)
    assert "1 failed, 2 passed" in out and "INTERNALERROR>" not in out + elsewhere.stderr, out
    assert "\nFAILED test_case.py::test_watches_a_name - " in out and "\nPASSED test_case.py::test_after_it\n" in out
    assert ("UsageError: netlab.pytest_plugin.watch: lab must be a netlab.api.Lab, not str 'somelab' "
            "(Lab.attach('somelab') gives the running lab of that name)") in out, out


def basetemp_refused(path: str, state_root: Path) -> str:
    return (f"ERROR: --basetemp {path}: it is inside {STATE.format(state=state_root)}, which pytest would empty, "
            "then write the tests' temporary files and the failed tests' lab state in, among what keeps the labs "
            "running; name a folder somewhere else")


def state_with_a_lab(state_root: Path) -> None:
    (state_root / "somelab").mkdir()
    (state_root / "somelab" / "state.json").write_text("{}")


@pytest.mark.parametrize("spelling", ["{state}/somelab", "{link}/somelab", "{tmp}/out/../state"])
def test_pytests_basetemp_among_the_labs_own_files_is_a_usage_error(tmp_path, state_root, spelling):
    """pytest's ``--basetemp`` is the dumps' default root, and pytest empties it before a test's tmp_path is made
    there: inside the state folder it deleted a lab's files (its state, its pins) and wrote the tests' own among
    them. Refused as ``--netlab-artifacts`` is, and nothing of the state folder is touched."""
    state_with_a_lab(state_root)
    path = spelled(tmp_path, state_root, spelling)
    assert usage_error(basetemp=path) == basetemp_refused(path, state_root)
    assert sorted(os.listdir(state_root)) == ["somelab"] and os.listdir(state_root / "somelab") == ["state.json"]


def test_pytests_basetemp_among_the_labs_own_files_is_pytests_one_line_usage_error(tmp_path, state_root):
    state_with_a_lab(state_root)
    path = spelled(tmp_path, state_root, "{link}/somelab")
    proc = pytest_with_artifacts(tmp_path / "run", path, option="--basetemp")
    assert_one_line_usage_error(proc, basetemp_refused(path, state_root))
    assert sorted(os.listdir(state_root)) == ["somelab"] and os.listdir(state_root / "somelab") == ["state.json"]


def base_above_a_state(tmp_path: Path, monkeypatch) -> Path:
    """tmp_path/base holding the state folder (a lab in it) and a file not pytest's; tmp_path/out/up a symlink to
    it. The state folder's own path: NETLAB_STATE_DIR, for this process and a child run."""
    state = tmp_path / "base" / "state"
    (state / "somelab").mkdir(parents=True)
    (state / "somelab" / "state.json").write_text("{}")
    (tmp_path / "base" / "other.txt").write_text("not pytest's")
    (tmp_path / "run").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "up").symlink_to(tmp_path / "base")
    monkeypatch.setenv("NETLAB_STATE_DIR", str(state))
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(state))
    return state


def above_refused(path: str, state: Path) -> str:
    return (f"ERROR: --basetemp {path}: {STATE.format(state=state)}, is inside it, and pytest empties it before it "
            "writes the tests' temporary files there: the labs' files would be deleted; name a folder somewhere else")


def assert_untouched(tmp_path: Path, state: Path) -> None:
    assert sorted(os.listdir(state)) == ["somelab"] and os.listdir(state / "somelab") == ["state.json"]
    assert sorted(os.listdir(tmp_path / "base")) == ["other.txt", "state"]


@pytest.mark.parametrize("spelling", ["{base}", "{tmp}/out/../base", "{tmp}/out/up"])
def test_pytests_basetemp_above_the_state_folder_is_a_usage_error(tmp_path, monkeypatch, spelling):
    """pytest empties ``--basetemp`` whole before a test's tmp_path is made there: ``--basetemp /tmp/x`` with the
    state folder /tmp/x/state (or ``/run`` with /run/netlab) deleted every lab's state and pins. Refused before
    any test runs, however it is spelled (``..``, a symlink), and nothing of the state folder is touched."""
    state = base_above_a_state(tmp_path, monkeypatch)
    path = spelling.format(tmp=tmp_path, base=tmp_path / "base")
    assert usage_error(basetemp=path) == above_refused(path, state)
    assert_untouched(tmp_path, state)


def test_pytests_basetemp_above_the_state_folder_is_pytests_one_line_usage_error(tmp_path, monkeypatch):
    state = base_above_a_state(tmp_path, monkeypatch)
    path = f"{tmp_path}/out/up"
    proc = pytest_with_artifacts(tmp_path / "run", path, option="--basetemp")
    assert_one_line_usage_error(proc, above_refused(path, state))
    assert_untouched(tmp_path, state)


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


def test_a_relative_artifacts_folder_is_the_one_pytest_started_in_whatever_a_test_chdirs_to(tmp_path):
    """QA pt63 4: a relative ``--netlab-artifacts`` was resolved when a test failed: a test that chdir'd
    (``monkeypatch.chdir``) sent its dump into pytest's tmp folder, while the line said ``relart/...``; and the
    check of the folder, at the run's start, was of the one beside where pytest started. Made absolute once."""
    (tmp_path / "run").mkdir()
    tests = ("from netlab.pytest_artifacts import _artifacts_dir\n\n"
             "def test_moves(monkeypatch, tmp_path, request):\n"
             "    monkeypatch.chdir(tmp_path)\n"
             f"    open({str(tmp_path / 'said')!r}, 'w').write(str(_artifacts_dir(request.node)))\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NETLAB_STATE_DIR", str(tmp_path / "state"))
        proc = pytest_with_artifacts(tmp_path / "run", "relart", "--netlab-artifacts", tests)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    said = Path((tmp_path / "said").read_text())
    assert said.is_absolute() and said.parent == tmp_path / "run" / "relart", said
