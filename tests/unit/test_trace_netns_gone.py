"""A namespace deleted while a trace runs (`ip netns del`, `netlab down` in another shell): the trace says so as
the rest of netlab does, with NetnsGone (exit 2, one line, a FileNotFoundError too), not a plain UsageError.

No root: the namespaces are there when the trace looks (is_netns_mount, patched) and gone when it enters them
(no /run/netns file of that name: kernel.netns.entered raises NetnsGone, as for a deleted one). The step hook
deletes them at the moment the trace starts its work, after its check that they exist."""

from __future__ import annotations

import errno

import pytest

from helpers import two_node_topology
from netlab.errors import EXIT_INVALID_INPUT, NetnsGone, UsageError, netlab_command
from netlab.model.naming import NETNS_DIR
from netlab.trace import run as trace_run
from test_trace_walk import lab_from


@pytest.fixture
def deleted(monkeypatch):
    """The lab's namespaces, there until the trace's first step, then deleted."""
    gone: set[str] = set()
    monkeypatch.setattr(trace_run.nsmod, "is_netns_mount", lambda ns: ns not in gone)
    return gone


def test_a_namespace_deleted_during_the_trace_is_netns_gone(deleted):
    lab = lab_from(two_node_topology("trqgone"))

    def step(what: str, i: int, n: int) -> None:
        if i == 0:  # checked, not yet entered: deleted now
            deleted.update(ns for ns in ("trqgone-fedora-1", "trqgone-minikube", "trqgone-minikube-m02",
                                         "trqgone-fedora-2", "trqgone-underlay"))
    with pytest.raises(NetnsGone) as err:
        trace_run.run(lab, "fedora-1", "fedora-2", progress=step)
    assert err.value.netns.startswith("trqgone-") and err.value.exit_code == EXIT_INVALID_INPUT
    assert str(err.value) == (f"namespace {err.value.netns} does not exist; is the lab up? "
                              f"(`{netlab_command('status --lab trqgone')}`)")  # that lab's, whatever other lab is up
    assert isinstance(err.value, FileNotFoundError) and err.value.filename == f"{NETNS_DIR}/{err.value.netns}"


def test_a_file_not_found_about_a_namespace_names_it(deleted, monkeypatch):
    """Met elsewhere than in entering it (a file of /run/netns opened by hand): that namespace is gone."""
    lab = lab_from(two_node_topology("trqgone"))

    def lost(*args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", f"{NETNS_DIR}/trqgone-minikube")
    monkeypatch.setattr(trace_run, "_run", lost)
    with pytest.raises(NetnsGone) as err:
        trace_run.run(lab, "fedora-1", "fedora-2")
    assert err.value.netns == "trqgone-minikube"

    def other(*args, **kwargs):  # not a namespace's file, and every namespace still there: not NetnsGone
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/proc/sys/net/ipv4/x")
    monkeypatch.setattr(trace_run, "_run", other)
    with pytest.raises(UsageError) as plain:
        trace_run.run(lab, "fedora-1", "fedora-2")
    assert not isinstance(plain.value, NetnsGone) and "/proc/sys/net/ipv4/x vanished" in str(plain.value)
