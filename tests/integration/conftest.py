"""Root integration fixtures: unique labs that always come down, and a host that never changes.

Labs that a test only needs come from netlab's own pytest plugin (``netlab_lab``,
``netlab_factory``: unique names, teardown, a dump of every namespace when a test
fails). ``labs`` is for tests of the CLI itself (``netlab up`` and its output):
it brings labs up through the CLI, hands them to the plugin for the failure dump,
and takes them down (in the test's process, where nothing can have patched netlab),
checking that nothing is left.
"""

from __future__ import annotations

import os

import pytest

import machine_table
from helpers import (anything_of, as_planned_here, diff_snapshots, host_snapshot, lab_down, lab_down_here,
                     lab_namespaces, netlab, unique_lab, write_topology)
from netlab import Lab
from netlab.pytest_plugin import watch

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def host_untouched():
    """Every integration test: the host's namespace is byte-identical before and after."""
    before = host_snapshot()
    yield
    changes = diff_snapshots(before, host_snapshot())
    assert not changes, "the host's network namespace changed:\n" + "\n".join(changes[:20])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Every root test holds the machine's one neighbour table (tests/machine_table.py) for its whole run: shared,
    or alone when it asks for ``quiet_neighbour_table``. The labs of its own fixtures, and those of the module
    fixtures it is the first or the last test of, come up and go down while it holds it. (xdist's workers call
    this hook for every test, not only those under this folder: ``held_for`` tells root tests.)"""
    with machine_table.held_for(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session):
    with machine_table.held_at_end(session):
        return (yield)


@pytest.fixture
def var_lib_cni_alone(request):
    """The machine's /var/lib/cni for this test alone among the tests that ask for it: one whose plugin writes
    there (a wrapper's host-local without a dataDir netlab sees) and one that asserts it unchanged by a lab."""
    with machine_table.alone("var-lib-cni", machine_table.folder(request.config)):
        yield


@pytest.fixture
def quiet_neighbour_table():
    """The machine's neighbour table for this test alone: no other test on the machine that holds it (every root
    test of this suite, on either xdist worker) runs meanwhile. For a test that asserts the table's machine-wide
    counters (entries, forced_gc_runs, table_fulls), which another worker's traffic would move too."""


class Labs:
    """Brings labs up through the CLI for a test and always takes them down."""

    def __init__(self, tmp_path, item):
        self.tmp_path = tmp_path
        self.item = item
        self.names: list[str] = []
        self.here: set[str] = set()  # brought up in this process: taken down in it too

    def name(self, prefix: str = "t") -> str:
        lab = unique_lab(prefix)
        self.names.append(lab)
        return lab

    def up(self, text: str, file: str = "topo.yaml", *args: str, check: bool = True, env: dict | None = None):
        path = write_topology(self.tmp_path, text, file)
        proc = netlab("up", "-t", path, *args, check=check, env=env)
        for lab in self.names:
            if lab_namespaces(lab):
                watch(self.item, Lab(lab))  # the plugin dumps it if the test fails
        return path, proc

    def up_here(self, text: str, file: str = "topo.yaml") -> str:
        """The lab of ``text`` (named by ``name()`` first) brought up in this process, for a test of other commands
        than `up`; its file's path. A container that could not start fails the test."""
        path = write_topology(self.tmp_path, text, file)
        lab = Lab.up(path)
        self.here.add(lab.name)
        watch(self.item, lab)  # the plugin dumps it if the test fails
        assert lab.last_up is not None and lab.last_up.ok, lab.last_up
        return path

    def teardown(self, patched: bool) -> None:
        """Every lab named goes, and nothing of it may be left. In this process (a CLI start costs ~0.3 s of CPU,
        ~300 labs a run), unless the test may have patched netlab in this process (``patched``: it uses
        monkeypatch, whose undoing may come after this) or changed the state folder the CLI would see: then
        through the CLI, a process of its own."""
        from netlab.realize import state_dir

        cli = patched or state_dir.STATE_ROOT != os.path.abspath(
            os.environ.get("NETLAB_STATE_DIR") or state_dir.DEFAULT_STATE_ROOT)
        for lab in self.names:
            if anything_of(lab):  # else `down` is "not up; nothing to do" (a CLI start for nothing)
                (lab_down if cli and lab not in self.here else lab_down_here)(lab)


@pytest.fixture
def labs(tmp_path, request):
    labs = Labs(tmp_path, request.node)
    yield labs
    labs.teardown(patched="monkeypatch" in request.fixturenames)


@pytest.fixture
def repaired(live):
    """The module's ``live`` lab (a dict with its ``name`` and topology ``path``), as planned again after the test,
    whatever it broke by hand: ``netlab up`` when ``status`` finds it otherwise, then as planned for sure (both in
    this process: a clean-up, not a test of their CLI)."""
    yield live
    if not as_planned_here(live["name"]):
        Lab.up(live["path"])
    assert as_planned_here(live["name"])
