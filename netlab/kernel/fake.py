"""A kernel in memory, for unit tests of the lab's lifecycle without root.

It holds, per namespace, links, addresses, routes, neighbours, FDB entries,
rules, sysctls and iptables tables, answers snapshots with the same messages
the real kernel's dumps decode to, and refuses what the kernel refuses, with
the kernel's errno:

- a link name or address that exists (EEXIST), a device that does not (ENODEV);
- a route via a gateway that no connected route of an up device reaches
  (ENETUNREACH), an onlink route or device route on a down device (ENETDOWN);
- deleting a route, neighbour or rule that is not there exactly as
  described: the kernel matches a route deletion on its type, scope and
  protocol too (ESRCH); an FDB entry whose MAC the device has not (ENOENT: a
  remote the MAC has not is no error, and a unicast MAC keeps its one remote
  through an append, see fake_objects.FNetns.change_fdb).
- ``iptables-restore`` as kernel/fake_iptables.py refuses it (one transaction);
- a sysctl whose file does not exist (ENOENT): an interface's before its link
  (the link's go with it), nf_conntrack's while the module is not loaded
  (:attr:`FakeKernel.conntrack_loaded`; restoring rule tables loads it).

Taking a device down removes the routes through it (in every table, a route
given by its gateway alone too: the kernel put it on the device whose connected
route reaches that gateway) and its connected routes, as the kernel does; the
local routes of its addresses stay. Deleting a device's last address removes the routes through it the
same way (fib_disable_ip). Deleting a veth deletes its peer. A bridge port is
disabled while it, its veth peer or its bridge is down, and forwarding again
once they are up (STP off); a state set by hand holds while it is enabled.
Every op applied is kept in :attr:`FakeKernel.log`; :attr:`FakeKernel.fail`
makes chosen ops fail.
"""

from __future__ import annotations

from dataclasses import replace
import errno
import os
from ipaddress import IPv4Address, IPv4Interface
from typing import Any, Callable, Sequence

from netlab.errors import NetnsGone
from netlab.kernel import nftgen
from netlab.kernel.base import KernelError, gone, NftText, Op, Snapshot, TableText, link_changes
from netlab.kernel.fake_dump import dump
from netlab.kernel.fake_iptables import FakeError, delete_base_chains, empty_table, nft_refusal, restore, save_table
from netlab.kernel.fake_objects import FLink, FNetns, vxlan_data
from netlab.kernel.rtnl_vxlan import NEIGH_STATES
from netlab.kernel.netns import netns_path
from netlab.model.sysctl_names import interface_of
from netlab.plan.hand_qdisc import HandQdisc, handle_of
from netlab.plan.resources import (Address, BaseChains, Bridge, Fdb, Link, Loopback, Neigh, PortFdb, Route, Rule,
                                   Sysctl, Veth, Vxlan)

DEFAULT_RULES = (Rule(netns="", priority=0, table=255), Rule(netns="", priority=32766, table=254),
                 Rule(netns="", priority=32767, table=253))


