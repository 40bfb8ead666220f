"""A trace whose fix is a whole `up` (kube-proxy's ruleset gone at its root on the client's node) names the same
command as `status`'s repair line for that lab: `sudo netlab up -t FILE` for a lab made from a file, `sudo netlab
up --lab NAME` for one made from a dict. The trace said `up --lab NAME` for both, while `status`, `break` and
`quiz` (realize.state.repair_up) said `up -t FILE` for a lab from a file, and the trace's own other fixes (a
NetworkPolicy's) too. No root: the lab's state is saved in the test's state directory, the trace goes through
Lab.trace (as `netlab trace` does) up to the packet, which walks the fake kernel of test_trace_walk.py.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import yaml

from netlab import api
from netlab.api import lab as lab_mod
from netlab.api.topology import load
from netlab.errors import netlab_command
from netlab.plan.build import build_plan
from netlab.realize.state import LabState
from netlab.trace import run as trace_run
from netlab.trace.facts import NftTable
from test_trace_missing_rules import NFT_MODE, NftKernel, to_web, traced
from test_trace_walk import FakeKernel

ROOT = Path(__file__).resolve().parents[2]
LAB, N1 = "svc", "svc-node-1"


class Walked(Exception):
    """Where the stub of trace.run._run stops: after the trace read the lab, before any packet is sent."""


def saved_lab(tmp_path, from_file: bool, nft: bool) -> None:
    """Lab svc (topologies/services.yaml) up, as its state says, from a file (a name with a space) or a dict."""
    text = (ROOT / "topologies/services.yaml").read_text()
    if nft:
        text = text.replace("\nnodes:\n", f"\n{NFT_MODE}nodes:\n", 1)
    topology: str | dict = yaml.safe_load(text)
    if from_file:
        path = tmp_path / "my svc.yaml"
        path.write_text(text)
        topology = str(path)
    loaded = load(topology, LAB)
    LabState(lab=LAB, topology=loaded.lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True),
             source=loaded.source, phase="up").save()


def status_repair(monkeypatch) -> str | None:
    """The repair `netlab status --lab svc` prints (and puts in -o json), for a kernel that differs from the plan."""
    differs = types.SimpleNamespace(ok=False, lab=LAB, objects=1, drift=["a rule is missing"], details=[],
                                    warnings=[], reconfigure=False)
    monkeypatch.setattr(lab_mod.lifecycle, "status", lambda state, kernel: differs)
    return lab_mod.internal_status(api.Lab.attach(LAB), None, None).repair


def trace_fix(monkeypatch, nft: bool) -> str:
    """The fix of `netlab trace --lab svc client svc/web --port 80` on node-1 without kube-proxy's ruleset."""
    seen = {}

    def stop(lab, lm, *args, **kw):
        seen.update(lab=lab, lm=lm)
        raise Walked

    monkeypatch.setattr("netlab.kernel.netns.is_netns_mount", lambda name: True)  # the lab's namespaces are there
    monkeypatch.setattr(trace_run, "_run", stop)
    with pytest.raises(Walked):
        api.Lab(LAB).trace("client", "svc/web", proto="tcp", port=80)
    lab, m = seen["lab"], seen["lm"]
    k = (NftKernel if nft else FakeKernel)(lab, build_plan(lab))
    if nft:  # nft delete table ip kube-proxy
        k.nft_table = lambda netns: NftTable(frozenset(), {}, {}, exists=False)
    else:  # iptables -t nat -D PREROUTING/OUTPUT ... -j KUBE-SERVICES; -F, -X KUBE-SERVICES
        k.no_rule |= {(N1, r.line) for r in k.nat_table(N1).rules if r.line.endswith("-j KUBE-SERVICES")}
        k.no_chain.add((N1, "KUBE-SERVICES"))
    walked, verdict = traced(m, k, to_web())
    assert walked.hops[verdict.lost_at].netns == N1 and verdict.fix is not None
    return verdict.fix


@pytest.mark.parametrize("nft", [True, False], ids=["nftables", "iptables"])
@pytest.mark.parametrize("from_file", [True, False], ids=["file", "dict"])
def test_a_traces_whole_up_fix_is_the_repair_status_prints(state_root, tmp_path, monkeypatch, from_file, nft):
    saved_lab(tmp_path, from_file, nft)
    repair = status_repair(monkeypatch)
    assert repair == netlab_command(f"up -t '{tmp_path}/my svc.yaml'" if from_file else f"up --lab {LAB}")

    assert trace_fix(monkeypatch, nft) == repair
