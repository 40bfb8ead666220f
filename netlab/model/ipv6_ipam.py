"""A conflist whose IPAM gives pods IPv6 addresses: refused at load (pure, nothing run).

Labs are IPv4 only, with IPv6 off in every namespace (plan/sysctls.py: ``net.ipv6.conf.all`` and
``default.disable_ipv6=1``; README, "IPv6 is off": the namespaces' own ICMPv6 would fill captures and traces). A
host-local range with an IPv6 ``subnet`` (or a static IPAM's IPv6 ``address``) fails the ADD where a plugin puts the
address on an interface whose IPv6 is off: the kernel refuses it (EACCES), as Debian's bridge plugin with
``isGateway`` says ("failed to set bridge addr: could not add IP address to ...: permission denied", the gateway on
the node's bridge); validate said ok and up rolled back. Where the plugin turns IPv6 on for the pod's eth0 itself
(the plugins' ipam.ConfigureIface writes its disable_ipv6=0) the ADD passes, and the pod has an address netlab
neither plans, shows nor traces. Turning IPv6 on for such a lab would be more than a sysctl (netlab's results,
Services and traces are IPv4), so the conflist is refused in one line naming the field.

Flannel's own ``ipam`` is not judged: the plugin replaces its ranges with subnet.env's (IPv4 in a lab).
"""

from __future__ import annotations

from ipaddress import IPv6Interface, IPv6Network
from typing import Any, Callable, Iterator

from netlab.model.hostlocal import FLANNEL, host_local_config, host_local_ipam

WHY = ("labs are IPv4 only, with IPv6 off in every namespace (net.ipv6.conf.all.disable_ipv6=1; README, \"IPv6 is "
       "off\"): a plugin that puts that address on an interface whose IPv6 is off fails the ADD (\"permission "
       "denied\": the bridge plugin's gateway on its bridge), and one that turns IPv6 on for the pod's eth0 gives it "
       "an address netlab neither plans, shows nor traces; remove it")


def _host_local_v6(ipam: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, subnet) of each IPv6 range of host-local's own config: ``subnet``, ``ranges[i][j].subnet``."""
    found: list[tuple[str, Any]] = [("subnet", ipam.get("subnet"))]
    sets = ipam.get("ranges")
    for i, rset in enumerate(sets if isinstance(sets, list) else []):
        found += [(f"ranges[{i}][{j}].subnet", r.get("subnet")) for j, r in
                  enumerate(rset if isinstance(rset, list) else []) if isinstance(r, dict)]
    for where, subnet in found:
        if isinstance(subnet, str) and _parses(lambda t: IPv6Network(t, strict=False), subnet):
            yield where, subnet


def _static_v6(ipam: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, address) of each IPv6 address of a static IPAM's ``addresses``."""
    addresses = ipam.get("addresses")
    for k, a in enumerate(addresses if isinstance(addresses, list) else []):
        text = a.get("address") if isinstance(a, dict) else None
        if isinstance(text, str) and _parses(IPv6Interface, text):
            yield f"addresses[{k}].address", text


def _parses(kind: Callable[[str], Any], text: str) -> bool:
    """``text`` is an IPv6 network (host bits allowed, as host-local takes a subnet) or interface address."""
    try:
        kind(text.strip())
    except ValueError:
        return False  # not IPv6 (or the plugin's own error, at ADD)
    return True


def ipv6_addresses(plugins: list[dict[str, Any]], conflist: str) -> list[str]:
    """One line per plugin of ``plugins`` whose IPAM would give a pod an IPv6 address (its first such field)."""
    out = []
    for i, plugin in enumerate(plugins):
        found: list[tuple[str, str]] = []
        keys, ipam = host_local_ipam(plugin), host_local_config(plugin)
        if keys is not None and ipam is not None and plugin.get("type") != FLANNEL:
            found = [(f"{'.'.join(keys)}.{where}", value) for where, value in _host_local_v6(ipam)]
        own = plugin.get("ipam")
        if not found and isinstance(own, dict) and own.get("type") == "static":
            found = [(f"ipam.{where}", value) for where, value in _static_v6(own)]
        if found:
            field, value = found[0]
            kind = "host-local" if keys is not None else "static"
            out.append(f"{conflist}'s plugins[{i}] ({plugin.get('type')}) {field} {value} gives pods an IPv6 address "
                       f"({kind} IPAM): {WHY}")
    return out
