"""The node's side of a pod whose chain has no CHECK, judged against the chain's cached ADD result
(netlab/cni/verify_node.py), and portmap's hostPort DNAT read from iptables-save (netlab/cni/portmap.py).

QA cnihost 1: ``ip link del cni0`` on the node, or the pod's host veth taken off the bridge (``nomaster``), left
a 0.3.1 (or disableCheck) lab "all as planned": only the pod's namespace was compared. QA cnihost 2: portmap's
CNI-HOSTPORT-DNAT flushed by hand, the same.
"""

from __future__ import annotations

from netlab.cni.portmap import missing_dnat, missing_dnats, uses_portmap
from netlab.cni.verify_node import bandwidth_rates, bridge_is_gateway, compare_node, compare_shaping, gateways, \
    node_side
from netlab.kernel import netlink, tc
from netlab.kernel.base import Snapshot
from netlab.kernel.rtnl_parse import AddrMsg, LinkMsg, RouteMsg

RESULT = {"cniVersion": "0.3.1",
          "interfaces": [{"name": "cni0", "mac": "0a:58:0a:f4:00:01"},  # the node's bridge: no sandbox
                         {"name": "veth1234", "mac": "aa:bb:cc:dd:ee:ff"},  # the host end of the pod's pair
                         {"name": "eth0", "mac": "0a:58:0a:f4:00:05", "sandbox": "/var/run/netns/lab-a"}],
          "ips": [{"version": "4", "address": "10.244.0.5/24", "gateway": "10.244.0.1", "interface": 2}]}


def _link(index: int, name: str, kind: str, master: int | None = None, up: bool = True) -> LinkMsg:
    return LinkMsg(index=index, name=name, kind=kind, up=up, mtu=1500, mac=None, master=master, peer=None,
                   peer_netnsid=None, alias=None, group=0, txqlen=1000)


def _node(bridge: bool = True, master: int | None = 3, gw: bool = True, bridge_up: bool = True) -> Snapshot:
    snap = Snapshot(netns="lab-n1")
    snap.links = {"lo": _link(1, "lo", None), "eth0": _link(2, "eth0", "veth"),
                  "veth1234": _link(4, "veth1234", "veth", master)}
    if bridge:
        snap.links["cni0"] = _link(3, "cni0", "bridge", up=bridge_up)
        snap.addrs = [AddrMsg(index=3, address="10.244.0.1", prefixlen=24, broadcast=None, scope=0, label="cni0")] \
            if gw else []
    return snap


def test_the_node_side_is_what_the_result_lists_without_a_sandbox():
    assert node_side(RESULT) == ["cni0", "veth1234"]
    assert gateways(RESULT) == ["10.244.0.1"]
    assert compare_node(RESULT, _node(), gateway_on_bridge=True) is None
    assert node_side({"cniVersion": "0.2.0", "ip4": {"ip": "10.244.0.5/24"}}) == []  # names no interface


def test_a_deleted_bridge_or_a_veth_off_it_is_said():
    assert compare_node(RESULT, _node(bridge=False)) == "the node's cni0 is gone"
    assert compare_node(RESULT, _node(master=None)) == "the node's veth1234 is not a port of cni0 (it has no master)"
    snap = _node(master=9)
    snap.links["br1"] = _link(9, "br1", "bridge")
    assert compare_node(RESULT, snap) == "the node's veth1234 is not a port of cni0 (its master is br1)"
    assert compare_node(RESULT, _node(bridge_up=False)) == "the node's cni0 is down"


def test_the_gateway_is_held_on_the_bridge_only_where_the_bridge_plugin_is_the_pods_gateway():
    assert compare_node(RESULT, _node(gw=False)) is None
    assert compare_node(RESULT, _node(gw=False), gateway_on_bridge=True) == \
        "the node's cni0 lacks the pods' gateway 10.244.0.1"
    assert bridge_is_gateway([{"type": "bridge", "isDefaultGateway": True}, {"type": "portmap"}])
    assert bridge_is_gateway([{"type": "wrap", "delegate": {"type": "bridge", "isGateway": True}}])
    assert not bridge_is_gateway([{"type": "bridge"}, {"type": "ptp", "isGateway": True}])


