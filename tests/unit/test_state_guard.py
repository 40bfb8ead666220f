"""Unit tests never reach the machine's /run/netlab (conftest.py and state_guard.py): two read a lab's state
through it and left /run/netlab/g and /run/netlab/qx1f behind, and others said "is not up (labs up: ...)" of
whatever labs ran on the machine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import state_guard
from netlab.realize import lab_list, state_dir, tags
from netlab.realize.state import load_state
from state_guard import Guard

REAL = state_dir.DEFAULT_STATE_ROOT


def test_every_test_has_a_state_directory_of_its_own_for_netlab_and_the_processes_it_starts(state_root):
    assert state_dir.STATE_ROOT == str(state_root) == os.environ["NETLAB_STATE_DIR"]
    child = subprocess.run([sys.executable, "-c", "from netlab.realize import state_dir; print(state_dir.STATE_ROOT)"],
                           capture_output=True, text=True, check=True)
    assert child.stdout == f"{state_root}\n"


def test_without_asking_for_one_too():
    assert not state_dir.STATE_ROOT.startswith(REAL + "/") and state_dir.STATE_ROOT != REAL
    assert os.environ["NETLAB_STATE_DIR"] == state_dir.STATE_ROOT
    assert lab_list.known_labs() == []  # the machine's labs are not this test's
    assert tags.ETC_NETNS != "/etc/netns" and tags.pod_file_labs() == []  # nor their pods' files


@pytest.mark.parametrize("reach", [
    lambda: os.listdir(REAL),
    lambda: open(os.path.join(REAL, "demo", "state.json"), "rb"),
    lambda: os.rmdir(os.path.join(REAL, "netlab-unit-no-such-lab")),
    lambda: os.rename("/tmp/netlab-unit-no-such-file", os.path.join(REAL, "x")),
    lambda: os.listdir(REAL.encode()),
    lambda: os.listdir(REAL + "/demo/.."),
])
def test_a_file_operation_under_the_real_state_directory_fails_the_test(reach, request):
    """Stopped before the system call is made, and recorded, so that a test whose code swallows the failure
    still fails once it ends. (Each reach here changes nothing should the guard let it through.)"""
    with pytest.raises(pytest.fail.Exception, match="reached the machine's lab folders"):
        reach()
    assert len(Guard.hits) == 1 and Guard.hits[0].startswith(f"{request.node.nodeid} reached")
    Guard.hits.clear()  # this test's own reach: not a failure of it


def test_netlab_pointed_back_at_the_real_directory_is_stopped_too(monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", REAL)
    with pytest.raises(pytest.fail.Exception, match="open /run/netlab/netlab-unit-none/state.json"):
        load_state("netlab-unit-none")
    Guard.hits.clear()


@pytest.mark.parametrize("path", ["/run/netlab-neighbours.lock", "/run/netlabx", "/run", "/tmp/run/netlab", 3])
def test_other_paths_are_not_the_state_directory(path):
    assert not state_guard.reached(path)


@pytest.mark.parametrize("path", [REAL, REAL + "/", REAL + "/lab/state.json", REAL.encode() + b"/x"])
def test_the_state_directory_and_what_it_holds_are(path):
    assert state_guard.reached(path)
