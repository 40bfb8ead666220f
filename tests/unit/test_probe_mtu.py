"""probe --mtu: a full-size echo per pair, as big as the pods' MTU, carried to the agent's task."""

from __future__ import annotations

from netlab.api.topology import load
from netlab.probe.job import task_for
from netlab.probe.matrix import build_matrix


def test_mtu_probes_only_when_asked():
    lab = load(None).lab
    plain = build_matrix(lab)
    assert not [p for p in plain if p.proto == "mtu"]
    full = build_matrix(lab, ("icmp", "tcp", "udp", "mtu"))
    mtu = [p for p in full if p.proto == "mtu"]
    icmp = [p for p in full if p.proto == "icmp"]
    assert [(p.source.name, p.destination.name) for p in mtu] == [(p.source.name, p.destination.name) for p in icmp]
    assert {p.size for p in mtu} == {lab.pod_mtu - 20}  # 1430: ICMP header and payload of a 1450-byte packet
    assert len(full) == len(plain) + len(mtu)
    task = task_for(0, mtu[0])
    assert task.proto == "mtu" and task.size == 1430
    assert task_for(1, icmp[0]).size == 0