PORTMAP = """*nat
:PREROUTING ACCEPT [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:CNI-DN-0123 - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"cbr0\\" id: \\"c1\\"" -m multiport \
--dports 18080 -j CNI-DN-0123
-A CNI-DN-0123 -s 10.244.0.0/24 -p tcp -m tcp --dport 18080 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-0123 -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10.244.0.5:8080
COMMIT
""".splitlines()
WEB = {"hostPort": 18080, "containerPort": 8080, "protocol": "tcp", "hostIP": ""}


def test_a_host_port_is_held_to_portmaps_dnat_in_the_nodes_nat_table():
    assert missing_dnat(PORTMAP, WEB, "10.244.0.5") is None
    gone = "portmap's DNAT of its hostPort 18080/tcp to 10.244.0.5:8080 is gone"
    flushed = [line for line in PORTMAP if not line.startswith("-A CNI-HOSTPORT-DNAT")]
    assert missing_dnat(flushed, WEB, "10.244.0.5") == (f"{gone}: no rule of the node's nat CNI-HOSTPORT-DNAT jumps "
                                                       "to the pod's chain CNI-DN-0123 for 18080/tcp (its DNAT "
                                                       "there is intact)")
    unhooked = [line for line in PORTMAP if not line.startswith("-A PREROUTING")]
    assert missing_dnat(unhooked, WEB, "10.244.0.5") == \
        f"{gone}: the node's nat PREROUTING has no jump to CNI-HOSTPORT-DNAT"
    # the node's own connections take OUTPUT's jump (qa55: deleted, the node's curl was refused, status clean)
    unhooked = [line for line in PORTMAP if not line.startswith("-A OUTPUT")]
    assert missing_dnat(unhooked, WEB, "10.244.0.5") == \
        f"{gone}: the node's nat OUTPUT has no jump to CNI-HOSTPORT-DNAT (the node's own connections to its hostPort)"
    assert missing_dnat(PORTMAP, {**WEB, "protocol": "udp"}, "10.244.0.5") is not None  # tcp's rule is not udp's
    assert missing_dnat(PORTMAP, WEB, "10.244.0.6") is not None  # DNATs to another pod
    assert missing_dnats(PORTMAP, [WEB, {**WEB, "hostPort": 18081}], "10.244.0.5").startswith(
        "portmap's DNAT of its hostPort 18081/tcp")
    assert missing_dnats(PORTMAP, [], "10.244.0.5") is None
    assert uses_portmap([{"type": "bridge"}, {"type": "portmap", "capabilities": {"portMappings": True}}])
    assert not uses_portmap([{"type": "portmap", "backend": "nftables", "capabilities": {"portMappings": True}}])


PTP_RESULT = {"cniVersion": "0.3.1",
              "interfaces": [{"name": "veth1234", "mac": "aa:bb:cc:dd:ee:ff"},  # the host end: no sandbox
                             {"name": "eth0", "mac": "0a:58:0a:f4:00:05", "sandbox": "/var/run/netns/lab-a"}],
              "ips": [{"version": "4", "address": "10.244.0.5/24", "gateway": "10.244.0.1", "interface": 1}]}


def _route(dst: str, oif: int, table: int = 254) -> RouteMsg:
    return RouteMsg(table=table, dst=dst, dst_len=32, tos=0, gateway=None, oif=oif, proto=3, scope=253, type=1,
                    flags=0, priority=None, prefsrc=None, multipath=False)


def test_a_ptp_pod_is_held_to_the_nodes_route_to_it():
    """qa55: the ptp plugin's route to the pod on the node (`ip route add 10.244.0.5/32 dev vethX`) deleted cut
    the pod off, and a chain without CHECK said all as planned."""
    snap = _node(bridge=False, master=None)
    assert compare_node(PTP_RESULT, snap) == "the node has no route to the pod's 10.244.0.5 through veth1234"
    snap.routes = [_route("10.244.0.5", 2)]  # through another link
    assert compare_node(PTP_RESULT, snap) is not None
    snap.routes = [_route("10.244.0.5", 4, table=100)]  # in another table
    assert compare_node(PTP_RESULT, snap) is not None
    snap.routes = [_route("10.244.0.5", 4)]
    assert compare_node(PTP_RESULT, snap) is None


