"""A conflist whose host-local range is wider than the nodes' podCIDRs, seen before any plugin runs (validate, up).

host-local gives each pod its range's ``subnet`` as the prefix of its address (``subnet: 10.244.0.0/16`` makes
eth0 10.244.0.2/16, and the bridge plugin gives cni0 the gateway with the same /16). The pod then takes every
address of that /16 for a neighbour on its own link: the pods of the other nodes, and in VXLAN mode the other
nodes themselves, whose own packets leave from their flannel.1 address (10.244.1.0, inside the /16). It ARPs for
them on eth0 instead of sending to its gateway, and nobody answers. A node's cni0 with that prefix is harmless on
its own: its route to another node's pods (10.244.1.0/24 via flannel.1) is longer, so it wins. The pod's is not.

Only the bridge plugin is judged: its pods' L2 is the node's bridge, and their eth0 keeps the kernel's connected
route for the prefix. ptp deletes that route and routes the prefix via its gateway (the node's end of the veth),
macvlan's pods share the underlay's L2 with the other nodes' pods: a wide prefix works with both. Another type (a
wrapper, a third-party plugin) is not known here; up and status judge what its plugins made (Lab.wide_prefix).

A plugin with the ``ipRanges`` capability gets each node's podCIDR from the runtime, which host-local puts
before its own ranges and refuses beside one that overlaps it (refused at load: model.runtime_ranges); the
advice says to remove them. Flannel's plugin replaces ``ranges`` with its subnet.env's. Neither is judged here;
a wrapper that widens the runtime's range is seen only once its plugins ran
(up's and status's warnings, from the pod's address: model.lab.Lab.wide_prefix).
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

from netlab.errors import display_path
from netlab.model.cniconf import ConflistError, read_conflist
from netlab.model.hostlocal import host_local_config, host_local_ipam
from netlab.model.lab import Lab
from netlab.model.places import TOPOLOGY, Note, Places
from netlab.model.runtime_ranges import declares_ip_ranges
from netlab.model.topology import CniConflist

BRIDGE = "bridge"  # the one plugin type whose pods' eth0 is on-link on a node-local bridge


def first_subnet(ipam: dict[str, Any]) -> tuple[str, str] | None:
    """(where, subnet) of the range host-local takes a pod's first address from: the old single range's
    ``subnet``, else ``ranges[0][0].subnet``; None when it names none."""
    if isinstance(ipam.get("subnet"), str):
        return "subnet", ipam["subnet"]
    ranges = ipam.get("ranges")
    first = ranges[0] if isinstance(ranges, list) and ranges and isinstance(ranges[0], list) and ranges[0] else None
    if isinstance(first, list) and isinstance(first[0], dict) and isinstance(first[0].get("subnet"), str):
        return "ranges[0][0].subnet", first[0]["subnet"]
    return None


def wide_range_notes(lab: Lab, places: Places | None = None) -> list[Note]:
    """One line per plugin of the lab's conflist whose host-local range gives pods a prefix wider than a node's
    podCIDR that covers another node's podCIDR or the Service CIDR, at the topology's network.cni.conflist."""
    cni = lab.topo.network.cni
    if not isinstance(cni, CniConflist):
        return []
    try:
        plugins = read_conflist(cni.conflist).plugins
    except ConflistError:  # said by validate's own checks
        return []
    narrowest = max(n.pod_cidr.prefixlen for n in lab.nodes)
    out = []
    for i, plugin in enumerate(plugins):
        keys, ipam = host_local_ipam(plugin), host_local_config(plugin)
        if plugin.get("type") != BRIDGE or declares_ip_ranges(plugin) or keys is None or ipam is None \
                or (found := first_subnet(ipam)) is None:
            continue
        try:
            subnet = IPv4Network(found[1], strict=False)
        except ValueError:  # not IPv4 (the plugin's own error, at ADD)
            continue
        words = lab.wide_words(subnet) if subnet.prefixlen < narrowest else None
        if words is None:
            continue
        field = f"{display_path(cni.conflist)}'s plugins[{i}].{'.'.join(keys)}.{found[0]}"
        out.append((places or Places()).note(TOPOLOGY, ("network", "cni", "conflist"), (
            f"{field} {found[1]} is wider than a node's podCIDR (/{narrowest}): host-local gives each pod that "
            f"prefix on eth0, so a pod ARPs on eth0 for {words[0]} in {subnet} and nobody answers ({words[1]}): "
            f"it reaches {words[2]} (give host-local each node's podCIDR: declare the ipRanges capability, which "
            f"passes it, and remove {'.'.join(keys)}'s own subnet and ranges, which host-local refuses beside it)")))
    return out
