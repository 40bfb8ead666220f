"""The unit ring: no root, and nothing written outside temporary directories."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import stat
import tempfile

import pytest
from hypothesis import configuration

import state_guard
from netlab.realize import state_dir, tags
from netlab.services import netns_files
from state_guard import Guard


def _hypothesis_home() -> str:
    """Hypothesis keeps its example database and caches (the Unicode tables ``st.text()`` needs,
    a second or two to rebuild) in ./.hypothesis by default, inside the checkout. Here they go
    to a directory of this user's own under the system's temporary directory, kept between
    runs; one that someone else made, that others could read or write, or a symlink, is not
    used: then a fresh one is, this process's, removed when its run ends (_remove_fresh_home).

    Hypothesis makes its home again, with default modes (0755), when it was removed while a run
    went on (``rm -rf /tmp/netlab-unit-hypothesis-*`` during a run): then every later run used
    fresh ones (and leaked those of the processes that did not end normally)."""
    path = os.path.join(tempfile.gettempdir(), f"netlab-unit-hypothesis-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        path = ""
    if path:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            return path
    fresh = tempfile.mkdtemp(prefix="netlab-unit-hypothesis-")
    st = os.lstat(fresh)
    _fresh_homes.append((fresh, os.getpid(), st.st_dev, st.st_ino))
    return fresh


_fresh_homes: list[tuple[str, int, int, int]] = []  # (path, pid, device, inode) of the folder this process made


def _remove_fresh_home() -> None:
    """The fresh folder this process made, at its run's end: only that folder (the same inode, never a
    symlink or a folder put in its place; shutil.rmtree follows none inside), only by the process that made
    it (a forked child that runs the exit handlers, as netlab's launcher does, or gets back into pytest, has
    a copy of the list and must not take its parent's folder)."""
    while _fresh_homes:
        path, pid, dev, ino = _fresh_homes.pop()
        if pid != os.getpid():
            continue
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == (dev, ino):
            shutil.rmtree(path, ignore_errors=True)


def pytest_sessionfinish(session):
    """Every pytest process of the run ends its session here, xdist's workers too, before they say they are done:
    a worker's Python waits for the threads a test left running before its exit handlers, and xdist kills a worker
    that has not ended 10 s after the session's end, atexit or not."""
    _remove_fresh_home()


def pytest_unconfigure(config):
    _remove_fresh_home()  # a run that ended before its session did (a usage error)


atexit.register(_remove_fresh_home)  # the conftest imported without a run (a collection that went wrong at once)


configuration.set_hypothesis_home_dir(_hypothesis_home())


# --- the machine's state directory, out of reach (state_guard.py says why) ---------------------------------------
# Every test has a state directory of its own, made only if used, for netlab in this process and in the processes
# it starts (NETLAB_STATE_DIR); a file operation of this process under the real one while a test runs fails the
# test, naming the path. The pods' files that name a lab whose state is missing are looked for in a folder of the
# test's too, not in the machine's /etc/netns. A test marked ``real_state_dir`` opts out; none needs it today.

state_guard.install()


@pytest.fixture(scope="session")
def _state_roots(tmp_path_factory):
    """Where the tests' own state directories go (one each, numbered, made by netlab when used)."""
    return tmp_path_factory.mktemp("state-roots"), itertools.count()


@pytest.fixture(autouse=True)
def _private_state_root(request, monkeypatch, _state_roots):
    """This test's state directory in place of /run/netlab; the real one out of reach (state_guard.py)."""
    if request.node.get_closest_marker("real_state_dir") is not None:
        yield
        return
    base, numbers = _state_roots
    path = str(base / str(next(numbers)))
    monkeypatch.setattr(state_dir, "STATE_ROOT", path)
    monkeypatch.setenv("NETLAB_STATE_DIR", path)
    # The machine's pods' files name the machine's labs: a lab of a test's by the same name is not up, not lost.
    monkeypatch.setattr(tags, "ETC_NETNS", os.path.join(base, "no-etc-netns"))
    # ... and a fake-kernel `up` that reaches the pods' files writes none in the machine's /etc/netns (a case of a
    # helper's development run did: /etc/netns/qx7c-a/hosts).
    monkeypatch.setattr(netns_files, "ETC_NETNS", os.path.join(base, "no-etc-netns"))
    # The machine's namespaces are the machine's labs, up with other state folders: `list` shows them (elsewhere).
    # None is a test's: one that looks at namespaces gives its own.
    monkeypatch.setattr(tags.nsmod, "list_netns", lambda: [])
    Guard.test, Guard.hits = request.node.nodeid, []
    try:
        yield
    finally:
        Guard.test = None
    if Guard.hits:  # also when the code under test took the failure for an error of its own and went on
        pytest.fail("; ".join(Guard.hits[:3]), pytrace=False)


@pytest.fixture
def state_root(tmp_path, monkeypatch):
    """A private state directory (tmp_path/state), made for a test that looks at it (every test has one of its
    own anyway: _private_state_root)."""
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(path))
    monkeypatch.setenv("NETLAB_STATE_DIR", str(path))
    state_dir._checked.clear()
    yield path
    state_dir._checked.clear()


@pytest.fixture(autouse=True)
def _locks_named_as_the_program(monkeypatch):
    """The commands a test runs in this process take the lab's lock as the netlab program does: its text names the
    command alone, not this pytest's command line as a library caller's does (lockfile.name_holder); a test of a
    library caller's lock sets IN_PROGRAM False."""
    from netlab import lockfile

    monkeypatch.setattr(lockfile, "IN_PROGRAM", True)


@pytest.fixture(autouse=True)
def _no_lab_acted_on(monkeypatch):
    """No lab's iptables backend or CNI folders carried over from another test (realize/backend.py,
    realize/cni_path.py: a command sets them from the lab it acts on, for the rest of its process)."""
    from netlab.kernel import iptables
    from netlab.realize import cni_path

    monkeypatch.setattr(iptables, "_lab_backend", "")
    monkeypatch.setattr(cni_path, "_lab_dirs", [])


@pytest.fixture(autouse=True)
def _machine_cni_dirs_of_the_test(tmp_path, monkeypatch):
    """What CNI plugins write on the machine (netlab.cni.host_writes) is looked for under the test's own folder:
    the machine's /var/lib/cni, which other processes' plugins write meanwhile, never reaches a test's warnings."""
    from netlab.cni import host_writes

    root = tmp_path / "machine-cni"
    monkeypatch.setattr(host_writes, "HOST_DIRS", (str(root / "networks"), str(root / "results")))