def test_flannels_delegate_is_a_bridge_that_is_its_pods_gateway_unless_it_says_otherwise():
    """Flannel's CNI plugin hands its ``delegate`` to ``bridge`` when it names no ``type``, with ``isGateway`` true
    unless it sets it (kube-flannel.yml's 10-flannel.conflist: ``{"hairpinMode": true, "isDefaultGateway": true}``,
    cniVersion 0.3.1, no CHECK): cni0's gateway is held there too."""
    assert bridge_is_gateway([{"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
                              {"type": "portmap", "capabilities": {"portMappings": True}}])
    assert bridge_is_gateway([{"type": "flannel"}])
    assert bridge_is_gateway([{"type": "flannel", "delegate": {"hairpinMode": True}}])
    assert not bridge_is_gateway([{"type": "flannel", "delegate": {"isGateway": False}}])
    assert not bridge_is_gateway([{"type": "flannel", "delegate": {"type": "ipvlan", "master": "eth0"}}])


# --- bandwidth's tbf (QA cnr63 2: deleted by hand under disableCheck, the pod ran unshaped, "all as planned") ---

BW_RESULT = {**RESULT, "interfaces": RESULT["interfaces"] + [{"name": "bwp1234", "mac": "12:34:56:78:9a:bc"}]}
BANDWIDTH = {"type": "bandwidth", "capabilities": {"bandwidth": True}}


def _tbf(index: int, rate_bits: int, kind: str = "tbf") -> bytes:
    opts = tc.tbf_options(rate_bits) if kind == "tbf" else b""
    return tc.TCMSG.pack(0, index, 0x10000, tc.TC_H_ROOT, 0) + netlink.string(tc.TCA_KIND, kind) + \
        netlink.attr(tc.TCA_OPTIONS, opts)


def _shaped(**qdiscs: bytes) -> Snapshot:
    snap = _node()
    snap.links["bwp1234"] = _link(5, "bwp1234", "ifb")
    index = {"veth1234": 4, "bwp1234": 5}
    snap.root_qdiscs = {index[name]: body for name, body in qdiscs.items()}
    return snap


def test_bandwidths_rates_come_from_one_place_and_need_their_burst():
    caps = {"bandwidth": {"ingressRate": 2000000, "ingressBurst": 4294967295, "egressRate": 1048576,
                          "egressBurst": 4294967295}}
    assert bandwidth_rates([{"type": "bridge"}, BANDWIDTH], caps) == (2000000, 1048576)
    assert bandwidth_rates([{"type": "bridge"}], caps) == (0, 0)
    assert bandwidth_rates([{"type": "bandwidth"}], caps) == (0, 0)  # no capability: the runtime gives it nothing
    assert bandwidth_rates([{**BANDWIDTH, "ingressRate": 8000, "ingressBurst": 8000}], None) == (8000, 0)
    assert bandwidth_rates([{**BANDWIDTH, "ingressRate": 8000, "ingressBurst": 8000}], caps) == (0, 0)  # both
    assert bandwidth_rates([BANDWIDTH], {"bandwidth": {"ingressRate": 8000}}) == (0, 0)  # no burst: no shaping


def test_bandwidths_tbf_is_held_to_its_rate_on_the_host_veth_and_the_ifb():
    good = {"veth1234": _tbf(4, 2000000), "bwp1234": _tbf(5, 1048576)}
    assert compare_shaping(BW_RESULT, _shaped(**good), 2000000, 1048576) is None
    assert compare_shaping(BW_RESULT, _shaped(bwp1234=good["bwp1234"]), 2000000, 1048576) == (
        "bandwidth's shaping of its ingress is gone: the node's veth1234 has no tbf (the plugin gave it 2000000bit)")
    assert compare_shaping(BW_RESULT, _shaped(veth1234=good["veth1234"]), 2000000, 1048576) == (
        "bandwidth's shaping of its egress is gone: the node's bwp1234 has no tbf (the plugin gave it 1048576bit)")
    assert compare_shaping(BW_RESULT, _shaped(veth1234=_tbf(4, 0, "fq_codel"), bwp1234=good["bwp1234"]),
                           2000000, 1048576) == ("bandwidth's shaping of its ingress is gone: the node's veth1234 "
                                                 "has a fq_codel, not a tbf (the plugin gave it 2000000bit)")
    assert compare_shaping(BW_RESULT, _shaped(veth1234=_tbf(4, 800000), bwp1234=good["bwp1234"]),
                           2000000, 1048576) == (
        "bandwidth's tbf on the node's veth1234 shapes its ingress to 800000bit, not 2000000bit")
    assert compare_shaping(BW_RESULT, _shaped(), 0, 0) is None  # not shaped: nothing to hold
