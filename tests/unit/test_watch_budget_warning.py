"""`up --watch`'s first line says up's neighbour-table warning as plain `up` does, and records it as said
(probe/budget_said): the watcher said none and recorded none, so the next `up` said it as if new (closing61's left
item), and a watcher of a lab that needs more ARP entries than the machine's table holds never warned."""

from __future__ import annotations

import types

from test_probe_neighbours import one_bridge

from netlab.api import watch as watch_mod
from netlab.api import watch_repair
from netlab.api.watch import Watcher
from netlab.lab.up import UpResult
from netlab.probe import budget_said
from netlab.probe import neighbours as nb
from netlab.realize.lab_lock import LabLock


def _first_line(monkeypatch, state_root, lab, was, fresh: bool) -> str:
    saved = lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    applied: list[bool] = []
    after = types.SimpleNamespace(name=lab.name, topology=saved)
    monkeypatch.setattr(watch_mod, "become_subreaper", lambda: None)
    monkeypatch.setattr(watch_mod, "stale", types.SimpleNamespace(watching=lambda name, on=True: None))
    monkeypatch.setattr(watch_mod, "load", lambda path: types.SimpleNamespace(lab=lab, source=path, origin=path))
    monkeypatch.setattr(watch_mod, "load_state", lambda name: after if applied else was)
    monkeypatch.setattr(watch_mod, "served_lab", lambda state: None)
    monkeypatch.setattr(watch_mod, "lab_lock_stamp", lambda name: None)

    def up(lab_, source, features):
        with LabLock(lab.name, "netlab up"):  # its folder, lock file and state, as up leaves them
            (state_root / lab.name / "state.json").write_text("{}")
        applied.append(True)
        return UpResult(lab.name, fresh=fresh)

    monkeypatch.setattr(watch_mod.lifecycle, "up", up)
    monkeypatch.setattr(Watcher, "_relisten", lambda self, lab_, made, own=(), heard=(): [])
    monkeypatch.setattr(watch_repair, "drift", lambda state: [])
    monkeypatch.setattr(Watcher, "exited_before", lambda self: {})
    monkeypatch.setattr(Watcher, "held_before", lambda self, lab_, state, before: "")
    monkeypatch.setattr(Watcher, "failed_starts", lambda self, lab_, state: [])
    monkeypatch.setattr(Watcher, "_file_id", lambda self: None)
    lines: list[str] = []
    w = Watcher("/x/nb.yaml", lab.name, lines.append)
    w.kids = types.SimpleNamespace(listen_for_exits=lambda: None, track=lambda lab_, state: None)
    w.writes = types.SimpleNamespace(watch=lambda path: None)
    w.start()
    [line] = lines
    return line


def test_the_watchers_first_line_says_the_neighbour_warning_once_and_records_it(monkeypatch, state_root):
    monkeypatch.setattr(nb, "read_thresholds", lambda: {"gc_thresh1": 128, "gc_thresh2": 512, "gc_thresh3": 1024})
    lab = one_bridge(40)
    words = nb.neighbour_budget_warning(lab)
    assert words
    line = _first_line(monkeypatch, state_root, lab, None, fresh=True)  # the lab made by the watcher's apply
    assert line.endswith(f"; warning: {words}; watching"), line
    assert budget_said.said(lab.name) == words  # the next `up` leaves it off: said here
    saved = lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    again = _first_line(monkeypatch, state_root, lab, types.SimpleNamespace(name=lab.name, topology=saved), False)
    assert "warning" not in again and again.endswith("; watching"), again  # said at the up before: not again
    assert budget_said.said(lab.name) == words
