"""The real kernel behind the :class:`~netlab.kernel.base.Kernel` protocol.

Each namespace gets one rtnetlink socket, opened in-process after ``setns(2)``
(a socket keeps the namespace it was opened in). ``apply`` encodes every op
first, then sends each namespace's requests in one batch, namespaces in the
order given (the underlay's veths create the nodes' ``eth0``, the nodes'
veths the pods' ``eth0``, so requests only ever refer to links made in the
same or an earlier batch).

Interface indexes: requests name links by index. Links made here get their
index chosen in advance (``ip link add ... index N``), one above the highest
the namespace holds, so later requests of the same batch can name them
without a lookup. A fresh namespace starts with ``lo`` and whatever the
kernel added (fallback tunnels); a namespace made earlier is read once.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Callable, Iterable, Sequence

from netlab.kernel import (garp, iptables, live_objects, netlink, netns as nsmod, nft as nftmod, nftgen, nofile, nsid,
                           procsys, readmany, rtnl, rtnl_bridge, rtnl_parse, rtnl_vxlan)
from netlab.kernel.base import GONE, KernelError, gone, NftText, Op, TableText, link_changes
from netlab.kernel.live_read import Reading
from netlab.kernel.threads import CREATE_WORKERS, UNMOUNT_WORKERS, side_by_side, transaction_workers
from netlab.plan.resources import BaseChains, Bridge, Link, Loopback, Resource, Sysctl, Veth, Vxlan
from netlab.plan.sysctls import interface_setting, when_written

# `down` puts a namespace's veths in this link group, then deletes the group
# with one RTM_DELLINK: one batched unregister in the kernel (~50 ms for
# hundreds) instead of one synchronize_net() per pair. Only then: a running
# lab's links stay in the default group, as on a real node (`ip link` would
# print "group 1").
DOOMED_GROUP = 1


@dataclass
class _Step:
    netns: str
    op: Op
    primary: bool  # the op has taken effect once this step succeeded
    what: str
    msg: bytes | None = None  # a netlink request, or
    run: Callable[[], None] | None = None  # anything else (a sysctl file, iptables-restore, nft -f)


class LiveKernel(Reading):
    """Real system calls. Not thread-safe: one per thread, except create_netns (``create_workers``)."""

    create_workers = CREATE_WORKERS

    def __init__(self, timeout: float = netlink.DEFAULT_TIMEOUT):
        self.timeout = timeout
        _enough_descriptors()
        self._conns: dict[str, netlink.Conn] = {}
        self._index: dict[str, dict[str, int]] = {}
        self._ahead: readmany.Ahead | None = None
        self._netns_dir_ready = False  # /run/netns made a shared mount point by this kernel's first create_netns
        self._placeholders: nsmod.Placeholders | None = None  # what claims the names of the namespaces it makes
        self._netns_dir_lock = threading.Lock()  # create_netns runs on several threads
        self.nft_written = nftgen.Written()

    # --- sockets and indexes ---------------------------------------------------

    def conn(self, netns: str) -> netlink.Conn:
        c = self._conns.get(netns)
        if c is None:
            with nsmod.entered(netns):
                c = self._conns[netns] = netlink.Conn(timeout=self.timeout)
        return c

    def _keep_conn(self, netns: str, conn: netlink.Conn) -> None:
        """The socket a new namespace was set up with, kept as its socket (create_netns)."""
        old = self._conns.pop(netns, None)
        self._conns[netns] = conn
        if old is not None:  # a namespace of that name this kernel used before: gone with it
            old.close()

    def _links(self, netns: str) -> dict[str, int]:
        table = self._index.get(netns)
        if table is None:
            table = self._index[netns] = {m.name: m.index for m in rtnl_parse.dump_links(self.conn(netns), netns)}
        return table

    def index(self, netns: str, name: str) -> int:
        try:
            return self._links(netns)[name]
        except KeyError:
            raise KernelError(None, errno.ENODEV, f"{name} does not exist in {netns}") from None

    def _alloc(self, netns: str, name: str) -> int:
        table = self._links(netns)
        table[name] = max(table.values(), default=1) + 1
        return table[name]

    def running_links(self, netns: str) -> set[str]:
        """The links of ``netns`` that are operationally up: one link dump."""
        return {m.name for m in rtnl_parse.dump_links(self.conn(netns), netns) if m.running}

    def nsids(self, netns: str, others: Sequence[str]) -> dict[str, int]:
        return nsid.nsids(self.conn(netns), others, netns)

    def forget(self, netns: str) -> None:
        """Drop what is cached about a namespace (its links changed behind our back)."""
        self._index.pop(netns, None)
        c = self._conns.pop(netns, None)
        if c is not None:
            c.close()

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.stop()
            self._ahead = None
        for netns in list(self._conns):
            self.forget(netns)
        self._index.clear()
        if self._placeholders is not None:
            self._placeholders.close()
            self._placeholders = None
            self._netns_dir_ready = False

    # --- namespaces ----------------------------------------------------------------

    def netns_exists(self, name: str) -> bool:
        return nsmod.exists(name)

    def netns_mounted(self, name: str) -> bool:
        return nsmod.is_netns_mount(name)

    def create_netns(self, name: str, tag: str, sysctls: Sequence[tuple[str, str]]) -> list[str]:
        with self._netns_dir_lock:
            if not self._netns_dir_ready:  # once a run, not once a namespace
                nsmod.ensure_netns_dir()
                self._placeholders = nsmod.Placeholders()
                self._netns_dir_ready = True
        links = nsmod.create_netns(name, tag, sysctls, dir_ready=True, placeholders=self._placeholders,
                                   keep=lambda conn: self._keep_conn(name, conn), timeout=self.timeout)
        self._index[name] = dict(links)
        return sorted(n for n in links if n != "lo")

    def inherited_devconf(self, keys: Sequence[str]) -> dict[str, str | None]:
        from netlab.kernel.features import inherited_devconf  # the throwaway namespace's door, loaded when used

        return inherited_devconf(keys)

    def delete_netns(self, name: str) -> None:
        self.forget(name)
        nsmod.remove_netns(name)

    def delete_netns_many(self, names: Sequence[str]) -> None:
        """``delete_netns`` of each, by several threads side by side (their unmounts' waits overlap)."""
        for name in names:
            self.forget(name)
        side_by_side(nsmod.remove_netns, list(names), UNMOUNT_WORKERS)

    def is_placeholder(self, name: str) -> bool:
        return nsmod.is_placeholder(name)

    def remove_placeholder(self, name: str) -> bool:
        return nsmod.remove_placeholder(name)

    def read_tag(self, name: str) -> str | None:
        """The namespace's tag (None: none, or no namespace); OSError when it cannot be read (nsmod.read_tag)."""
        return nsmod.read_tag(name)

    # --- reading: kernel/live_read.py ---------------------------------------------

    def read_tags(self, names: Sequence[str]) -> dict[str, str | None]:
        """``read_tag`` of each namespace: many by this process and forked children (kernel/readmany.py:
        most of a tag's read is Python, which threads would only take turns at)."""
        def read(parts: Iterable[list[str]]) -> dict[str, str | None]:
            return {name: self.read_tag(name) for part in parts for name in part}

        return readmany.in_children(list(names), read, read)

    # --- changing ---------------------------------------------------------------------

    def apply(self, ops: Sequence[Op], order: Sequence[str] = ()) -> list[Op]:
        """Apply ``ops``; returns those that took effect (not a deletion allowed to find nothing, which did); on
        the first failure raise KernelError listing them."""
        try:
            return self._apply(ops, order)
        except KernelError:
            # The batch gave the links it makes their indexes before the kernel made them (a veth's peer named
            # eth0 in a pod that has an eth0 took its name): after a failure the names say nothing sure.
            self._index.clear()
            raise

    def _apply(self, ops: Sequence[Op], order: Sequence[str]) -> list[Op]:
        fds: list[int] = []
        steps: list[_Step] = []
        try:
            for op in ops:
                try:
                    steps += self._encode(op, fds)
                except KernelError as exc:
                    if not gone(op, exc.code):
                        raise
                    # deleting what is already gone (its device went first): nothing to send
        except KernelError as exc:
            for fd in fds:
                os.close(fd)
            raise KernelError(exc.op, exc.code, str(exc), applied=[]) from None
        rank = {ns: i for i, ns in enumerate(order)}
        groups: dict[str, list[_Step]] = {}
        for step in steps:
            groups.setdefault(step.netns, []).append(step)
        names = sorted(groups, key=lambda ns: rank.get(ns, len(rank)))
        done: list[Op] = []
        tails = {ns: _table_tail(groups[ns]) for ns in names}
        try:
            for ns in names:
                self._send_group(ns, groups[ns][:len(groups[ns]) - len(tails[ns])], done)
            _restore_in_parallel({ns: tail for ns, tail in tails.items() if tail}, done)
        finally:
            for fd in fds:
                os.close(fd)
        return done

    def _send_group(self, netns: str, steps: list[_Step], done: list[Op]) -> None:
        i = 0
        while i < len(steps):
            if steps[i].run is not None:
                step = steps[i]
                try:
                    step.run()
                except (OSError, iptables.IptablesError, nftmod.NftError) as exc:
                    code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EIO
                    raise KernelError(step.op, code, f"{step.what}: {_reason(exc)}", applied=done) from None
                _mark(done, step)
                i += 1
                continue
            j = i
            while j < len(steps) and steps[j].run is None:
                j += 1
            chunk = steps[i:j]
            try:
                codes = self.conn(netns).batch([(s.what, s.msg) for s in chunk])  # type: ignore[misc]
            except netlink.NetlinkError as exc:
                # The outcome of the chunk in flight is unknown: count it as done, so
                # that a rollback takes it back (taking back what is absent is harmless).
                for s in chunk:
                    _mark(done, s)
                raise KernelError(chunk[0].op, exc.errno or errno.EIO, str(exc), applied=done) from None
            failed = None
            for s, code in zip(chunk, codes):
                if code == 0:
                    _mark(done, s)
                elif gone(s.op, code):
                    continue  # it was gone already: done, and nothing to take back
                elif failed is None:
                    failed = (s, code)
            if failed is not None:
                s, code = failed
                raise KernelError(s.op, code, f"{s.what}: {_errno_text(code)}", applied=done)
            i = j

    def announce(self, netns: str, dev: str, address: IPv4Address) -> None:
        garp.announce(netns, dev, address)

    def flush_route_cache(self, netns: str) -> None:
        with nsmod.entered(netns):  # rt_cache_flush: every exception learned since is stale (fnhe_genid)
            procsys.write_sysctl_here("net.ipv4.route.flush", "1")

    def delete_veths(self, netns: str) -> None:
        """Every veth of a namespace that is going, at once: ``ip link set VETH group 1`` for each
        (cheap), then ``ip link del group 1``. Their peers in other namespaces go with them."""
        c = self.conn(netns)
        try:
            links = rtnl_parse.dump_links(c, netns)
            veths = [link for link in links if link.kind == "veth"]
            if veths:
                codes = c.batch([(f"group of {link.name} in {netns}", rtnl.link_set(link.index, group=DOOMED_GROUP))
                                 for link in veths])
                if any(code and code not in GONE for code in codes):
                    raise netlink.NetlinkError(next(code for code in codes if code), f"veths of {netns}")
                c.request(f"link group {DOOMED_GROUP} in {netns}", rtnl.link_del(group=DOOMED_GROUP))
        except netlink.NetlinkError as exc:
            if exc.errno not in (errno.ENODEV, errno.EINVAL):  # nothing (left) in the group
                raise KernelError(None, exc.errno, str(exc)) from None
        self._index.clear()  # the peers in other namespaces are gone too

    def _nft_transaction(self, res: NftText) -> None:
        """``nft -f`` of the table, between two reads of the namespace's generation: what it left is known
        (kernel/nftgen.py) when nothing else was committed meanwhile."""
        before = self._nft_stamp(res.netns)
        nftmod.run(res.netns, res.text, f"table {res.family} {res.table}")
        listing = None if res.removes or not res.listing else res.listing
        self.nft_written.wrote(res.netns, before, self._nft_stamp(res.netns), (res.family, res.table), listing,
                               res.whole or res.removes)

    def _nft_stamp(self, netns: str) -> nftgen.Stamp | None:
        with nsmod.entered(netns):
            conn = netlink.Conn(netlink.NETLINK_NETFILTER, timeout=self.timeout)
        with conn:
            return nftgen.stamp(conn)

    # --- encoding ---------------------------------------------------------------------

    def _encode(self, op: Op, fds: list[int]) -> list[_Step]:
        res, ns = op.res, op.netns
        what = op.describe()

        def step(msg: bytes, netns: str = ns, primary: bool = True, label: str = what) -> _Step:
            return _Step(netns, op, primary, label, msg=msg)

        if isinstance(res, TableText):
            text, noflush, backend, table = res.text, res.noflush, res.backend, res.table
            return [_Step(ns, op, True, what,
                          run=lambda: iptables.restore(ns, text, noflush, backend or None, label=table))]
        if isinstance(res, NftText):
            return [_Step(ns, op, True, what, run=lambda: self._nft_transaction(res))]
        if isinstance(res, BaseChains):  # deleted in one nft transaction; made again (a rollback) as iptables-nft did
            if op.verb == "del":
                gone = res.payload()
                return [_Step(ns, op, True, what, run=lambda: nftmod.run(ns, gone, "iptables-nft base chains"))]
            again = res.restore_payload()
            return [_Step(ns, op, True, what,
                          run=lambda: iptables.restore(ns, again, True, "nft", label="base chains"))]
        if isinstance(res, Sysctl):
            key, value = res.name, res.value
            own = interface_setting(key)
            if own is not None and own[1] in rtnl.INET_CONF_SETTABLE and value.isdigit() and len(value) < 10:
                # An interface's ARP setting goes in the namespace's netlink batch, with its link's other
                # messages, where the file would cost a namespace switch and a path walk in /proc/sys.
                return [step(rtnl.link_inet_conf(self.index(ns, own[0]), {own[1]: int(value)}))]

            def write() -> None:
                with nsmod.entered(ns):
                    procsys.write_sysctl_here(key, value)
            return [_Step(ns, op, True, what, run=write)]
        if isinstance(res, Link):
            return self._encode_link(op, res, fds, step)
        msgs = live_objects.encode(op, self.index)  # addresses, routes, neighbours, FDB entries, rules
        if msgs is not None:
            return [step(msg) for msg in msgs]
        raise KernelError(op, errno.EINVAL, f"cannot {op.verb} {res.kind if isinstance(res, Resource) else res}")

    def _encode_link(self, op: Op, res: Link, fds: list[int], step) -> list[_Step]:
        ns = res.netns
        if op.verb == "del":
            idx = self.index(ns, res.name)
            self._links(ns).pop(res.name, None)
            if isinstance(res, Veth):
                self._index.get(res.peer_netns, {}).pop(res.peer_name, None)
            return [step(rtnl.link_del(idx))]
        if op.verb == "set" or isinstance(res, Loopback):
            old = op.old if isinstance(op.old, Link) else None
            changes = link_changes(old, res) if old is not None else ["up"]
            idx = self.index(ns, res.name)
            msgs = []
            plain = [c for c in changes if c not in rtnl_bridge.OWN]  # the bridge's: AF_BRIDGE, its kind's data
            if plain:
                owner = getattr(res, "master", None)
                master = (self.index(ns, owner) if owner else 0) if "master" in plain else None
                msgs.append(rtnl.link_set(idx, up=res.up if "up" in plain else None,
                                          mtu=res.mtu if "mtu" in plain else None,
                                          address=res.mac if "mac" in plain else None, master=master,
                                          txqlen=res.txqlen if "txqlen" in plain else None,
                                          flags=_flags(res) if "flags" in plain else (0, 0),
                                          info=rtnl_vxlan.vxlan_change(getattr(res, "ageing", 0))
                                          if "ageing" in plain else b""))
            msgs += rtnl_bridge.changes(idx, old, res, changes)
            return [step(msg, primary=i == 0) for i, msg in enumerate(msgs)]
        if op.verb != "add":
            raise KernelError(op, errno.EINVAL, f"cannot {op.verb} link {res.name}")
        if isinstance(res, Bridge):
            idx = self._alloc(ns, res.name)
            return [step(rtnl.bridge_add(idx, res.name, res.mac, res.mtu, up=res.up, txqlen=res.txqlen,
                                         flags=_flags(res) if res.flags else (0, 0)))] + [
                step(msg, primary=False) for msg in rtnl_bridge.changes(idx, None, res, ["settings"])]
        if isinstance(res, Vxlan):
            link = self.index(ns, res.dev)
            return [step(rtnl_vxlan.vxlan_add(self._alloc(ns, res.name), res.name, res.mac, res.mtu, res.vni,
                                              str(res.local), res.port, link, res.learning, up=res.up,
                                              txqlen=res.txqlen, remote=str(res.remote) if res.remote else None,
                                              ttl=res.ttl, tos=res.tos, df=res.df, ageing=res.ageing,
                                              options=res.options, flags=_flags(res) if res.flags else (0, 0),
                                              udpcsum=res.udpcsum, srcport=res.srcport, maxaddress=res.maxaddress))]
        if isinstance(res, Veth):
            master = self.index(ns, res.master) if res.master else None
            if not nsmod.is_netns_mount(res.peer_netns):
                raise KernelError(op, errno.ENOENT, f"{what_of(res)}: namespace {res.peer_netns} does not exist")
            self._links(res.peer_netns)  # known before the peer is numbered there
            mine, theirs = self._alloc(ns, res.name), self._alloc(res.peer_netns, res.peer_name)
            fds.append(fd := os.open(nsmod.netns_path(res.peer_netns), os.O_RDONLY | os.O_CLOEXEC))
            out = [step(rtnl.veth_add(mine, res.name, res.mac, res.mtu, master, theirs, res.peer_name, res.peer_mac,
                                      fd, up=res.up, txqlen=res.txqlen, flags=_flags(res) if res.flags else (0, 0)))]
            if res.hairpin:
                out.append(step(rtnl.hairpin_set(mine, True), primary=False, label=f"hairpin on {res.name} in {ns}"))
            out += [step(msg, primary=False) for msg in rtnl_bridge.changes(mine, None, res, ["port_settings"])]
            out.append(step(rtnl.link_up(theirs), netns=res.peer_netns, primary=False,
                            label=f"link {res.peer_name} up in {res.peer_netns}"))
            return out
        raise KernelError(op, errno.EOPNOTSUPP, f"cannot create a {res.kind} link ({res.name} in {ns})")


def _flags(res: Link) -> tuple[int, int]:
    """The link flags (values, mask) that give ``res`` its ``flags`` (`arp off` ...) and the defaults otherwise."""
    return rtnl_parse.flag_bits(res.flags, loopback=isinstance(res, Loopback))


def _table_tail(steps: list[_Step]) -> list[_Step]:
    """The rule tables a namespace's steps end with (iptables-restore, nft -f), and the nf_conntrack sysctls
    written after them (realize/repair.py's order): nothing after them needs them."""
    i = len(steps)
    while i > 0 and steps[i - 1].run is not None and _in_tail(steps[i - 1].op.res):
        i -= 1
    return steps[i:]


def _in_tail(res: object) -> bool:
    return isinstance(res, (TableText, NftText, BaseChains)) or (isinstance(res, Sysctl)
                                                                 and when_written(res.name) == "tables")


def _restore_in_parallel(tails: dict[str, list[_Step]], done: list[Op]) -> None:
    """Each namespace's rule tables in order, the namespaces side by side (all at once, see threads.transaction_workers;
    an iptables-restore process each, an nft transaction through libnftables or the nft program, see kernel/nft.py):
    a node's thousands of rules do not wait for the other nodes'."""
    def run(ns: str) -> tuple[list[Op], KernelError | None]:
        mine: list[Op] = []
        for step in tails[ns]:
            try:
                step.run()  # type: ignore[misc]
            except (OSError, iptables.IptablesError, nftmod.NftError) as exc:
                code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EIO
                return mine, KernelError(step.op, code, f"{step.what}: {_reason(exc)}")
            _mark(mine, step)
        return mine, None

    if len(tails) <= 1:
        results = [run(ns) for ns in tails]
    else:
        from concurrent.futures import ThreadPoolExecutor  # here: status and probe read, and apply nothing

        with ThreadPoolExecutor(max_workers=transaction_workers(len(tails))) as pool:
            results = list(pool.map(run, tails))
    failure = None
    for mine, error in results:
        done += mine
        failure = failure or error
    if failure is not None:
        raise KernelError(failure.op, failure.code, str(failure), applied=done)


def _enough_descriptors(want: int = 1 << 16) -> None:
    """A socket per namespace: a 1,000-pod lab holds more descriptors than the usual soft limit
    (1,024). Raise this process's soft RLIMIT_NOFILE towards its hard limit, as far as ``want`` (kernel/nofile.py:
    what netlab execs for the user gets the limit it was given back)."""
    nofile.raise_soft(want)


def what_of(res: Resource) -> str:
    return res.describe()


def _mark(done: list[Op], step: _Step) -> None:
    if step.primary and (not done or done[-1] is not step.op):
        done.append(step.op)


def _errno_text(code: int) -> str:
    return {errno.EEXIST: "already exists", errno.ENODEV: "no such device", errno.EINVAL: "invalid argument",
            errno.EPERM: "operation not permitted", errno.ESRCH: "no such process (gateway unreachable?)",
            errno.EOPNOTSUPP: "not supported by this kernel", errno.ENETUNREACH: "network unreachable",
            errno.ENETDOWN: "network is down"}.get(code, os.strerror(code))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
