"""Words a learner reads: one conntrack entry is "1 entry" (it said "1 entries"), one namespace removed by down
"1 namespace"; the internet's machines are named by what they are ("internet host example", not "internet
example", which reads as a place)."""

from __future__ import annotations

import os

from netlab.cli.inspect_text import conntrack_lines
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.trace.targets import lab_map

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_one_conntrack_entry_is_one_entry():
    one = {"total": 1, "by_protocol": {"unknown": 1}, "translated": 0, "by_state": {}, "entries": None}
    assert conntrack_lines(one, "n1", "l")[0] == "1 entry: unknown 1"
    two = {**one, "total": 2, "by_protocol": {"udp": 2}}
    assert conntrack_lines(two, "n1", "l")[0] == "2 entries: udp 2"


def test_the_internets_machines_are_named_by_what_they_are():
    lab = resolve(load_topology(os.path.join(ROOT, "topologies", "services.yaml")))
    names = lab_map(lab).names
    assert names[f"{lab.name}-example"] == "internet host example"
    assert names[f"{lab.name}-gateway"] == "internet gateway"
    assert names[f"{lab.name}-web-1"] == "pod web-1"


def test_down_counts_one_namespace_as_one(monkeypatch):
    import types

    from cli_inprocess import run_cli

    from netlab import api
    from netlab.cli import lab as cli_lab

    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    monkeypatch.setattr(api, "selected_name", lambda *a, **k: "l")
    done = types.SimpleNamespace(was_up=True, removed_netns=["l-underlay"], removed_pod_files=[], skipped=[],
                                 problems=[], stopped_processes=[])
    monkeypatch.setattr(api.Lab, "down", lambda self, **kw: done)
    assert run_cli("down", "--lab", "l").stdout == "lab l is down (1 namespace removed)\n"


def test_one_conntrack_filter_on_one_node_is_said_in_the_singular(monkeypatch):
    """up said "deleted stale UDP conntrack entries (1 filters) in 1 nodes"; and it said it whatever the kernel
    deleted, nothing too (a filter whose Service no client used since): now the entries the kernel deleted."""
    import types

    from netlab.services import lifecycle

    monkeypatch.setattr(lifecycle, "udp_endpoints", lambda lab: (set(), set()))
    monkeypatch.setattr(lifecycle, "udp_frontends", lambda lab: {})
    monkeypatch.setattr(lifecycle, "conntrack_deletions", lambda before, after, empty, more: [("10.96.0.10", 53)])
    monkeypatch.setattr(lifecycle.nsmod, "is_netns_mount", lambda name: True)
    deleted = {"w-n1": [1], "w-n2": [0, 0]}
    monkeypatch.setattr(lifecycle.conntrack, "delete_counted", lambda netns, filters: (deleted[netns], []))
    lab = types.SimpleNamespace(nodes=[types.SimpleNamespace(netns="w-n1")])
    done = lifecycle.sync_conntrack(lab, {"udp": [], "udp_empty": []})  # type: ignore[arg-type]
    assert done.actions == ["deleted 1 stale UDP conntrack entry (1 filter in 1 node)"]
    lab.nodes.append(types.SimpleNamespace(netns="w-n2"))
    monkeypatch.setattr(lifecycle, "conntrack_deletions", lambda before, after, empty, more: [1, 2])
    deleted.update({"w-n1": [2, 1]})
    assert lifecycle.sync_conntrack(lab, {"udp": [], "udp_empty": []}).actions == [  # type: ignore[arg-type]
        "deleted 3 stale UDP conntrack entries (2 filters in 2 nodes)"]
    deleted.update({"w-n1": [0, 0]})
    assert lifecycle.sync_conntrack(lab, {"udp": [], "udp_empty": []}).actions == []  # type: ignore[arg-type]
