"""The host lifecycle.start (netlab.workload) asks things of, stubbed for the unit tests that run it: a pod's
namespace is always there, each UTS pin a path under tmp_path, the nodes' UTS holders, the cluster DNS's records,
the commands' exit holders and the health checks start with nothing to do, a namespace has no birth time; the
lab's state under tmp_path/state. A test stubs spawning.spawn (and what else it watches) itself."""

from __future__ import annotations

from netlab.feature import StartResult
from netlab.kernel import netns as nsmod
from netlab.kernel import processes as proc
from netlab.realize import state_dir
from netlab.workload import dns_records, exits, health, lifecycle, node_uts


def stub_host(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    monkeypatch.setattr(nsmod, "is_netns_mount", lambda name: True)
    monkeypatch.setattr(lifecycle, "ensure_uts",
                        lambda lab, names, unchanged=(): ({n: str(tmp_path / n) for n in names}, [], []))
    monkeypatch.setattr(node_uts, "start", lambda lab, again: StartResult())
    monkeypatch.setattr(dns_records, "sync", lambda lab, pods: StartResult())
    monkeypatch.setattr(dns_records, "reload", lambda lab, pods: StartResult())
    monkeypatch.setattr(exits, "hold_commands", lambda lab, pods, spawned: None)
    monkeypatch.setattr(health, "start", lambda lab, rec: StartResult())
    monkeypatch.setattr(proc, "ns_birth", lambda path: None)
