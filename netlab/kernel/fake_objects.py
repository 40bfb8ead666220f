"""What the fake kernel (netlab.kernel.fake) holds of a namespace: its links and their state, addresses, routes,
neighbour and FDB entries, rules, sysctls and netfilter tables, as plain data; and what a namespace decides alone, as
the kernel does: its sysctls' files (the ownership tag's among them), the routes its dump shows, and the changes of
its routes and FDB entries it accepts or refuses."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address

from netlab.kernel.base import NftText
from netlab.kernel.fake_iptables import FakeError, FTable
from netlab.kernel.nstag import TAG_SYSCTLS, tag_values
from netlab.kernel.rtnl_vxlan import DF
from netlab.model.sysctl_names import conf_name
from netlab.plan.kernel_routes import connected_route, local_routes, makes_connected
from netlab.plan.resources import Address, Route, Rule, Vxlan


def vxlan_data(res: Vxlan, link: int) -> dict:
    """A VXLAN device's settings as the kernel says them (rtnl_parse's names): those away from its defaults."""
    data = {"id": res.vni, "port": res.port, "local": str(res.local), "learning": int(res.learning), "link": link}
    data.update({word: 1 for word in res.options})
    extra = {"group": str(res.remote) if res.remote else None, "ttl_inherit": int(res.ttl == "inherit"),
             "ttl": int(res.ttl) if res.ttl.isdigit() else 0, "tos": res.tos, "df": DF[res.df], "ageing": res.ageing}
    extra.update(srcport=res.srcport if res.srcport != (0, 0) else None, limit=res.maxaddress)
    # UDP_CSUM: said whether on or off, as the kernel does
    return {**data, "udp_csum": int(res.udpcsum), **{k: v for k, v in extra.items() if v}}


PLAIN_REMOTE = (None, None, None, "permanent")  # an FDB entry as flanneld writes it: (port, vni, via, state)


@dataclass
class FLink:
    name: str
    index: int
    kind: str | None
    mtu: int
    mac: str
    up: bool
    master: str | None = None
    hairpin: bool = False
    peer: tuple[str, str] | None = None  # (namespace, name) of a veth's other end
    vxlan: dict = field(default_factory=dict)
    group: int = 0
    alias: str | None = None
    txqlen: int = 1000
    # A bridge port's STP state while it is enabled (up, with carrier, in a bridge that is up); the kernel
    # says disabled otherwise, and makes it forwarding again when it is enabled again (STP off)
    port_state: str = "forwarding"
    flags: tuple[str, ...] = ()  # `ip link set` flags away from the default, in its words (arp off ...)
    settings: tuple[str, ...] = ()  # a bridge's settings away from the kernel's defaults (kernel/rtnl_bridge)
    port_settings: tuple[str, ...] = ()  # a bridge port's


@dataclass
class FNetns:
    name: str
    tag: str | None = None
    links: dict[str, FLink] = field(default_factory=dict)
    addrs: list[Address] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)  # not the kernel's connected and local routes
    # a connected route a hand replaced (or deleted: None), by (dev, key); gone with its link's going down
    connected: dict[tuple, Route | None] = field(default_factory=dict)
    neighs: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)  # (dev, ip) -> (mac, state)
    fdb: list[tuple[str, str, str]] = field(default_factory=list)  # (dev, mac, dst)
    # a bridge's entries a hand added (plan/bridge_fdb.py): (dev, mac, vlan) -> (static | permanent, its flags)
    port_fdb: dict[tuple[str, str, int | None], tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    # an entry's remote where it is not the device's own, or its state not permanent: (port, vni, via, state)
    fdb_extra: dict[tuple[str, str, str], tuple] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    tables: dict[str, dict[str, FTable]] = field(default_factory=dict)  # backend -> table -> chains
    nft: dict[tuple[str, str], NftText] = field(default_factory=dict)  # nf_tables tables, as last written
    qdiscs: dict[str, bytes] = field(default_factory=dict)  # a root qdisc added (dev -> its dump's body)
    next_index: int = 2

    def link(self, name: str) -> FLink:
        try:
            return self.links[name]
        except KeyError:
            raise FakeError(errno.ENODEV, f"{name} does not exist in {self.name}") from None

    def sysctl(self, key: str) -> str | None:
        """Sysctl ``key``'s value as its file reads; None when it has no file (no such interface)."""
        conf = conf_name(key)
        key = conf.dotted if conf is not None else key  # sysctl(8)'s spelling (eth0/100) is the same file
        if key in self.sysctls:
            return self.sysctls[key]
        if key in TAG_SYSCTLS:  # the tag is two or three sysctls, as in the real kernel
            try:
                return str(tag_values(self.tag or "")[TAG_SYSCTLS.index(key)])
            except (ValueError, IndexError):  # untagged, or a tag without a state folder
                return "0"
        if conf is not None and conf.own and conf.dev not in self.links:
            return None  # no such interface
        if conf is not None and conf.own and (conf.family, conf.key) == ("ipv6", "disable_ipv6"):
            return self.sysctls.get("net.ipv6.conf.default.disable_ipv6", "0")  # copied as the link was made
        if key.rpartition(".")[2] == "forwarding":  # writing ip_forward sets every interface's, and the default
            return self.sysctls.get("net.ipv4.ip_forward", "0")
        return "64" if key == "net.ipv4.ip_default_ttl" else "0"  # a new namespace's (inet_init_net's IPDEFTTL)

    def write_sysctl(self, key: str, value: str) -> None:
        """As the kernel: changing ip_forward sets all.accept_redirects to its opposite (devinet.c,
        inet_forward_change; each interface's and default's forwarding follow it, see sysctl)."""
        conf = conf_name(key)
        key = conf.dotted if conf is not None else key
        if key == "net.ipv4.ip_forward" and self.sysctl(key) != value:
            self.sysctls["net.ipv4.conf.all.accept_redirects"] = "0" if value == "1" else "1"
        self.sysctls[key] = value

    def sysctl_exists(self, key: str, conntrack_loaded: bool) -> bool:
        """Sysctl ``key`` has a file: an interface's while its link exists, nf_conntrack's once it is loaded."""
        conf = conf_name(key)
        if conf is not None and conf.own:
            return conf.dev in self.links
        return conntrack_loaded or not key.startswith("net.netfilter.")

    def made_connected(self) -> list[Route]:
        """The connected routes the kernel makes for the addresses (main table, scope link, src the address), and
        their local table's: each one's local route, while its link is up its broadcast (brd) one."""
        made = [(a, self.links[a.dev].up, a.dev == "lo") for a in self.addrs]  # (no secondary addresses here)
        return [connected_route(a) for a, up, lo in made if makes_connected(a, up, lo)] + \
            [route for a, up, lo in made for route in local_routes(a, up, lo)]

    def all_routes(self) -> list[Route]:
        """The routes a dump shows: connected (main) and local (table local) ones, then the others."""
        out = []
        for made in self.made_connected():
            route = self.connected.get((made.dev, made.key), made)
            if route is not None:
                out.append(route)
        return out + list(self.routes)

    def change_fdb(self, verb: str, entry: tuple[str, str, str], extra: tuple = PLAIN_REMOTE) -> None:
        """A VXLAN device's FDB as the kernel keeps it (vxlan_core.c): a unicast MAC has one remote, which append
        never adds to (a second remote, or the same again, is accepted and changes nothing) and replace changes;
        only the all-zeros (flooding) or a multicast MAC lists several. A delete names the MAC and a remote (its
        port, VNI and device too): no entry for the MAC is ENOENT, a remote the MAC does not have is accepted and
        changes nothing (measured on Linux 6.18). ``extra``: (port, vni, via, state), PLAIN_REMOTE as flanneld's."""
        dev, mac, _ = entry
        same_mac = [f for f in self.fdb if f[:2] == (dev, mac)]
        floods = mac == "00:00:00:00:00:00" or int(mac[:2], 16) & 1
        if verb == "del":
            if not same_mac:
                raise FakeError(errno.ENOENT, "no such fdb entry")
            if entry in self.fdb and self.fdb_extra.get(entry, PLAIN_REMOTE)[:3] == extra[:3]:
                self.fdb.remove(entry)
                self.fdb_extra.pop(entry, None)
            return
        if verb == "replace" and same_mac and floods:
            raise FakeError(errno.EOPNOTSUPP, "Cannot replace non-unicast fdb entries")
        if verb == "replace":
            for f in same_mac:
                self.fdb.remove(f)
                self.fdb_extra.pop(f, None)
        elif entry in self.fdb or same_mac and not floods:
            return
        self.fdb.append(entry)
        if extra != PLAIN_REMOTE:
            self.fdb_extra[entry] = extra

    def reachable(self, gateway: IPv4Address, dev: str) -> bool:
        """A connected route of ``dev``, up, reaches ``gateway``."""
        return any(a.dev == dev and self.links[dev].up and gateway in a.address.network and not a.noprefixroute
                   for a in self.addrs)

    def change_route(self, verb: str, res: Route) -> None:
        """Add, replace or delete a route as the kernel takes it (ESRCH, ENETUNREACH, ENETDOWN)."""
        made = [r for r in self.made_connected() if r.key == res.key and r.dev == res.dev and res.proto == "kernel"]
        if made:  # the kernel's connected or local route: replaced or deleted in place
            self.connected[(made[0].dev, made[0].key)] = None if verb == "del" else res
            return
        same = [r for r in self.routes if r.key == res.key]
        if verb == "del":
            match = [r for r in same if r.type == res.type and r.scope == res.scope and r.proto == res.proto]
            if not match:
                raise FakeError(errno.ESRCH, "no such route")
            self.routes.remove(match[0])
            return
        if res.dev is None and res.gateway:  # the kernel puts it on the device whose connected route reaches it
            dev = next((a.dev for a in self.addrs if a.dev != "lo" and self.reachable(res.gateway, a.dev)), None)
            if dev is None:
                raise FakeError(errno.ENETUNREACH, "network unreachable")
            res = replace(res, dev=dev)
        if res.dev:
            link = self.link(res.dev)
            gateways = [res.gateway] if res.gateway else list(res.nexthops)  # a multipath route's: each hop's
            if not res.onlink and any(not self.reachable(gw, res.dev) for gw in gateways):
                raise FakeError(errno.ENETUNREACH, "network unreachable")
            if (res.onlink or not gateways) and not link.up:
                raise FakeError(errno.ENETDOWN, "network is down")
        for r in same:
            self.routes.remove(r)
        self.routes.append(res)
