"""netlab's echo server in real pods (root): how it is launched, what it answers, and its running state."""

from __future__ import annotations

import os
import time

import pytest

from helpers import two_node_topology

pytestmark = pytest.mark.root

LAUNCHES = 40  # a 1-in-6 race survives 40 launches with probability (5/6)**40 < 0.1 %


def test_every_launched_echo_server_is_recorded(labs, tmp_path):
    """The launcher (echo.py --spawn) and its children report on one pipe; up must learn every child's pid.

    A child that listened and said so before its launcher had written the child's pid was once
    left unrecorded (the reader stopped at the last "ready" and closed the pipe, the launcher died
    of a broken pipe): `up` reported a failure, and every later `up` met "Address already in use".
    """
    from netlab.workload import lifecycle, processes

    lab = labs.name("ec")
    labs.up(two_node_topology(lab, pods_per_node=1))
    netns = f"{lab}-fedora-1"
    failures = []
    t0 = time.monotonic()
    for i in range(LAUNCHES):
        # Four containers per launch, as `up` launches every new pod's echo server at once: the
        # last child's "ready" and the launcher's last pid report are the two that race.
        names = [f"race{i}x{k}" for k in range(4)]
        specs = [{"id": f"fedora-1/{c}", "pod": "fedora-1", "netns": netns, "netns_path": processes.netns_path(netns),
                  "uts": None, "log": str(tmp_path / f"{c}.log"), "ports": [[9100 + k, "TCP"]],
                  "env": {"PATH": lifecycle.CONTAINER_PATH}} for k, c in enumerate(names)]
        pods = {"fedora-1": {"containers": {c: {} for c in names}}}
        problems = lifecycle._await_echo(lifecycle._launch_echo(specs), specs, pods)
        recs = pods["fedora-1"]["containers"]
        started = [processes.ProcId(r["pid"], r["start"]) for r in recs.values() if "pid" in r]
        if problems or len(started) != len(names) or not all(processes.alive(p) for p in started):
            failures.append((i, problems, recs))
        # Stop them (the recorded ones; the lab's down stops any other), so the next launch can listen.
        processes.terminate([p.pid for p in started],
                            lambda pid: any(p.pid == pid and processes.alive(p) for p in started))
        if failures:
            break
    assert not failures, failures
    assert time.monotonic() - t0 < 90
