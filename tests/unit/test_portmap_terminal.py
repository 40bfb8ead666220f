"""A builtin pod that has terminated (its containers exited for good: phase Succeeded or Failed) has no hostPort
DNAT, as on a real node (no root).

The kubelet stops a terminal pod's sandbox (syncTerminatingPod -> killPod -> StopPodSandbox), and the runtime's
CNI DEL runs portmap's unforwardPorts: the pod's ``CNI-DN-<hash>`` chain and its dispatch rules go, the shared
chains, their jumps and route_localnet stay. netlab's plan of such a pod kept them: a Completed pod's hostPort
still DNATed to its namespace, where nothing listens. Now the plan of a lab with the pod terminal
(``Lab.with_terminal``, as up, status and trace serve it) holds what the real DEL leaves; the same pod running
keeps its rules. tests/integration/test_terminal_hostport_live.py does it on a real lab."""

from __future__ import annotations

import pytest

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.portmap_rules import container_id, pod_chain
from test_portmap_held import LEFT, localnet, nat, ordered, portmaps, write

JOB = ("  - {name: a, node: n1, restartPolicy: Never,\n"
       "     containers: [{name: web, command: ['true'], ports: [{containerPort: 8080, hostPort: 18080}]}]}\n")


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_terminal_pod_s_host_port_rules_are_what_portmap_s_del_leaves(tmp_path, mode):
    running = resolve(load_topology(write(tmp_path, JOB, mode)))
    chain = pod_chain("cbr0", container_id("fhp", "a"))
    assert chain in nat(running, "n1").chains and len(portmaps(nat(running, "n1"))) == len(LEFT) + 4
    done = running.with_terminal(frozenset({"a"}))
    n1 = nat(done, "n1")
    assert ordered(portmaps(n1)) == ordered(LEFT)
    assert {"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"} <= set(n1.chains)
    assert chain not in n1.chains and not [c for c in n1.chains if c.startswith("CNI-DN-")]
    assert "portmap's" in n1.payload.splitlines()[0]  # the shared chains are still portmap's
    assert localnet(done) == localnet(running) == {("fhp-n1", "1")}  # its DEL leaves route_localnet
