"""Readers of a CNI lab (Debian's bridge and host-local, root) that a ``netlab down`` is taking away (QA, 1 run in 25).

status's CNI CHECKs asked the lab's plugin runtime for its folder (cni/lifecycle.runtime), which made ``cni/`` in the
lab's folder, and the folder itself (marked) when the down had taken it already. A ``down`` held while its folder
holds nothing but the state, lock and mark (``forget-emptied``) then found ``cni/`` there: it could not take the folder
away, said "lab L is down" (exit 0), and left ``cni/`` at the lab's path, and the next ``down`` said the lab's state was
lost and asked for ``down --force``. A reader never makes a lab's folder nor anything in it: it says the lab is being
taken down (exit 2), and nothing of the lab is left once the down ends.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import STATE_ROOT, netlab
from helpers_racing import started

pytestmark = pytest.mark.root

POINTS = ("down-stopped", "down-deleted", "forget-emptied")
CONFLIST = {"cniVersion": "1.0.0", "name": "cdrace", "plugins": [
    {"type": "bridge", "bridge": "cdbr0", "isGateway": True, "isDefaultGateway": True,
     "ipam": {"type": "host-local"}, "capabilities": {"ips": True, "ipRanges": True}}]}


def _lab_left(lab: str) -> list[str]:
    """What the state folder holds of ``lab``: its folder, or one taken off its path (.LAB.gone.PID)."""
    if not os.path.isdir(STATE_ROOT):
        return []
    return [name for name in os.listdir(STATE_ROOT) if name == lab or name.startswith(f".{lab}.")]


@pytest.mark.parametrize("point", POINTS)
def test_status_and_break_of_a_cni_lab_being_taken_down_leave_nothing_of_it(labs, tmp_path, point):
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("cd")
    labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist}}}}\n"
            "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\n"
            "pods: [{name: a, node: n1}, {name: b, node: n2}]\n")
    down = started("down", "--lab", lab, env={"NETLAB_FAULT_POINT": point, "NETLAB_FAULT_MODE": "pause"})
    procs = [down]
    try:
        assert down.stderr is not None and down.stderr.readline() == f"netlab: paused at {point} (test hook)\n"
        held = sorted(os.listdir(os.path.join(STATE_ROOT, lab)))
        r = netlab("status", "--lab", lab, check=False)
        assert r.returncode == 2 and r.stderr.startswith(f"netlab: lab {lab} is being taken down (`netlab down`)"), r
        assert sorted(os.listdir(os.path.join(STATE_ROOT, lab))) == held  # nothing made in it
        # break read the lab up before the down's lock: it waits for it, then finds the lab gone
        brk = started("break", "--lab", lab, "ip-forward-off")
        procs.append(brk)
        assert brk.stderr is not None and brk.stderr.readline() == \
            f"netlab: waiting for pid {down.pid} (netlab down) to release lab {lab}\n"
        assert sorted(os.listdir(os.path.join(STATE_ROOT, lab))) == held
        out, err = down.communicate("\n", timeout=300)
        assert down.returncode == 0 and out.startswith(f"lab {lab} is down ("), (out, err)
        said, err = brk.communicate(timeout=300)
        assert brk.returncode == 2 and f"netlab: lab '{lab}' is not up" in err, (said, err)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert _lab_left(lab) == [], os.listdir(os.path.join(STATE_ROOT, lab))
    r = netlab("down", "--lab", lab, check=False)
    assert r.returncode == 0 and r.stdout == f"lab {lab} is not up; nothing to do\n", r
