"""A CNI lab on a state folder that fills up (QA q50 1): the CNI call log (<lab>/cni/calls.jsonl), written at every
ADD and DEL, is best effort. An `up` whose disk ran out at its first ADD was rolled back, but the rollback's DEL
failed on the log too ("the rollback failed too: [Errno 28]"), leaving the lab's 5 namespaces; `down` then failed
the same way, said as "cannot write the output" (its stdout was a pipe). docs/reliability.md: on a full disk `up`
fails, rolled back, nothing left; `down` still removes the lab. Real tmpfs, Debian's plugins, real namespaces (root).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers import NETLAB, lab_namespaces, write_topology
from private_mounts import PrivateMounts
from test_state_safety import Tmpfs

pytestmark = pytest.mark.root

WARNING = "netlab: warning: cannot write the CNI call log {}/{}/cni/calls.jsonl: No space left on device; the plugin " \
          "calls go on without it (`netlab cni log` misses them)"


def topology(lab: str) -> str:
    return (f"name: {lab}\nnetwork: {{mode: vxlan, cni: reference}}\nnodes: [{{name: n1}}, {{name: n2}}]\n"
            "pods: [{name: a, node: n1}, {name: b, node: n2}]\n")


def netns_list(lab: str) -> list[str]:
    """`ip netns list`'s names of the lab's namespaces."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith(f"{lab}-")]


@pytest.fixture
def small_fs(tmp_path, labs):
    """A tmpfs of 2 MiB, mounted in the test's own mount namespace (private_mounts.py), where the test's netlab
    commands run (``fs.netlab``, ``fs.ns.argv``): a killed run leaves no mount on the host."""
    mounts: list[Tmpfs] = []
    ns = PrivateMounts(str(tmp_path))

    def make() -> Tmpfs:
        mounts.append(Tmpfs(ns, tmp_path / f"state{len(mounts)}", "2m"))
        return mounts[-1]

    try:
        yield make
        for fs in mounts:
            for lab in labs.names:  # before the labs fixture looks in the default state directory
                filler = os.path.join(fs.seen, "filler")
                if os.path.exists(filler):
                    os.unlink(filler)
                fs.netlab("down", "--lab", lab, "--force", check=False, env=fs.env)
            fs.unmount()
    finally:
        ns.close()


def test_an_up_whose_disk_fills_at_its_first_add_is_rolled_back_whole(labs, small_fs, tmp_path):
    lab = labs.name("nsf")
    path = write_topology(tmp_path, topology(lab))
    fs = small_fs()
    env = {**os.environ, **fs.env, "NETLAB_FAULT_POINT": "cni-adding", "NETLAB_FAULT_MODE": "pause"}
    proc = subprocess.Popen(fs.ns.argv(NETLAB + ["up", "-t", path]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        seen = []
        while not seen or "paused at cni-adding" not in seen[-1]:  # the pods' records written, no plugin run
            line = proc.stderr.readline()
            assert line, ("up ended before its pause", seen)
            seen.append(line)
        assert len(netns_list(lab)) == 5
        fs.fill()  # the disk is full from the first ADD on
        out, err = proc.communicate("\n", timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    assert "rolled back" in err and "the rollback failed" not in err, err
    assert err.count("cannot write the CNI call log") == 1 and WARNING.format(fs.path, lab) in err.splitlines(), err
    assert netns_list(lab) == [] and lab_namespaces(lab) == [], err
    assert os.listdir(fs.seen) == ["filler"], err


def test_down_of_a_cni_lab_on_a_full_disk_removes_it(labs, small_fs, tmp_path):
    """The lab as the QA's failed rollback left it (an up killed once its pods' records said "adding", no plugin run,
    no container started: nothing a down removes frees a page before its DELs), then the disk full: `down` DELs
    every pod and takes the lab away, the log's failure one warning; it was "cannot write the output", exit 3."""
    lab = labs.name("nsg")
    path = write_topology(tmp_path, topology(lab))
    fs = small_fs()
    killed = fs.netlab("up", "-t", path, check=False, env={**fs.env, "NETLAB_FAULT_POINT": "cni-adding",
                                                           "NETLAB_FAULT_MODE": "kill"})
    assert killed.returncode == -9, killed
    assert len(netns_list(lab)) == 5
    fs.fill()
    down = fs.netlab("down", "--lab", lab, check=False, env=fs.env)
    assert down.returncode == 0, down.stderr
    assert down.stderr.splitlines() == [WARNING.format(fs.path, lab)], down.stderr  # not "cannot write the output"
    assert netns_list(lab) == [] and lab_namespaces(lab) == []
    assert os.listdir(fs.seen) == ["filler"]
