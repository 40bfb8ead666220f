"""A builtin lab's hostPorts: the rules Debian's portmap (1.1.1, iptables backend) adds for the pod's ADD, in the
node's nat NatRules, as ``iptables-save -t nat`` prints them (it refused every hostPort: "network.cni builtin runs
none", though every node's 10-flannel.conflist chains portmap).

``REAL`` is what the real plugin made in a scratch namespace (``/usr/lib/cni/portmap``, CNI_CONTAINERID=abc123,
network cbr0, prevResult 10.244.0.2/24, these three mappings), copied from its ``iptables-save -t nat``."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.plan.iptables_save import saved_rule
from netlab.plan.portmap_rules import container_id, pod_chain
from netlab.plan.resources import NatRules, Sysctl

REAL_ID, REAL_CHAIN = "abc123", "CNI-DN-3e9a3d0f9583cdc0e7133"
REAL = r"""-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
-A CNI-DN-3e9a3d0f9583cdc0e7133 -s 10.244.0.0/24 -p tcp -m tcp --dport 18080 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-3e9a3d0f9583cdc0e7133 -s 127.0.0.1/32 -p tcp -m tcp --dport 18080 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-3e9a3d0f9583cdc0e7133 -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10.244.0.2:8080
-A CNI-DN-3e9a3d0f9583cdc0e7133 -s 10.244.0.0/24 -p udp -m udp --dport 18081 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-3e9a3d0f9583cdc0e7133 -s 127.0.0.1/32 -p udp -m udp --dport 18081 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-3e9a3d0f9583cdc0e7133 -p udp -m udp --dport 18081 -j DNAT --to-destination 10.244.0.2:81
-A CNI-DN-3e9a3d0f9583cdc0e7133 -s 10.244.0.0/24 -d 127.0.0.1/32 -p tcp -m tcp --dport 18082 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-3e9a3d0f9583cdc0e7133 -s 127.0.0.1/32 -d 127.0.0.1/32 -p tcp -m tcp --dport 18082 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-3e9a3d0f9583cdc0e7133 -d 127.0.0.1/32 -p tcp -m tcp --dport 18082 -j DNAT --to-destination 10.244.0.2:82
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"cbr0\" id: \"abc123\"" -m multiport --dports 18080,18082 -j CNI-DN-3e9a3d0f9583cdc0e7133
-A CNI-HOSTPORT-DNAT -p udp -m comment --comment "dnat name: \"cbr0\" id: \"abc123\"" -m multiport --dports 18081 -j CNI-DN-3e9a3d0f9583cdc0e7133
-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000
""".splitlines()  # noqa: E501

POD = ("  - name: a\n    node: n1\n    ip: 10.244.0.2\n    containers:\n      - name: web\n        ports:\n"
       "          - {containerPort: 8080, hostPort: 18080}\n"
       "          - {containerPort: 81, protocol: UDP, hostPort: 18081}\n"
       "          - {containerPort: 82, hostPort: 18082, hostIP: 127.0.0.1}\n")


def nat_of(tmp_path: Path, mode: str, cni: str = "builtin", pods: str = POD) -> NatRules:
    path = tmp_path / "t.yaml"
    path.write_text(f"name: hpu\nnetwork: {{mode: host-gw, cni: {cni}}}\ncluster: {{kubeProxyMode: {mode}}}\n"
                    "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\npods:\n"
                    + pods + "  - {name: b, node: n2}\n")
    plan = build_plan(resolve(load_topology(str(path))))
    [nat] = [r for r in plan.resources if isinstance(r, NatRules) and r.netns == "hpu-n1" and r.table == "nat"]
    return nat


def test_the_chain_is_named_as_portmap_names_it():
    assert pod_chain("cbr0", REAL_ID) == REAL_CHAIN
    assert len(container_id("hpu", "a")) == 64 and container_id("hpu", "a") == container_id("hpu", "a")


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_builtin_pod_s_host_ports_get_the_real_plugin_s_rules_in_its_order(tmp_path, mode):
    nat = nat_of(tmp_path, mode)
    cid = container_id("hpu", "a")
    want = [line.replace(REAL_CHAIN, pod_chain("cbr0", cid)).replace(f'\\"{REAL_ID}\\"', f'\\"{cid}\\"')
            for line in REAL]
    ours = [line for line in nat.rules if "CNI-" in line]
    # each built-in chain's rules as portmap leaves them beside kube-proxy's and Flannel's: its PREROUTING and
    # OUTPUT jumps appended, its POSTROUTING jump prepended
    for hook in ("PREROUTING", "OUTPUT", "POSTROUTING"):
        hooks = [line for line in nat.rules if line.startswith(f"-A {hook} ")]
        mine = [line for line in want if line.startswith(f"-A {hook} ")]
        assert (hooks[-1:] if hook != "POSTROUTING" else hooks[:1]) == mine, hooks
    assert sorted(ours, key=lambda line: line.split()[1] not in ("PREROUTING", "OUTPUT", "POSTROUTING")) == ours
    assert ours == want
    assert set(nat.chains) >= {"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ", want[3].split()[1]}
    # the payload restores what iptables-save prints back (the comment's quotes escaped)
    body = [line for line in nat.payload.splitlines() if line.startswith("-A CNI-")]
    assert sorted(saved_rule(line) for line in body) == sorted(line for line in ours if line.startswith("-A CNI-"))


def test_a_node_without_host_ports_and_a_reference_lab_get_none(tmp_path):
    assert not [line for line in nat_of(tmp_path, "iptables", pods="").rules if "CNI-" in line]
    no_host_port = "  - {name: a, node: n1, containers: [{name: web, ports: [{containerPort: 8080}]}]}\n"
    assert not [line for line in nat_of(tmp_path, "iptables", "reference", no_host_port).rules if "CNI-" in line]


@pytest.mark.parametrize("written, printed", [
    (r'-A D -m comment --comment "dnat name: \"cbr0\" id: \"x\"" -m multiport -p tcp --destination-ports 1,2 -j C',
     r'-A D -p tcp -m comment --comment "dnat name: \"cbr0\" id: \"x\"" -m multiport --dports 1,2 -j C'),
    ("-A C -p tcp --dport 18080 -s 10.244.0.2/24 -j S", "-A C -s 10.244.0.0/24 -p tcp -m tcp --dport 18080 -j S"),
    ("-A C -p udp --dport 53 -d 127.0.0.1 -j DNAT --to-destination 10.244.0.2:53",
     "-A C -d 127.0.0.1/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.244.0.2:53"),
    ('-A C -m comment --comment "a b" -m tcp -p tcp -d 10.96.0.10 --dport 53 -j X',  # kube-proxy's, as before
     '-A C -d 10.96.0.10/32 -p tcp -m comment --comment "a b" -m tcp --dport 53 -j X'),
])
def test_saved_rule_reads_portmap_s_forms(written, printed):
    """A quoted word with \\" in it, an option of the protocol's implicit match, multiport's long option name and an
    address with its mask come back as iptables-save prints them (the kernel keeps the network)."""
    assert saved_rule(written) == printed


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_node_with_host_ports_gets_portmap_s_route_localnet_on_cni0(tmp_path, mode):
    """portmap (snat, its default) sets route_localnet=1 on the node's interface that routes to the pod
    (getRoutableHostIF: cni0, which holds the pod CIDR's gateway) at a hostPort pod's ADD, so that the node's own
    127.0.0.1:<hostPort> crosses to the pod; without it (kube-proxy's nftables mode leaves all.route_localnet 0) the
    kernel refuses the DNATed packet from 127.0.0.1 (a connection on the node itself times out). A node without a
    hostPort pod gets none: portmap is never given a mapping there."""
    path = tmp_path / "t.yaml"
    path.write_text(f"name: hpu\nnetwork: {{mode: host-gw}}\ncluster: {{kubeProxyMode: {mode}}}\n"
                    "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\npods:\n"
                    + POD + "  - {name: b, node: n2}\n")
    plan = build_plan(resolve(load_topology(str(path))))
    found = {(r.netns, r.value) for r in plan.resources
             if isinstance(r, Sysctl) and r.name == "net.ipv4.conf.cni0.route_localnet"}
    assert found == {("hpu-n1", "1")}


def payload_title(tmp_path: Path, mode: str, node: str, pods: str = POD) -> str:
    path = tmp_path / "t.yaml"
    path.write_text(f"name: hpu\nnetwork: {{mode: host-gw}}\ncluster: {{kubeProxyMode: {mode}}}\n"
                    "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\npods:\n"
                    + pods + "  - {name: b, node: n2}\n")
    plan = build_plan(resolve(load_topology(str(path))))
    [nat] = [r for r in plan.resources if isinstance(r, NatRules) and r.netns == f"hpu-{node}" and r.table == "nat"]
    return nat.payload.splitlines()[0]


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_the_nat_payload_s_title_names_portmap_where_its_rules_are(tmp_path, mode):
    """The restore's first line says whose rules it writes: portmap's too on a node with hostPorts, not elsewhere."""
    assert "portmap's" in payload_title(tmp_path, mode, "n1"), payload_title(tmp_path, mode, "n1")
    assert "portmap" not in payload_title(tmp_path, mode, "n2")
    assert "portmap" not in payload_title(tmp_path, mode, "n1", pods="")
