"""Which conntrack entries a probe run deletes at its end (agent.py), by exact original tuple.

The kernel side (the entries really go, and the next run's flows are new) is
tests/integration/test_netpol.py::test_each_probe_run_judges_new_udp_flows;
here the tuples: the right source address and port for each kind of flow.
"""

from __future__ import annotations

import socket

from netlab.kernel import conntrack
from netlab.probe import agent
from netlab.probe.job import Job, Task
from netlab.probe.matrix import Observation

UDP, TCP = socket.IPPROTO_UDP, socket.IPPROTO_TCP


def untracked(tasks, obs, self_ip, route_src, monkeypatch):
    deleted: dict[str, list[conntrack.Flow]] = {}
    monkeypatch.setattr(conntrack, "delete_flows", lambda ns, flows: deleted.setdefault(ns, []).extend(flows))
    job = Job(tasks=tasks, units=[], home="u-underlay", untrack=["u-n1", "u-n2"])
    counts = agent.Agent(job)._untrack(obs, self_ip, route_src)
    return counts, deleted


def test_answered_udp_and_unanswered_service_flows_go_in_every_node(monkeypatch):
    tasks = [Task(0, "u-a", "10.244.0.3", "udp", 80),                 # pod -> pod, answered
             Task(1, "u-a", "10.244.0.4", "udp", 81),                 # pod -> pod, no answer: nothing to hold
             Task(2, "u-n1", "10.244.0.3", "udp", 80),                # node -> pod, answered
             Task(3, "u-a", "10.244.0.3", "tcp", 80),                 # TCP: a new SYN reopens a closed entry
             Task(4, "u-a", "10.96.0.10", "udp", 53, service=True),   # Service UDP, answered
             Task(5, "u-a", "10.96.0.20", "tcp", 80, service=True)]   # Service, no answer: its NAT decision goes
    obs = {0: Observation("reply", local=":40001"), 1: Observation("timeout", local=":40001"),
           2: Observation("reply", local=":40002"), 3: Observation("reply", local="10.244.0.2:50000"),
           4: Observation("reply", local="10.244.0.2:61001"), 5: Observation("timeout", local="10.244.0.2:61002")}
    counts, deleted = untracked(tasks, obs, {"u-a": "10.244.0.2"}, {("u-n1", "10.244.0.3"): "10.244.0.1"},
                                monkeypatch)
    assert counts == (1, 3)
    want = [conntrack.Flow(TCP, "10.244.0.2", 61002, "10.96.0.20", 80),
            conntrack.Flow(UDP, "10.244.0.2", 40001, "10.244.0.3", 80),
            conntrack.Flow(UDP, "10.244.0.1", 40002, "10.244.0.3", 80),  # the node's route picks cni0's address
            conntrack.Flow(UDP, "10.244.0.2", 61001, "10.96.0.10", 53)]  # kept its endpoint: a later flow too
    assert deleted == {"u-n1": want, "u-n2": want}


def test_nothing_to_delete_asks_the_kernel_nothing(monkeypatch):
    tasks = [Task(0, "u-a", "10.244.0.3", "icmp"), Task(1, "u-a", "10.244.0.3", "udp", 80)]
    obs = {0: Observation("reply", local="10.244.0.2"), 1: Observation("refused", local=":40001")}
    assert untracked(tasks, obs, {"u-a": "10.244.0.2"}, {}, monkeypatch) == ((0, 0), {})
