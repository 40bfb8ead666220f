"""A running lab whose state a newer netlab rewrote, with a record this netlab does not know (root, one lab).

An `up --watch` left running across an upgrade, or a downgrade, reads a state a newer release wrote: a record
under ``extra`` and a top-level key this release does not know, and that release's own sum beside it (another
stamp: this netlab checks the file whole). `status`, `up` and a watcher's reloads take it, never calling it
corrupt, and every rewrite keeps the records as they were; `down` takes the lab away (docs/json.md, "The state
file").
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess

import pytest

from helpers import netlab, state_path, unique_lab, write_topology
from watching import container_pid, topology, watching

pytestmark = pytest.mark.root

LEASES = {"version": 3, "leases": {"a": ["10.244.0.9"]}}  # a record a newer release keeps
WRITER = {"netlab": "9.0"}  # a top-level key of the same state format
STAMP = "fedcba9876543210"  # what checks a state in that release (state_sum.stamp): not this one's


def as_newer(lab: str) -> None:
    """The lab's state as a newer netlab rewrites it, atomically as netlab writes it: the records added, then its
    sum (``STAMP SHA256``, state_sum.line_for's line) beside it."""
    path = state_path(lab, "state.json")
    with open(path) as fh:
        data = json.load(fh)
    data["extra"]["leases"] = LEASES
    data["writer"] = WRITER
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    for name, content in (("state.json", raw), ("state.sum", f"{STAMP} {hashlib.sha256(raw).hexdigest()}\n".encode())):
        tmp = state_path(lab, f"{name}.tmp.{os.getpid()}")
        with open(tmp, "wb") as fh:
            fh.write(content)
        os.chmod(tmp, 0o600)
        os.rename(tmp, state_path(lab, name))


def kept(lab: str) -> dict:
    """The state file's data, once it holds the records."""
    path = state_path(lab, "state.json")
    with open(path) as fh:
        data = json.load(fh)
    assert data["extra"].get("leases") == LEASES and data.get("writer") == WRITER, data["extra"].keys()
    return data


def netns_of(lab: str) -> list[str]:
    listed = json.loads(subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True,
                                       check=True).stdout or "[]")
    return sorted(ns["name"] for ns in listed if ns["name"].startswith(lab + "-"))


def test_a_newer_releases_state_records_are_kept_by_status_up_and_the_watcher(tmp_path):
    lab = unique_lab("sc")
    path = write_topology(tmp_path, topology(lab), f"{lab}.yaml")
    with watching(lab) as start:  # on the way out: its watchers stopped, the lab taken down
        netlab("up", "-t", path)
        as_newer(lab)
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 0 and "corrupt" not in status.stdout + status.stderr, status
        assert "c" not in {p["name"] for p in kept(lab)["topology"]["pods"]}
        # An `up` that changes the lab (a pod more) rewrites the state (its new pod says so; the file's inode number
        # does not: a freed inode's number is handed out again): the records stay
        write_topology(tmp_path, topology(lab, "  - {name: c, node: node-2}\n"), f"{lab}.yaml")
        netlab("up", "-t", path)
        data = kept(lab)
        assert "c" in {p["name"] for p in data["topology"]["pods"]}
        assert netlab("status", "--lab", lab, check=False).returncode == 0
        # `up --watch`: its first apply reads the newer state; then the newer netlab rewrites it again, and the
        # watcher's restart of a killed container reads it and rewrites it
        as_newer(lab)
        watcher = start(path, resync="1")
        as_newer(lab)
        mark = len(watcher.lines)
        os.kill(container_pid(lab, "a"), signal.SIGKILL)
        line = watcher.wait_for_line("container a/main exited (exit 137)", after=mark, timeout=20)
        assert "did: restarted container a/main" in line, "\n".join(watcher.lines)
        assert watcher.proc.poll() is None and not any("corrupt" in x for x in watcher.lines), watcher.lines
        data = kept(lab)
        assert data["extra"]["workload"]["pods"]["a"]["containers"]["main"]["restarts"] == 1
        assert watcher.stop() == 0, watcher.lines
        assert not any("corrupt" in x for x in watcher.lines), watcher.lines
        assert netns_of(lab)
        netlab("down", "--lab", lab)
        assert netns_of(lab) == [] and not os.path.exists(state_path(lab, "state.json"))
