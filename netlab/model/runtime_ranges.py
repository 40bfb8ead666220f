"""A host-local with the ``ipRanges`` capability whose conflist gives it ranges of its own that overlap a node's
podCIDR: every ADD on that node fails, so validate and up refuse it before any change (pure, nothing run).

The runtime passes the node's podCIDR as ``runtimeConfig.ipRanges`` (``[[{subnet: 10.244.0.0/24}]]``), and
host-local puts it before the conflist's own range sets (the old single ``subnet`` first among those), then refuses
any two range sets that overlap: "range set 0 overlaps with 1" (containernetworking/plugins, host-local's
allocator/config.go, the same in Debian's 1.1.1). A range spans rangeStart..rangeEnd, by default its subnet's
first address after the network's to the one before the broadcast. So ``ranges: [[{subnet: 10.244.0.0/16}]]``
beside the capability fails on every node inside it; a range of its own outside the podCIDRs (a second subnet) is
host-local's to give, and is not judged here.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any, Iterator, Mapping

from netlab.model.hostlocal import FLANNEL, host_local_config, host_local_ipam


def declares_ip_ranges(plugin: dict[str, Any]) -> bool:
    """Whether ``plugin`` declares the ipRanges capability (``"capabilities": {"ipRanges": true}``)."""
    caps = plugin.get("capabilities")
    return isinstance(caps, dict) and caps.get("ipRanges") is True


def own_ranges(ipam: dict[str, Any]) -> Iterator[tuple[str, str, IPv4Address, IPv4Address]]:
    """(where, subnet, first, last) of each IPv4 range of host-local's own config, in the order it takes them: the
    old single range (``subnet`` with its ``rangeStart``/``rangeEnd``), then ``ranges[i][j]``; a range it would
    refuse itself (not IPv4, unparsable) is left out."""
    found: list[tuple[str, Any]] = [("subnet", ipam)] if isinstance(ipam.get("subnet"), str) else []
    sets = ipam.get("ranges")
    for i, rset in enumerate(sets if isinstance(sets, list) else []):
        found += [(f"ranges[{i}][{j}].subnet", r) for j, r in enumerate(rset if isinstance(rset, list) else [])
                  if isinstance(r, dict) and isinstance(r.get("subnet"), str)]
    for where, r in found:
        try:
            net = IPv4Network(r["subnet"], strict=False)
            first = IPv4Address(r["rangeStart"]) if isinstance(r.get("rangeStart"), str) else net.network_address + 1
            last = IPv4Address(r["rangeEnd"]) if isinstance(r.get("rangeEnd"), str) else net.broadcast_address - 1
        except ValueError:  # host-local's own error, at ADD
            continue
        yield where, r["subnet"], first, last


def overlapping_ranges(plugins: list[dict[str, Any]], node_cidrs: Mapping[str, IPv4Network],
                       conflist: str) -> list[str]:
    """One line per plugin of ``plugins`` that declares the ipRanges capability and whose host-local's own range
    overlaps the runtime's range of a node of ``node_cidrs`` (name -> podCIDR: the nodes that have pods)."""
    out = []
    for i, plugin in enumerate(plugins):
        keys, ipam = host_local_ipam(plugin), host_local_config(plugin)
        if plugin.get("type") == FLANNEL or not declares_ip_ranges(plugin) or keys is None or ipam is None:
            continue
        for where, subnet, first, last in own_ranges(ipam):
            hit = [f"{name} ({cidr})" for name, cidr in node_cidrs.items()
                   if first <= cidr.broadcast_address - 1 and cidr.network_address + 1 <= last]
            if not hit:
                continue
            field = f"{'.'.join(keys)}.{where}"
            out.append(f"{conflist}'s plugins[{i}] declares the ipRanges capability and its {field} {subnet} "
                       f"overlaps the podCIDR of {_nodes(hit)}, which the capability passes: host-local puts "
                       f"the runtime's range first and refuses two that overlap, so every ADD there fails (\"range "
                       f"set 0 overlaps with 1\"); remove {'.'.join(keys)}'s own subnet and ranges (the capability "
                       f"gives each node's pods its podCIDR)")
            break
    return out


def _nodes(hit: list[str]) -> str:
    """``node n1 (10.244.0.0/24)``, ``nodes n1 (...) and n2 (...)``, ``nodes n1 (...), n2 (...) and n3 (...)``."""
    if len(hit) == 1:
        return f"node {hit[0]}"
    return f"nodes {', '.join(hit[:-1])} and {hit[-1]}"
