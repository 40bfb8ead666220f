"""How nodes reach each other's pod CIDRs: Flannel's VXLAN backend or host-gw.

VXLAN (Flannel ``pkg/backend/vxlan``), per node::

    pod eth0 -> veth -> cni0 -> route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
             -> ARP 10.244.1.0 = remote flannel.1 MAC (PERMANENT, so no ARP is ever sent)
             -> FDB remote MAC dst 192.168.122.7 (which node holds that MAC)
             -> UDP 8472, VNI 1, out eth0 on the underlay

For every remote node Flannel writes the ARP entry, then the FDB entry, and
the route last: with the route in place first, a packet could arrive before
the neighbour entry and make the kernel ARP for the gateway, which nobody
answers on a ``nolearning`` VXLAN device.

host-gw: ``10.244.1.0/24 via 192.168.122.7 dev eth0``. No encapsulation, so
the nodes must share an L2 segment (they do: the underlay bridge).
"""

from __future__ import annotations

from ipaddress import IPv4Interface

from netlab.model import naming
from netlab.model.lab import Lab, NodeInfo
from netlab.plan.resources import Address, Fdb, Neigh, Resource, Route, Vxlan

# Flannel makes flannel.1 from a netlink.Vxlan literal whose TxQLen is 0, which the
# netlink library sends as is: a real flannel.1 has txqueuelen 0 ("qlen" not printed).
FLANNEL_TXQLEN = 0
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8


def vtep(lab: Lab, node: NodeInfo) -> list[Resource]:
    """The node's flannel.1 device and its /32 address."""
    vx = lab.topo.network.vxlan
    name = naming.vxlan_name(vx.vni)
    return [
        Vxlan(netns=node.netns, name=name, mtu=lab.underlay_mtu - VXLAN_OVERHEAD, mac=node.vxlan_mac,
              vni=vx.vni, port=vx.port, local=node.ip, dev=naming.NODE_IF, txqlen=FLANNEL_TXQLEN),
        Address(netns=node.netns, dev=name, address=IPv4Interface(f"{node.vtep_ip}/32")),
    ]


def vxlan_peers(lab: Lab, node: NodeInfo) -> tuple[list[Resource], list[Resource], list[Resource]]:
    """Per remote node: (ARP entries, FDB entries, routes), applied in that order."""
    dev = naming.vxlan_name(lab.topo.network.vxlan.vni)
    neighs: list[Resource] = []
    fdbs: list[Resource] = []
    routes: list[Resource] = []
    for peer in lab.nodes:
        if peer.name == node.name:
            continue
        neighs.append(Neigh(netns=node.netns, dev=dev, dst=peer.vtep_ip, lladdr=peer.vxlan_mac))
        fdbs.append(Fdb(netns=node.netns, dev=dev, lladdr=peer.vxlan_mac, dst=peer.ip))
        routes.append(Route(netns=node.netns, dst=peer.pod_cidr, gateway=peer.vtep_ip, dev=dev, onlink=True))
    return neighs, fdbs, routes


def host_gw_routes(lab: Lab, node: NodeInfo) -> list[Resource]:
    """Routes to every other node's pod CIDR via that node's underlay IP."""
    return [
        Route(netns=node.netns, dst=peer.pod_cidr, gateway=peer.ip, dev=naming.NODE_IF)
        for peer in lab.nodes
        if peer.name != node.name
    ]