class FakeKernel:
    """The Kernel protocol over in-memory namespaces."""

    create_workers = 1  # one at a time, so that tests see one order (a test may set 2)

    def __init__(self, fallback_links: Sequence[str] = (), host_devconf: dict[str, str] | None = None):
        self.ns: dict[str, FNetns] = {}
        self.placeholders: set[str] = set()
        self.log: list[Op] = []
        self.fallback_links = tuple(fallback_links)
        # sysctls every new namespace starts with, as a host copies its IPv4 all/default (none: the kernel's)
        self.host_devconf = dict(host_devconf or {})
        # fail(op) -> errno or None: the op fails with that errno (after the ops before it took effect)
        self.fail: Callable[[Op], int | None] = lambda op: None
        self.snapshots = 0
        self.no_carrier: set[tuple[str, str]] = set()  # (netns, link) whose carrier never comes
        self.flushed: list[str] = []  # namespaces whose learned path MTUs were flushed (flush_route_cache)
        self.announced: list[tuple[str, str, IPv4Address, bool]] = []  # gratuitous ARPs: (netns, dev, address, ran)
        # nf_conntrack (net.netfilter.* files in every namespace): built in or loaded; False: a module the kernel
        # loads once rules use it (the first table restored here)
        self.conntrack_loaded = True
        self.nft_written = nftgen.Written()  # no generation read here: every table is listed as it is

    # --- namespaces ----------------------------------------------------------------

    def netns_exists(self, name: str) -> bool:
        return name in self.ns or name in self.placeholders

    def netns_mounted(self, name: str) -> bool:
        return name in self.ns

    def create_netns(self, name: str, tag: str, sysctls: Sequence[tuple[str, str]]) -> list[str]:
        if self.netns_exists(name):
            raise FileExistsError(errno.EEXIST, "File exists", name)
        ns = FNetns(name=name, tag=tag, rules=[Rule(netns=name, priority=r.priority, table=r.table)
                                               for r in DEFAULT_RULES])
        ns.links["lo"] = FLink("lo", 1, None, 65536, "00:00:00:00:00:00", True)
        ns.addrs.append(Address(netns=name, dev="lo", address=IPv4Interface("127.0.0.1/8"), scope="host"))
        for extra in self.fallback_links:
            ns.links[extra] = FLink(extra, ns.next_index, "sit", 1480, "00:00:00:00", False)
            ns.next_index += 1
        ns.sysctls.update(self.host_devconf)
        for key, _ in sysctls:
            if not ns.sysctl_exists(key, self.conntrack_loaded):
                raise FileNotFoundError(errno.ENOENT, "no such sysctl", key)
        for key, value in sysctls:
            ns.write_sysctl(key, value)
        self.ns[name] = ns
        return sorted(self.fallback_links)

    def inherited_devconf(self, keys: Sequence[str]) -> dict[str, str | None]:
        return {key: self.host_devconf.get(key) for key in keys}

    def delete_netns(self, name: str) -> None:
        ns = self.ns.pop(name, None)
        self.placeholders.discard(name)
        if ns is None:
            return
        for link in list(ns.links.values()):
            if link.peer and link.peer[0] in self.ns:
                self._drop_link(self.ns[link.peer[0]], link.peer[1], peer=False)

    def is_placeholder(self, name: str) -> bool:
        return name in self.placeholders and name not in self.ns

    def remove_placeholder(self, name: str) -> bool:
        if name in self.placeholders:
            self.placeholders.discard(name)
            return True
        return False

    def read_tag(self, name: str) -> str | None:
        ns = self.ns.get(name)
        return ns.tag if ns else None

    def read_tags(self, names: Sequence[str]) -> dict[str, str | None]:
        return {name: self.read_tag(name) for name in names}

    def delete_netns_many(self, names: Sequence[str]) -> None:
        for name in names:
            self.delete_netns(name)

    def snapshot_many(self, asks: dict[str, tuple[Sequence[str], bool]],
                      meanwhile: Callable[[], None] | None = None,
                      digest: Callable[[str, Snapshot], Any] | None = None) -> dict[str, Any]:
        if meanwhile is not None:
            meanwhile()
        out = {}
        for ns, (sysctls, tables) in asks.items():
            try:
                out[ns] = self.snapshot(ns, sysctls, tables)
            except NetnsGone:
                pass  # deleted since the caller looked: left out, as the live kernel's readers do
        return out if digest is None else {ns: digest(ns, snap) for ns, snap in out.items()}

    # --- reading --------------------------------------------------------------------------

    def snapshot(self, netns: str, sysctls: Sequence[str] = (), tables: bool = True) -> Snapshot:
        self.snapshots += 1
        if netns not in self.ns:
            raise NetnsGone(netns, netns_path(netns))
        return dump(self.ns, self.ns[netns], self._running(netns), sysctls, tables)

    def running_links(self, netns: str) -> set[str]:
        """Up, and a veth's other end up too (a veth has carrier only then); ``no_carrier`` never are."""
        return self._running(netns)

    def nsids(self, netns: str, others: Sequence[str]) -> dict[str, int]:
        """As fake_dump numbers a link's peer_netnsid: a namespace's place among them all (the same in each)."""
        if netns not in self.ns:
            raise NetnsGone(netns, netns_path(netns))
        names = list(self.ns)
        return {o: names.index(o) for o in others if o in self.ns and o != netns}

    def _running(self, netns: str) -> set[str]:  # what the links' IFF_RUNNING says (a test may count the asks)
        ns = self.ns[netns]
        return {name for name, link in ns.links.items()
                if link.up and (netns, name) not in self.no_carrier
                and (link.peer is None or self._peer_up(link.peer))}

    def _peer_up(self, peer: tuple[str, str]) -> bool:
        other = self.ns.get(peer[0])
        return other is not None and peer[1] in other.links and other.links[peer[1]].up

    def iptables_save(self, netns: str, table: str, backend: str = "") -> str:
        """As ``iptables-save -t TABLE`` prints it: a table never written shows its built-in chains."""
        tabs = self.ns[netns].tables.get(backend, {})
        return save_table(table, tabs[table] if table in tabs else empty_table(table))

    # --- changing --------------------------------------------------------------------------

    def apply(self, ops: Sequence[Op], order: Sequence[str] = ()) -> list[Op]:
        # As the live kernel sends them: namespace by namespace in ``order``, each one's ops in their order.
        rank = {ns: i for i, ns in enumerate(order)}
        ops = sorted(ops, key=lambda op: rank.get(op.netns, len(rank)))  # stable within a namespace
        done: list[Op] = []
        for op in ops:
            code = self.fail(op)
            try:
                if code:
                    raise FakeError(code, os.strerror(code))
                self._apply(op)
            except FakeError as exc:
                if gone(op, exc.code):
                    continue  # already gone: done, nothing to take back
                raise KernelError(op, exc.code, f"{op.describe()}: {exc}", applied=done) from None
            except KeyError as exc:
                raise KernelError(op, errno.ENOENT, f"{op.describe()}: namespace {exc} does not exist",
                                  applied=done) from None
            self.log.append(op)
            done.append(op)
        return done

    def flush_route_cache(self, netns: str) -> None:
        if netns not in self.ns:
            raise OSError(errno.ENOENT, f"namespace {netns} does not exist")
        self.flushed.append(netns)

    def announce(self, netns: str, dev: str, address: IPv4Address) -> None:  # refused as a packet socket's send
        if netns not in self.ns or not getattr(self.ns[netns].links.get(dev), "up", False):
            raise OSError(errno.ENETDOWN, f"{dev} of {netns}: no such link, or down")
        self.announced.append((netns, dev, address, dev in self._running(netns)))

    def delete_veths(self, netns: str) -> None:
        ns = self.ns[netns]
        for name in [n for n, link in ns.links.items() if link.kind == "veth"]:
            if name in ns.links:
                self._drop_link(ns, name)

    def close(self) -> None:
        pass

    def _apply(self, op: Op) -> None:
        res = op.res
        if isinstance(res, (TableText, NftText)):
            self.conntrack_loaded = True  # the kernel loads what the rules use
        if isinstance(res, TableText):
            return restore(self.ns[res.netns].tables, res)
        if isinstance(res, BaseChains):  # nft -f deleting them; a rollback's iptables-restore making them again
            if op.verb == "del":
                return delete_base_chains(self.ns[res.netns].tables.setdefault("", {}), res.chains, res.tables)
            return restore(self.ns[res.netns].tables, TableText(res.netns, "", res.restore_payload(), noflush=True))
        if isinstance(res, NftText):  # a whole table replaced (or taken away: no listing)
            refused = nft_refusal(res.text)  # as nft: the whole transaction, nothing of it held
            if refused is not None:
                raise refused
            tabs = self.ns[res.netns].nft
            if res.listing:
                tabs[(res.family, res.table)] = res
            else:
                tabs.pop((res.family, res.table), None)
            return None
        ns = self.ns[res.netns]
        if isinstance(res, Sysctl):
            if not ns.sysctl_exists(res.name, self.conntrack_loaded):
                raise FakeError(errno.ENOENT, f"no such sysctl {res.name}")
            ns.write_sysctl(res.name, res.value)
        elif isinstance(res, Link):
            self._link(ns, op, res)
        elif isinstance(res, Address):
            ns.link(res.dev)
            same = [a for a in ns.addrs if a.key == res.key]
            if op.verb == "del":
                if not same:
                    raise FakeError(errno.EADDRNOTAVAIL, "no such address")
                ns.addrs.remove(same[0])
                if not any(a.dev == res.dev for a in ns.addrs):  # its last: as when it goes down
                    self._link_down(ns, res.dev)
            elif same and op.verb == "replace":  # its metric and lifetimes in place, its flags kept (as the kernel)
                ns.addrs[ns.addrs.index(same[0])] = replace(same[0], metric=res.metric, valid_lft=res.valid_lft,
                                                            preferred_lft=res.preferred_lft)
            elif same:
                raise FakeError(errno.EEXIST, "address exists")
            else:
                ns.addrs.append(res)
        elif isinstance(res, Route):
            ns.change_route(op.verb, res)
        elif isinstance(res, Neigh):
            ns.link(res.dev)
            if op.verb == "del":
                if ns.neighs.pop((res.dev, str(res.dst)), None) is None:
                    raise FakeError(errno.ENOENT, "no such neighbour")
            else:
                ns.neighs[(res.dev, str(res.dst))] = (res.lladdr, NEIGH_STATES[res.state])
        elif isinstance(res, PortFdb):
            entry = (res.dev, res.lladdr, res.vlan)
            if ns.link(res.dev).master is None and ns.links[res.dev].kind != "bridge":
                raise FakeError(errno.EINVAL, "not a bridge port")
            if op.verb == "del" and ns.port_fdb.pop(entry, None) is None:
                raise FakeError(errno.ENOENT, "no such fdb entry")
            if op.verb != "del" and entry in ns.port_fdb:
                raise FakeError(errno.EEXIST, "fdb entry exists")
            if op.verb != "del":
                ns.port_fdb[entry] = (res.state, res.flags)
        elif isinstance(res, Fdb):
            if ns.link(res.dev).kind != "vxlan":
                raise FakeError(errno.EOPNOTSUPP, "not a vxlan device")
            if res.via:
                ns.link(res.via)
            ns.change_fdb(op.verb, (res.dev, res.lladdr, str(res.dst)), (res.port, res.vni, res.via, res.state))
        elif isinstance(res, HandQdisc):  # as RTM_DELQDISC / RTM_NEWQDISC of a root qdisc
            link = ns.link(res.dev)
            if op.verb == "del":  # by the handle read: another root's, or the kernel's own (0:), refused
                if handle_of(ns.qdiscs.get(res.dev, b"")) != res.handle:
                    raise FakeError(errno.EINVAL, "Invalid handle")
                del ns.qdiscs[res.dev]
            if op.verb != "del":
                if res.dev in ns.qdiscs:
                    raise FakeError(errno.EEXIST, "a root qdisc exists")
                ns.qdiscs[res.dev] = res.body
                link.txqlen = link.txqlen or 1000  # the kernel's default queue for a qdisc on a txqueuelen-0 device
        elif isinstance(res, Rule):
            same = [r for r in ns.rules if r.key[2:] == res.key[2:]]
            if op.verb == "del":
                if not same:
                    raise FakeError(errno.ENOENT, "no such rule")
                ns.rules.remove(same[0])
            elif same:
                raise FakeError(errno.EEXIST, "rule exists")
            else:
                ns.rules.append(res)
                ns.rules.sort(key=lambda r: r.priority)
        else:
            raise FakeError(errno.EINVAL, f"cannot {op.verb} {res.kind}")

    def _link(self, ns: FNetns, op: Op, res: Link) -> None:
        if op.verb == "del":
            ns.link(res.name)
            return self._drop_link(ns, res.name)
        if op.verb == "set" or isinstance(res, Loopback):
            link = ns.link(res.name)
            changes = link_changes(op.old, res) if isinstance(op.old, Link) else ["up"]
            for attr in changes:
                if attr == "master" and res.master is not None:  # type: ignore[attr-defined]
                    ns.link(res.master)  # type: ignore[attr-defined]
                if attr == "master":  # a port leaves its bridge with its settings and FDB entries (del_nbp)
                    link.port_settings = ()
                    ns.port_fdb = {f: state for f, state in ns.port_fdb.items() if f[0] != link.name}
                if attr == "port_state":
                    self._set_port_state(ns, link, res.port_state)  # type: ignore[attr-defined]
                    continue
                if attr == "ageing":  # a VXLAN device's, changed in place
                    link.vxlan["ageing"] = res.ageing  # type: ignore[attr-defined]
                    continue
                setattr(link, attr, getattr(res, attr))
            if "up" in changes or "master" in changes:
                self._reenable(ns, link)
            if "up" in changes and not res.up:
                self._link_down(ns, res.name)
            return None
        if res.name in ns.links:
            raise FakeError(errno.EEXIST, f"{res.name} exists")
        if isinstance(res, Bridge):
            ns.links[res.name] = FLink(res.name, self._index(ns), "bridge", res.mtu, res.mac, res.up,
                                       txqlen=res.txqlen, flags=res.flags,
                                       settings=res.settings)
        elif isinstance(res, Vxlan):
            dev = ns.link(res.dev)
            ns.links[res.name] = FLink(res.name, self._index(ns), "vxlan", res.mtu, res.mac, res.up,
                                       vxlan=vxlan_data(res, dev.index), txqlen=res.txqlen, flags=res.flags)
        elif isinstance(res, Veth):
            if res.master:
                ns.link(res.master)
            peer_ns = self.ns[res.peer_netns]
            if res.peer_name in peer_ns.links:
                raise FakeError(errno.EEXIST, f"{res.peer_name} exists in {res.peer_netns}")
            ns.links[res.name] = FLink(res.name, self._index(ns), "veth", res.mtu, res.mac, res.up, res.master,
                                       res.hairpin, (res.peer_netns, res.peer_name), txqlen=res.txqlen,
                                       flags=res.flags, port_settings=res.port_settings)
            peer_ns.links[res.peer_name] = FLink(res.peer_name, self._index(peer_ns), "veth", res.mtu, res.peer_mac,
                                                 True, peer=(res.netns, res.name), txqlen=res.txqlen)
        else:
            raise FakeError(errno.EOPNOTSUPP, f"cannot create a {res.kind} link")
        return None

    @staticmethod
    def _index(ns: FNetns) -> int:
        ns.next_index += 1
        return ns.next_index - 1

    def _drop_link(self, ns: FNetns, name: str, peer: bool = True) -> None:
        link = ns.links.pop(name, None)
        if link is None:
            return
        ns.addrs = [a for a in ns.addrs if a.dev != name]
        ns.routes = [r for r in ns.routes if r.dev != name]
        ns.connected = {k: v for k, v in ns.connected.items() if k[0] != name}
        ns.neighs = {k: v for k, v in ns.neighs.items() if k[0] != name}
        ns.fdb = [f for f in ns.fdb if f[0] != name]
        ns.qdiscs.pop(name, None)
        ns.port_fdb = {f: state for f, state in ns.port_fdb.items() if f[0] != name}
        ns.fdb_extra = {f: extra for f, extra in ns.fdb_extra.items() if f[0] != name}
        ns.sysctls = {k: v for k, v in ns.sysctls.items() if interface_of(k) != name}  # its own go with it
        for other in ns.links.values():
            if other.master == name:
                other.master = None
        if peer and link.peer and link.peer[0] in self.ns:
            self._drop_link(self.ns[link.peer[0]], link.peer[1], peer=False)

    def _set_port_state(self, ns: FNetns, link: FLink, state: str | None) -> None:
        """`bridge link set dev PORT state STATE`, as the kernel takes it (br_set_port_state)."""
        if link.master is None or state is None:
            raise FakeError(errno.EOPNOTSUPP, f"{link.name} is not a bridge port")
        if link.name not in self._running(ns.name) and (not link.up or state != "disabled"):
            raise FakeError(errno.ENETDOWN, "network is down")  # a port down, or without carrier
        link.port_state = "forwarding" if state == "blocking" else state  # STP off: blocking forwards at once

    def _reenable(self, ns: FNetns, link: FLink) -> None:
        """A link set up or down, or enslaved: the ports it disables (itself, its veth peer, a bridge's ports)
        are forwarding when they are enabled again, whatever state a hand gave them."""
        link.port_state = "forwarding"
        for other in ns.links.values():
            if other.master == link.name:
                other.port_state = "forwarding"
        if link.peer and link.peer[0] in self.ns and link.peer[1] in self.ns[link.peer[0]].links:
            self.ns[link.peer[0]].links[link.peer[1]].port_state = "forwarding"

    def _link_down(self, ns: FNetns, name: str) -> None:
        """The kernel flushes the routes through a device that goes down (its connected ones made anew as it comes
        up)."""
        ns.routes = [r for r in ns.routes if r.dev != name]
        ns.connected = {k: v for k, v in ns.connected.items() if k[0] != name}
