"""`netlab probe`, `netlab trace` and `netlab policy table` (real processes, real packets), and `Lab.reach`, of a
broken lab another command holds, as `up` holds it while it repairs the lab: the test takes the lab's lock
(lab_lock.LabLock, "netlab up").

QA: `netlab probe --lab L` beside a `netlab up --lab L` repairing a missing pod CIDR route said "6/18 probes as
expected", exit 1, and `netlab trace --lab L pa pb` "LOST ... route missing", exit 1, naming neither the up at work,
where `status` said "lab L is being changed by pid N (netlab up) ... run status again once it has finished", exit 3.
The deterministic races are in tests/unit/test_probe_trace_while_changed.py; here the real lock across processes.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from helpers import in_netns, netlab, without_turn_waits
from test_trace_lost_at_gateway_live import HOST_GW  # two nodes, host-gw: a pod CIDR route to break
from netlab.api.lab import Lab
from netlab.errors import LabBusy, UsageError
from netlab.realize import lab_lock

pytestmark = pytest.mark.root


def test_probe_and_trace_name_the_up_holding_a_broken_lab(labs):
    lab = labs.name("pb")
    labs.up(HOST_GW.format(lab=lab))
    netlab("break", "pod-cidr-route-missing", "--lab", lab, "--target", "a")
    routes = json.loads(in_netns(f"{lab}-a", "ip", "-j", "route", check=True).stdout)
    assert not [r for r in routes if r.get("gateway") and r["dst"] != "default"], routes  # broken: no route to b's
    me = f"pid {os.getpid()} (netlab up)"
    with lab_lock.LabLock(lab, "netlab up"):  # an up at work on the lab (its repair not done yet)
        probed = netlab("probe", "--lab", lab, check=False)
        traced = netlab("trace", "--lab", lab, "pa", "pb", check=False)
        tabled = netlab("policy", "table", "--lab", lab, check=False)
        with pytest.raises(LabBusy, match=re.escape(f"lab {lab} is being changed by {me} while reach read it: what "
                                                    "the probe met then is its work half done")):
            Lab.attach(lab).reach("pa", "pb", proto="icmp")
        # a name the lab does not have is the user's mistake, whoever holds the lab: said as when nobody does
        typos = [netlab("trace", "--lab", lab, *args, check=False) for args in (("pa", "zzz"), ("zz", "pa"),
                                                                                 ("pa", "svc/nosuch"))]
        with pytest.raises(UsageError, match=re.escape(f"lab {lab} has no pod, node or internet host 'zzz'")):
            Lab.attach(lab).reach("pa", "zzz")
    for typo in typos:
        assert (typo.returncode, typo.stdout) == (2, ""), typo
        assert "being changed" not in typo.stderr and "half done" not in typo.stderr, typo.stderr
    assert f"lab {lab} has no pod, node, internet host or Service 'zzz'" in typos[0].stderr, typos[0].stderr
    assert f"lab {lab} has no pod, node or internet host 'zz' to send from" in typos[1].stderr, typos[1].stderr
    assert "'nosuch'" in typos[2].stderr, typos[2].stderr
    assert (probed.returncode, probed.stdout) == (3, ""), probed
    said = without_turn_waits(probed.stderr)  # another worker's probe may hold the machine's turn: a line of its own
    assert said.startswith(f"netlab: lab {lab} is being changed by {me} while probe read it: what the "
                           "probes met then is its work half done"), probed.stderr
    assert said.rstrip().endswith("run probe again once it has finished"), probed.stderr
    assert traced.returncode == 3 and "LOST" not in traced.stdout, traced
    assert f"netlab: lab {lab} is being changed by {me} while trace read it: " in traced.stderr, traced.stderr
    assert (tabled.returncode, tabled.stdout) == (3, ""), tabled
    assert f"netlab: lab {lab} is being changed by {me} while policy table read it: " in tabled.stderr, tabled
    # Nobody at work now: the same failures are the lab's own, said as before.
    probed = netlab("probe", "--lab", lab, check=False)
    assert probed.returncode == 1 and "being changed" not in probed.stderr, probed
    traced = netlab("trace", "--lab", lab, "pa", "pb", check=False)
    assert traced.returncode == 1 and "LOST" in traced.stdout and "being changed" not in traced.stderr, traced
    reached = Lab.attach(lab).reach("pa", "pb", proto="icmp")
    assert not reached.reachable and not reached.as_expected, reached
    netlab("up", "--lab", lab)
    assert netlab("probe", "--lab", lab).returncode == 0
