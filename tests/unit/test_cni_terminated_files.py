"""A CNI lab's terminal pod whose stopped sandbox's namespace `up` removes (cni/terminated.py) loses its files in
/etc/netns/<namespace>/ with it: they are the pod's (``ip netns exec`` mounts them over /etc in that namespace, which
is no more), recorded in the lab's state. They stayed as long as the lab ran. Only the files and the folder the
records name go (a file someone put there stays, and with it the folder); the next `up` writes none again, status
expects none, and a pod that runs again gets them back. Fake plugins, fake kernel, /etc/netns a temporary folder
(the real thing: tests/integration/test_cni_terminal_files_live.py)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from netlab.api.lifecycle import moot_checks
from netlab.cni import lifecycle
from netlab.feature import ModuleFeature
from netlab.kernel import features
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.realize import state as state_mod, tags
from netlab.realize.state_dir import lab_dir
from netlab.realize.state_sum import SUM_FILE
from netlab.services import lifecycle as services, netns_files
from netlab.workload import terminal
from test_cni_terminated import world  # noqa: F401 - the fixture: lab fktm (pods a, b), `done` its terminal pods

FEATURES = [ModuleFeature(lifecycle), ModuleFeature(services)]


@pytest.fixture
def etc(tmp_path, monkeypatch):
    path = tmp_path / "etc-netns"
    monkeypatch.setattr(tags, "ETC_NETNS", str(path))
    monkeypatch.setattr(netns_files, "ETC_NETNS", str(path))
    return path


def up(lab, k):
    """cni_fakes.up, with the Services feature too (the pods' files): its state read as any other netlab reads it."""
    result = lab_up.up(lab, k, features=FEATURES, journal=Journal(k))
    sum_file = os.path.join(lab_dir(lab.name, create=False), SUM_FILE)
    if os.path.exists(sum_file):
        os.unlink(sum_file)
    return result


def files(etc) -> list[str]:
    return sorted(f"{d.name}/{f.name}" for d in etc.iterdir() for f in d.iterdir()) if etc.exists() else []


def recorded(lab_name: str) -> dict:
    rec = state_mod.load_state(lab_name).extra["services"]
    return {kind: dict(rec[kind]) for kind in ("hosts", "dirs")}


def test_a_terminal_pods_files_go_with_its_namespace_and_are_not_written_again(world, etc, monkeypatch):  # noqa: F811
    lab, plugins, done, k = world
    up(lab, k)
    assert files(etc) == ["fktm-a/hosts", "fktm-b/hosts"]
    done.add("a")
    result = up(lab, k)  # its sandbox's DEL, then its namespace removed: its files with it
    assert not k.netns_mounted("fktm-a")
    assert files(etc) == ["fktm-b/hosts"] and not (etc / "fktm-a").exists()
    assert recorded(lab.name) == {"hosts": {"fktm-b": "created"}, "dirs": {"fktm-b": "created"}}
    assert not any("fktm-a" in line for line in result.warnings), result.warnings
    st = state_mod.load_state(lab.name)
    assert lab_status.status(st, k, FEATURES).drift == []  # none expected for it
    # and a repair `up` on a read-only /etc/netns (the doctor's pod-files FAIL) writes nothing there: not refused
    monkeypatch.setattr(features, "directory", lambda path: SimpleNamespace(read_only=True))
    monkeypatch.setattr(terminal, "terminal_pods", lambda lab_, state: frozenset(done))
    assert moot_checks(lab) == ("pod-files",)
    again = up(lab, k)  # none written again
    assert files(etc) == ["fktm-b/hosts"] and not any("fktm-a" in line for line in again.fixed), again.fixed
    teardown.down(lab.name, k, FEATURES)
    assert files(etc) == []


def test_only_the_recorded_files_go_and_a_pod_that_runs_again_gets_them_back(world, etc):  # noqa: F811
    lab, plugins, done, k = world
    up(lab, k)
    (etc / "fktm-a" / "notes").write_text("a user's file\n")  # not netlab's: it stays, and keeps the folder
    done.add("a")
    up(lab, k)
    assert files(etc) == ["fktm-a/notes", "fktm-b/hosts"]
    assert recorded(lab.name)["dirs"] == {"fktm-b": "created"}  # the folder is the user's now (their file holds it)
    done.clear()  # its command changed: it runs again, in a namespace of a new sandbox, with its files
    up(lab, k)
    assert k.netns_mounted("fktm-a") and files(etc) == ["fktm-a/hosts", "fktm-a/notes", "fktm-b/hosts"]
    teardown.down(lab.name, k, FEATURES)
    assert files(etc) == ["fktm-a/notes"]
