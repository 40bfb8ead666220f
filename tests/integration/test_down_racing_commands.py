"""Commands run while a real `netlab down` of the lab is halfway (QA q15 defects 1 and 3).

The down is held at its test hook ``down-deleted`` (NETLAB_FAULT_MODE=pause): its namespaces deleted, its state
(phase deleting) kept, the lab's lock held. It goes on when the test writes a line to it: no sleep, no timing.
`exec`, `get pods|nodes`, `probe`, `status` and `impair` then say the lab is being taken down (exit 2), not that it is
broken (probe said "start it", status "being changed by pid N", exit 3; get nodes printed its table). `up --lab` and `break`, which read the lab up and then wait for the down's lock, are refused once they
hold it, as for a lab that is not up: `up --lab` made the lab again after down had said "is down". The kernel
(`ip netns list`) and the state folder show nothing of the lab left.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from helpers import lab_namespaces, netlab, state_path
from helpers_racing import lab_and_processes, started
from netlab.errors import netlab_command

pytestmark = pytest.mark.root


def test_commands_meeting_a_down_halfway_say_so_and_nothing_makes_the_lab_again(tmp_path):
    with lab_and_processes(tmp_path, "cc") as (lab, _, procs):
        assert len(lab_namespaces(lab)) == 5
        down = started("down", "--lab", lab, env={"NETLAB_FAULT_POINT": "down-deleted", "NETLAB_FAULT_MODE": "pause"})
        procs.append(down)
        assert down.stderr.readline() == "netlab: paused at down-deleted (test hook)\n"
        holder = f"pid {down.pid} (netlab down)"
        assert lab_namespaces(lab) == []  # the kernel: deleted; the state says so
        with open(state_path(lab, "state.json")) as fh:
            assert json.load(fh)["phase"] == "deleting"

        for args in (("exec", "--lab", lab, "fedora-1", "--", "true"), ("get", "pods", "--lab", lab),
                     ("get", "nodes", "--lab", lab), ("probe", "--lab", lab), ("status", "--lab", lab),  # QA q18 2
                     ("impair", "--lab", lab, "fedora-1:eth0", "--loss", "1%")):  # QA q19: it waited, "lab 'L'"
            r = netlab(*args, check=False)
            assert r.returncode == 2, r
            assert len(r.stderr.splitlines()) == 1, r.stderr
            assert r.stderr.startswith(f"netlab: lab {lab} is being taken down (`netlab down`): "), r.stderr

        waiting = []  # they read the lab up (its state is there), then wait for the down's lock
        for args, what in ((("up", "--lab", lab), "up"), (("break", "--lab", lab, "ip-forward-off"), "break")):
            proc = started(*args)
            procs.append(proc)
            assert proc.stderr.readline() == f"netlab: waiting for {holder} to release lab {lab}\n"
            waiting.append((proc, what))

        out, err = down.communicate("\n", timeout=300)  # the down goes on
        assert down.returncode == 0 and out.startswith(f"lab {lab} is down ("), (out, err)
        for proc, what in waiting:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 2, (what, out, err)
            # the labs that are up beside it, if any (other tests' labs in the same state folder), are named too
            said = re.sub(r" \(labs up: [^)]*\)", "", err)
            assert said.splitlines() == [f"netlab: lab '{lab}' is not up: taken down by {holder} while this {what} "
                                         "waited for the lab" + (f"; `{netlab_command('up -t FILE')}` brings it up from a file"
                                                                 if what == "up" else "")], (what, out, err)
        assert lab_namespaces(lab) == [] and not os.path.exists(state_path(lab))
        assert lab not in netlab("list", "-o", "json").stdout
