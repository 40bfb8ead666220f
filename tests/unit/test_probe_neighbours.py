"""The neighbour-table budget and warning (no root: thresholds are passed in)."""

from __future__ import annotations

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import neighbours as nb
from netlab.probe.runner import window_for

DEFAULT = {"gc_thresh1": 128, "gc_thresh2": 512, "gc_thresh3": 1024}


def one_bridge(n: int, mode: str = "vxlan"):
    pods = [{"name": f"p{i}", "node": "n1"} for i in range(n)]
    return resolve(Topology.model_validate({"name": "nb", "network": {"mode": mode},
                                            "nodes": [{"name": "n1"}, {"name": "n2"}], "pods": pods}))


def test_full_mesh_is_quadratic_per_bridge():
    assert nb.full_mesh_entries(one_bridge(4)) == 4 * 3 + 2 * 4
    assert nb.full_mesh_entries(one_bridge(4, "host-gw")) == 4 * 3 + 2 * 4 + 2


def test_small_lab_no_warning_big_lab_names_the_sysctl():
    assert nb.neighbour_budget_warning(one_bridge(10), DEFAULT) is None
    warning = nb.neighbour_budget_warning(one_bridge(33), DEFAULT)
    assert warning and "net.ipv4.neigh.default.gc_thresh3" in warning and "1024" in warning
    assert "sudo sysctl -w" in warning
    # A host that already raised the limit gets no warning.
    assert nb.neighbour_budget_warning(one_bridge(33), {**DEFAULT, "gc_thresh3": 8192}) is None


def test_budget_stays_below_gc_thresh2_with_margin():
    stats = nb.TableStats(entries=100, forced_gc_runs=0, table_fulls=0)
    assert nb.probe_budget(DEFAULT, stats) == 512 - 100 - nb.MARGIN
    crowded = nb.TableStats(entries=1000, forced_gc_runs=0, table_fulls=0)
    assert nb.probe_budget(DEFAULT, crowded) == 32  # still makes progress
    # Pairs in flight: two entries each, after the linear entries of the lab.
    lab = one_bridge(50)
    assert window_for(lab, DEFAULT, stats) == (512 - 100 - nb.MARGIN - 100) // 2


def test_delete_request_is_a_well_formed_rtm_delneigh():
    msg = nb.delete_request(3, "10.244.0.2", seq=7)
    length, kind, flags, seq, _ = nb.NLMSG.unpack_from(msg)
    assert length == len(msg) == 36 and kind == nb.RTM_DELNEIGH and flags == nb.NLM_F_REQUEST and seq == 7
    fam, _, _, ifindex, _, _, _ = nb.NDMSG.unpack_from(msg, 16)
    assert (fam, ifindex) == (2, 3)
    assert msg[-4:] == bytes([10, 244, 0, 2])
