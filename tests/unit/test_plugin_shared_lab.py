"""The plugin's labs belong to the plugin (netlab/pytest_plugin.py, netlab/pytest_artifacts.py): QA qt #1, #5, #6.

#1: ``with netlab_lab as lab:``, as the README's ``with Lab.up(...) as lab:``, took a scope's shared lab down, the
next test met a bare "lab 'X' is not up", and a failure dump said "the lab as it was" of a lab that was down. A
``with`` block leaves the plugin's lab up now; a test that calls ``down()`` itself makes the next test of the scope
fail at setup naming it; a dump of a lab that is down says so. #5: under ``pytest -n`` the dumps went to each
worker's ``<basetemp>/popen-gwN/netlab``, not ``<basetemp>/netlab`` as documented. #6: ``--netlab-keep``'s "stays
up" line was printed in every failed test's report and in the summary, not once per lab.
A fake Lab (no kernel): this is about the plugin's words and folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = '''
import os, shutil, types
from netlab import doctor, pytest_artifacts
from netlab.api import Lab
from netlab.realize import state_dir

def up_loaded(cls, loaded, wait=60.0):
    lab = cls(loaded.lab.name, owned=True)  # as Lab.up_loaded's lab it brought up itself
    os.makedirs(os.path.join(state_dir.STATE_ROOT, lab.name))
    lab.last_up = types.SimpleNamespace(failed=())
    return lab

def down(self, **kw):
    for hook in [] if self._down else list(self._before_down):
        hook()
    shutil.rmtree(os.path.join(state_dir.STATE_ROOT, self.name), ignore_errors=True)
    self._down = True

Lab.up_loaded = classmethod(up_loaded)
Lab.down = down
doctor.require_for = lambda lab: None
pytest_artifacts.snapshot = lambda lab, *a: {"status.json": {"clean": True}}
'''


def run(tmp_path: Path, tests: str | dict[str, str], *args: str) -> tuple[str, list[str]]:
    """pytest on ``tests`` (one module, test_case.py, or several: file name to source) with this checkout's plugin
    and the fake Lab: its output, and the labs left in the state folder."""
    state = tmp_path / "state"
    state.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "pytest.ini").write_text("[pytest]\n")
    (run_dir / "conftest.py").write_text(CONFTEST)
    files = {"test_case.py": tests} if isinstance(tests, str) else tests
    for name, source in files.items():
        (run_dir / name).write_text("import pytest\n\n" + source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    # The plugins named, no autoload: pytest's autoload of every installed plugin (hypothesis's imports all of
    # hypothesis) costs ~0.8 s of CPU a run. tests/unit/test_plugin_topology.py loads the plugin by its entry point.
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), NETLAB_STATE_DIR=str(state),
               PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "netlab.pytest_plugin", "-p", "xdist.plugin",
                           "-p", "no:cacheprovider", "-q", "-rA",
                           "--basetemp", str(tmp_path / "base"), *args, *files],
                          cwd=run_dir, capture_output=True, text=True, timeout=120, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout, sorted(os.listdir(state))


MODULE = "pytestmark = pytest.mark.netlab(None, name='sh', scope='module')\n\n"


WITH = "def test_one(netlab_lab):\n    with netlab_lab as lab:\n        assert not lab._down\n" \
       "    assert not netlab_lab._down\n\n\ndef test_two(netlab_lab):\n    assert not netlab_lab._down\n"
DOWN = "def test_one(netlab_lab):\n    netlab_lab.down()\n\n\ndef test_two(netlab_lab):\n    pass\n"
DUMP = "@pytest.mark.netlab(None, name='dn')\ndef test_fails(netlab_lab):\n    netlab_lab.down()\n    assert False\n"


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> tuple[Path, str, list[str]]:
    """One child run for the three tests below, a module each: a with block on a shared lab (sw), a test that
    takes its shared lab down (sd), a test that fails with its lab down (dn)."""
    tmp_path = tmp_path_factory.mktemp("shared")
    out, left = run(tmp_path, {"test_with.py": MODULE.replace("'sh'", "'sw'") + WITH,
                               "test_down.py": MODULE.replace("'sh'", "'sd'") + DOWN, "test_dump.py": DUMP})
    return tmp_path, out, left


def test_a_with_block_on_the_fixtures_lab_leaves_it_up_for_the_next_test(shared):
    _, out, left = shared
    assert "\nPASSED test_with.py::test_one\n" in out and "\nPASSED test_with.py::test_two\n" in out, out
    assert [name for name in left if name.startswith("sw-")] == []  # the plugin took it down after the module's end


def test_a_test_that_takes_the_shared_lab_down_is_named_by_the_next_ones_setup(shared):
    _, out, _ = shared
    assert "\nPASSED test_down.py::test_one\n" in out and "\nERROR test_down.py::test_two - " in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("netlab: lab sd-")]
    name = line.split()[2].rstrip(",")
    assert line == (f"netlab: lab {name}, which the tests of this module share, is down: taken down by "
                    "test_down.py::test_one (its lab.down()); the plugin takes a netlab_lab down after the last test "
                    "of its scope: a test does not call its down() (use netlab_factory for a lab of the test's own)")


def test_the_dump_of_a_lab_that_was_down_when_its_test_failed_says_so(shared):
    tmp_path, out, _ = shared
    assert "\nFAILED test_dump.py::test_fails - " in out, out
    assert "the lab as it was" not in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("lab dn-")]
    assert line.endswith(" was down when the test failed (taken down by test_dump.py::test_fails (its lab.down())): "
                         "nothing of it to write"), line
    assert not list((tmp_path / "base" / "netlab").glob("*/dn-*"))  # no folder that looks like a dump


def test_keep_says_a_shared_lab_stays_up_once_however_many_of_its_tests_failed(tmp_path):
    out, left = run(tmp_path, MODULE + "def test_one(netlab_lab):\n    assert False\n\n\n"
                                       "def test_two(netlab_lab):\n    assert False\n", "--netlab-keep")
    assert "2 failed" in out and len(left) == 1, out
    assert out.count(f"lab {left[0]} stays up: ") == 1, out
    assert "netlab: labs kept up (--netlab-keep)" in out, out


def test_under_xdist_the_dumps_are_under_the_basetemp_as_documented(tmp_path):
    out, _ = run(tmp_path, "@pytest.mark.netlab(None, name='xd')\ndef test_a(netlab_lab):\n    assert False\n\n\n"
                           "@pytest.mark.netlab(None, name='xd')\ndef test_b(netlab_lab):\n    assert False\n",
                 "-n", "2")
    assert "2 failed" in out, out
    dumps = sorted(p.relative_to(tmp_path / "base") for p in (tmp_path / "base").glob("**/xd-*"))
    assert [str(p.parent.parent) for p in dumps] == ["netlab", "netlab"], dumps
    assert all(f"the lab as it was when the test failed: {tmp_path / 'base' / p}" in out for p in dumps), out


WATCHED = '''from netlab.api import Lab, load
from netlab.pytest_plugin import watch

@pytest.fixture(scope="module")
def module_lab(request):
    with Lab.up_loaded(load(None, "wm")) as lab:  # Lab.up(None, name="wm"), the fake Lab's
        watch(request.node, lab)
        yield lab

def test_one(module_lab):
    pass

def test_two(module_lab):
    assert False, "on purpose"

def test_request(request):
    watch(request, Lab("wm"))
'''


def test_a_lab_a_module_fixture_watches_is_written_when_a_test_of_the_module_fails(tmp_path):
    """QA pt63 3: ``netlab_lab`` is function-scoped whatever the marker's scope (a module fixture of one's own that
    asks for it: ScopeMismatch), and the way around, ``with Lab.up(...) as lab: watch(request.node, lab)`` in a
    module fixture, lost the failure dump: watch() kept the lab in the module's stash, which no test's report
    read. Each test of the module (class, session) is handed its fixtures' watched labs after its setup; and
    what watch() cannot serve (the request, not its node) is its UsageError."""
    out, left = run(tmp_path, WATCHED)
    assert "\nPASSED test_case.py::test_one\n" in out and "\nFAILED test_case.py::test_two - " in out, out
    assert "the lab as it was when the test failed: " in out, out
    dumps = list((tmp_path / "base" / "netlab").glob("*test_two*/wm"))
    assert len(dumps) == 1 and (dumps[0] / "status.json").exists(), out
    assert not list((tmp_path / "base" / "netlab").glob("*test_one*")), out
    assert ("UsageError: netlab.pytest_plugin.watch: node must be a pytest node (request.node: the test's, or "
            "the module's, class's or session's a fixture of that scope is given), not the fixture request: pass "
            "request.node") in out, out
    assert left == [], left  # the with block took it down after the module's last test


FAILING_CONFTEST = CONFTEST + '''
def failing_up(cls, loaded, wait=60.0):
    lab = up_loaded(cls, loaded, wait)
    open(os.path.join(os.environ["NETLAB_STATE_DIR"], "..", "ups"), "a").write(lab.name + "\\n")
    lab.last_up = types.SimpleNamespace(failed=("pod a: container web could not start",))
    return lab

Lab.up_loaded = classmethod(failing_up)
'''


def test_a_shared_lab_whose_up_failed_fails_each_test_of_its_scope_without_a_new_up(tmp_path, monkeypatch):
    """A module's lab whose up failed (a container that could not start; a CNI plugin whose ADD failed) was
    brought up again for each test of the module, each failing the same way: one up, its line for every test."""
    monkeypatch.setattr(sys.modules[__name__], "CONFTEST", FAILING_CONFTEST)
    out, left = run(tmp_path, MODULE + "def test_one(netlab_lab):\n    pass\n\n\ndef test_two(netlab_lab):\n    pass\n")
    assert "2 errors" in out and left == [], out
    assert len((tmp_path / "ups").read_text().split()) == 1, out
    lines = [line for line in out.splitlines() if line.startswith("netlab: lab sh-")]
    assert len(lines) == 2 and lines[0].endswith("container web could not start (the lab is taken down)"), lines
    assert lines[1] == lines[0] + " (at the setup of test_case.py::test_one; not tried again for this module)", lines
