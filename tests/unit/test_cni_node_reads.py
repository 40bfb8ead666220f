"""A status of pods whose chain has no CHECK reads each node once (netlab/cni/node_reads.py), against a fake plugin
chain (a ptp-like plugin, then portmap) and the fake kernel, the live kernel's reads counted.

Each such pod's node side is compared with its cached ADD result (cni/verify_node.py): the node's devices and
routes, and portmap's hostPort DNATs in its nat table. The comparison opened a kernel for each pod and read the
node's namespace and ``iptables-save -t nat`` again for each of its pods: 6 pods of a node, 6 dumps and 6
iptables-save runs of that node in one status. The real plugins in real namespaces are
tests/integration/test_cni_node_side_live.py's.
"""

from __future__ import annotations

import threading
from collections import Counter
from ipaddress import IPv4Interface, IPv4Network

import pytest

from cni_fakes import VethPlugins, cni_topo, cni_world, lab_of, up
from netlab.cni import lifecycle
from netlab.errors import NetnsGone
from netlab.feature import ModuleFeature
from netlab.kernel import live
from netlab.kernel.base import KernelError, Op
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.plan.resources import Address, Route, Veth
from netlab.realize import state as state_mod

PODS = 6  # on each of the two nodes
TOPO = cni_topo("fknr", nodes=2) + "".join(
    f"  - {{name: p{i}, node: n{1 + i % 2}, containers: [{{name: web, ports: [{{containerPort: 8080, "
    f"hostPort: {18000 + i}}}]}}]}}\n" for i in range(2 * PODS))
CONFLIST = {"cniVersion": "0.3.1", "name": "net", "plugins": [  # 0.3.1: no CHECK, the cached result compared
    {"type": "chain"}, {"type": "portmap", "capabilities": {"portMappings": True}}]}


class Plugins(VethPlugins):
    """A ptp-like plugin (the pod's veth, the node's /32 route to it through the host end), then portmap, which
    passes its prevResult on (its DNATs are the counted kernel's nat table)."""

    prefix = "nr"

    def __call__(self, log, *, conf, **kw):
        if conf.get("type") == "portmap":
            return conf.get("prevResult") if kw["command"] == "ADD" else None
        return super().__call__(log, conf=conf, **kw)

    def add(self, pod, ip, env, *, node_netns, netns, host):
        n = int(pod[1:])
        self.kernel.apply([
            Op("add", Veth(netns=node_netns, name=host, mtu=1500, mac=f"02:00:00:00:01:{n:02x}", peer_netns=netns,
                           peer_name="eth0", peer_mac=f"02:00:00:00:02:{n:02x}")),
            Op("add", Address(netns=netns, dev="eth0", address=IPv4Interface(f"{ip}/24"))),
            Op("add", Route(netns=node_netns, dst=IPv4Network(f"{ip}/32"), gateway=None, dev=host, scope="host"))])
        return {"cniVersion": "0.3.1", "interfaces": [{"name": host}, {"name": "eth0", "sandbox": env["CNI_NETNS"]}],
                "ips": [{"version": "4", "address": f"{ip}/24", "interface": 1}]}


def portmap_nat(lab, node: str, without: str = "") -> str:
    """The node's nat table as portmap's ADDs leave it: its pods' hostPort DNATs (but ``without``'s)."""
    lines = ["*nat", "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
             "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT"]
    for pod in lab.pods:
        port = pod.spec.containers[0].ports[0].host_port
        if pod.node == node and pod.name != without:
            lines += [f"-A CNI-HOSTPORT-DNAT -p tcp -m multiport --dports {port} -j CNI-DN-{pod.name}",
                      f"-A CNI-DN-{pod.name} -p tcp -m tcp --dport {port} -j DNAT --to-destination {pod.ip}:8080"]
    return "\n".join(lines + ["COMMIT", ""])


class Counted:
    """The live kernel of the comparison, counted: each kernel made, each namespace dumped, each nat table saved."""

    lock = threading.Lock()

    def __init__(self, k, lab, without: str = ""):
        self.k, self.lab, self.without = k, lab, without
        self.made, self.reads = 0, Counter()

    def __call__(self):
        with self.lock:
            self.made += 1
        return _View(self)


class _View:
    def __init__(self, counted: Counted):
        self.c = counted

    def _count(self, key):
        with self.c.lock:
            self.c.reads[key] += 1

    def snapshot(self, netns, sysctls=(), tables=True):
        self._count(("dump", netns))
        return self.c.k.snapshot(netns, sysctls, tables)

    def iptables_save(self, netns, table, backend=""):
        self._count(("iptables-save", netns))
        node = next(n.name for n in self.c.lab.nodes if n.netns == netns)
        return portmap_nat(self.c.lab, node, self.c.without)

    def forget(self, netns):
        pass

    def close(self):
        pass


@pytest.fixture
def world(tmp_path, monkeypatch):
    k = FakeKernel()
    with cni_world(tmp_path, monkeypatch, TOPO, Plugins(k), conflist=CONFLIST):
        (tmp_path / "bin" / "portmap").write_text("#!/bin/sh\nexit 1\n")  # found, never run
        (tmp_path / "bin" / "portmap").chmod(0o755)
        lab = lab_of(tmp_path)
        yield lab, k
        teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def drift(lab, k):
    return lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift


@pytest.mark.parametrize("without", ["", "p4"])
def test_a_status_reads_each_node_once_for_all_its_pods(world, monkeypatch, without):
    lab, k = world
    up(lab, k)
    counted = Counted(k, lab, without)
    monkeypatch.setattr(live, "LiveKernel", counted)
    said = drift(lab, k)
    gone = [line for line in said if "portmap's DNAT" in line]
    assert gone == ([f"cni: pod p4: it differs from its chain's cached ADD result: portmap's DNAT of its hostPort "
                     f"18004/tcp to {lab.pod('p4').ip}:8080 is gone: no rule of the node's nat CNI-HOSTPORT-DNAT "
                     "leads to it (cniVersion 0.3.1 has no CHECK)"] if without else []), said
    assert said == gone
    for node in lab.nodes:  # 6 pods each: one dump and one iptables-save of it, not 6
        assert counted.reads[("dump", node.netns)] == 1, counted.reads
        assert counted.reads[("iptables-save", node.netns)] == 1, counted.reads
    for pod in lab.pods:  # each pod's own namespace, once
        assert counted.reads[("dump", pod.netns)] == 1, counted.reads
    assert counted.made <= lifecycle.WORKERS < 2 * PODS  # a kernel per thread, not per pod


def test_a_nodes_failed_read_is_said_to_each_of_its_pods_and_not_read_again():
    from netlab.cni.node_reads import NodeReads

    class Failing:
        calls = Counter()

        def snapshot(self, netns, sysctls=(), tables=True):
            Failing.calls["dump"] += 1
            raise NetnsGone(netns, f"/run/netns/{netns}")

        def iptables_save(self, netns, table, backend=""):
            Failing.calls["save"] += 1
            raise KernelError(None, 5, "iptables-save: exit 1")

        def close(self):
            Failing.calls["close"] += 1

    with NodeReads(Failing) as reads:
        for _ in range(3):
            with pytest.raises(NetnsGone):
                reads.node("lab-n1")
            with pytest.raises(KernelError):
                reads.nat("lab-n1")
    assert Failing.calls == {"dump": 1, "save": 1, "close": 1}
