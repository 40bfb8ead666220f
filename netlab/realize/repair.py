"""From drift to kernel operations: the fewest changes that make a namespace match its plan.

Each kind of object has one way to be made, changed and taken away (see
:class:`~netlab.kernel.base.Op`): a link that is only down, or has another
MTU or MAC, is *set*, not deleted and made again; a route or neighbour entry
is *replaced* in place; a link of another kind, a veth whose peer is not its
pair, or a VXLAN device with other settings is made again. A link made again
loses what hung on it (addresses, routes, neighbour and FDB entries, bridge
ports), so those are put back in the same pass.

Order, so that every step can be taken back (a failed ``up`` undoes its ops in
reverse) and no step needs one that comes later:

1. extra objects that are not links (rules, routes, ARP/FDB entries, addresses);
2. sysctls (before links: a new interface copies ``default``);
3. links: made again, made, set; bridges before veths before VTEPs;
4. addresses, ARP, FDB, routes, rules (Flannel's order: the route last), then
   an interface's own sysctls (its link made again by step 3 has the defaults); an
   address added again (its flags differ) before the routes that need its
   connected route, and a device's only one with the routes and ARP entries its
   deletion took;
5. iptables tables, then nf_conntrack's sysctls (the tables' rules have the
   kernel load the module, whose files they are, where it is not loaded yet);
6. extra links last: a deleted link of a kind netlab cannot make again
   cannot be put back, so nothing may fail after it.

plan/sysctls.py's ``when_written`` says which sysctl goes where.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Iterable

from netlab.kernel import iptables
from netlab.model import naming
from netlab.kernel.base import NftText, Op, TableText
from netlab.plan.resources import (Address, BaseChains, Bridge, Fdb, Link, Loopback, NatRules, Neigh, NftRules,
                                   Resource, Route, Rule, Sysctl, Veth, VethPeer, Vxlan)
from netlab.plan.sysctls import when_written
from netlab.realize.backend import foreign_payload
from netlab.realize import netfilter_drift, nft_sync, nftables
from netlab.realize.diff import Drift
from netlab.realize.observe import Observed

# Kernel order (plan/build.py's ORDER, with the kinds only a repair meets). A node's pod bridge (cni0) and its
# ports come after its VTEP: a real Flannel node has eth0, then flannel.1 (flanneld starts before any pod), then
# cni0 (the bridge plugin makes it at the first pod's ADD), then the pods' veths, and `ip link` lists them by
# ifindex, which a namespace gives its links in the order they are made (QA 62k).
KIND_RANK = {kind: i for i, kind in enumerate(("loopback", "bridge", "veth", "veth-peer", "vxlan", "pod-bridge",
                                               "pod-veth", "link", "address", "neigh", "fdb", "route", "rule"))}


def _rank(r: Resource) -> int:
    if isinstance(r, Bridge) and r.name == naming.BRIDGE:
        return KIND_RANK["pod-bridge"]
    if isinstance(r, Veth) and r.master == naming.BRIDGE:
        return KIND_RANK["pod-veth"]
    return KIND_RANK.get(r.kind, len(KIND_RANK))


def _needs_remaking(want: Link, have: Link) -> bool:
    """A link that ``ip link set`` cannot turn into the planned one."""
    if type(want) is not type(have):
        return True
    if isinstance(want, Veth):
        return not have.peer_name  # type: ignore[attr-defined]
    if isinstance(want, Vxlan):
        # Every setting of its own (VNI, port, addresses, TTL, default remote ...): made again, as flanneld makes
        # a device that differs (ensureLink); most cannot change in place, and the kernel keeps a remote's
        # all-zeros FDB entry with the device. Its ageing the kernel changes in place (changelink): set.
        return any(getattr(want, name) != getattr(have, name) for name in VXLAN_OWN)
    return False


VXLAN_IN_PLACE = ("ageing",)  # `ip link set DEV type vxlan ageing N`: kernel/base.py's LINK_ATTRS
VXLAN_OWN = tuple(f.name for f in fields(Vxlan) if f.name not in {g.name for g in fields(Link)} | set(VXLAN_IN_PLACE))


def _hangs_on(r: Resource, netns: str, link: str) -> bool:
    """Does ``r`` go away with link ``link`` of ``netns``?"""
    if r.netns != netns:
        return False
    return getattr(r, "dev", None) == link or (isinstance(r, Veth) and r.master == link)


def _stale_peer(r: Resource, observed: dict[str, Observed]) -> list[Op]:
    """A veth about to be made (again) is born with its peer: a link already standing under the peer's name in
    the peer's namespace is no pair of it, and the kernel refuses the new pair (EEXIST) while it stands. It goes
    first. So it is with a pod's eth0 after its node's namespace was deleted: its old pair dies with that
    namespace, but the kernel frees a namespace asynchronously, later under load (or never, while something
    holds it open), and until then eth0 stands, paired with a veth in a namespace that has no name any more."""
    if not isinstance(r, Veth) or r.peer_netns not in observed:
        return []
    have = observed[r.peer_netns].objects.get(("link", r.peer_netns, r.peer_name))
    return [Op("del", have, missing_ok=True)] if isinstance(have, Link) else []


def stale_peer_ops(made: Iterable[Resource], observed: dict[str, Observed]) -> list[Op]:
    """For the veths of namespaces made in this run (a node's, made again after ``ip netns del``): the links
    that stand where their peers are to be born, in namespaces that were there (:func:`_stale_peer`)."""
    return [op for r in made for op in _stale_peer(r, observed)]


def repair_ops(drifts: Iterable[Drift], expected: dict[str, list[Resource]],
               observed: dict[str, Observed]) -> list[Op]:
    """The ops that turn what ``observed`` holds into what ``expected`` says, given their ``drifts``."""
    extras: list[Op] = []
    extra_links: list[Op] = []
    sysctls: list[Op] = []
    remove_links: list[Op] = []
    links: list[Op] = []
    objects: list[Op] = []
    tables: list[Op] = []
    remade: set[tuple[str, str]] = set()  # (netns, link) made or made again in this pass
    handled: set[tuple] = set()
    readdressed: set[tuple[str, str]] = set()  # (netns, link) whose one address is taken away and added again

    for d in drifts:
        r = d.resource
        if d.state == "extra":
            if isinstance(r, NatRules):
                tables.append(_table_op(r, observed, d.backend))
            elif isinstance(r, NftRules):
                tables.append(_nft_op(r, observed))
            elif isinstance(r, BaseChains):  # after the restores (their rules gone, the next round finds them)
                tables.append(Op("del", r))
            elif isinstance(r, Link):
                extra_links.append(Op("del", r, missing_ok=True))
            else:
                extras.append(Op("del", r, missing_ok=True))
            continue
        handled.add(r.key)
        if isinstance(r, Sysctl):
            sysctls.append(Op("write", r, old=d.live))
        elif isinstance(r, NatRules):
            tables.append(_table_op(r, observed, ""))
        elif isinstance(r, NftRules):
            tables.append(_nft_op(r, observed))
        elif isinstance(r, Link):
            if d.state == "missing":
                if isinstance(r, (VethPeer, Loopback)):
                    continue  # made with its veth / by the kernel: nothing to make here
                remove_links += _stale_peer(r, observed)
                links.append(Op("add", r))
                remade.add((r.netns, r.name))
                if isinstance(r, Veth):
                    remade.add((r.peer_netns, r.peer_name))
            elif isinstance(d.live, Link) and _needs_remaking(r, d.live):
                # It may be gone by the time it is deleted: a veth whose peer is in a namespace deleted by hand
                # dies with it, once the kernel frees that namespace (asynchronously, later under load)
                remove_links.append(Op("del", d.live, missing_ok=True))
                if isinstance(r, VethPeer):
                    continue  # its veth is made again from the other side
                remove_links += _stale_peer(r, observed)
                links.append(Op("add", r))
                remade.add((r.netns, r.name))
                if isinstance(r, Veth):
                    remade.add((r.peer_netns, r.peer_name))
            else:
                links.append(Op("set", r, old=d.live))
        elif isinstance(r, Address) and d.state == "different" and isinstance(d.live, Address):
            if replace(d.live, valid_lft=r.valid_lft, preferred_lft=r.preferred_lft, metric=r.metric) == r:
                # Its lifetimes set forever and its metric the plan's in place: the kernel moves its connected route
                # to that metric (fib_modify_prefix_metric, Linux 4.18, the release that reports an address's metric
                # at all), and nothing that hangs on the device goes
                objects.append(Op("replace", r, old=d.live))
                continue
            # Taken away and added again (the kernel changes no flag of one there: noprefixroute): it makes its
            # routes again with it. A device's last address takes every route through it, and its ARP entries
            # (fib_disable_ip): those of the plan are put back after it (below), as for a link made again
            objects += [Op("del", d.live), Op("add", r)]
            there = observed[r.netns].objects.values() if r.netns in observed else ()
            if not [a for a in there if isinstance(a, Address) and a.dev == r.dev and a.key != r.key]:
                readdressed.add((r.netns, r.dev))
        elif isinstance(r, Route) and r.proto == "kernel" and r.dev and d.state in ("missing", "different"):
            # A connected route goes and comes through its own device (kernel/live_objects): a replace would take
            # the place of the prefix's first route, another device's there (diff.diff_connected keeps them apart)
            objects += ([Op("del", d.live)] if d.state == "different" else []) + [Op("add", r)]  # type: ignore
        elif isinstance(r, (Route, Neigh)) or isinstance(r, Fdb) and d.state == "different":
            # An FDB entry of the plan's MAC and remote with another port, VNI, device or state: replaced in place
            # (flanneld's AddFDB), the old one's put back by a rollback
            objects.append(Op("replace", r, old=d.live))
        elif isinstance(r, (Address, Fdb, Rule)):
            objects.append(Op("add", r))
        else:
            raise ValueError(f"no repair for {r.describe()}")

    # What hung on a link made (again) in this pass is gone with the old one: put it back.
    for ns, link in sorted(remade):
        if ns not in observed:
            continue  # a namespace made in this run gets everything anyway (create_ops)
        for r in expected.get(ns, []):
            if r.key in handled or not _hangs_on(r, ns, link):
                continue
            handled.add(r.key)
            if isinstance(r, Veth):
                if (ns, r.name) not in remade:  # a port of a bridge made again: enslave it again
                    have = observed[ns].objects.get(r.key)
                    if isinstance(have, Veth):
                        # a new port: the kernel makes it forwarding by itself
                        links.append(Op("set", r, old=replace(have, master=None, hairpin=False, port_settings=(),
                                                              port_state=r.port_state)))
            elif isinstance(r, (Route, Neigh)):
                objects.append(Op("replace", r))
            elif isinstance(r, (Address, Fdb)):
                objects.append(Op("add", r))

    for ns, link in sorted(readdressed - remade):
        objects += [Op("replace", r) for r in expected.get(ns, []) if isinstance(r, (Route, Neigh))
                    and r.key not in handled and _hangs_on(r, ns, link)]
    return ordered(extras + sysctls + remove_links + links + objects + tables + extra_links)


def made_links(ops: Iterable[Op]) -> frozenset[tuple[str, str]]:
    """The links ``ops`` make, (namespace, name): a veth's peer, born with it, too."""
    out = set()
    for op in ops:
        r = op.res
        if op.verb == "add" and isinstance(r, Link):
            out.add((r.netns, r.name))
            if isinstance(r, Veth):
                out.add((r.peer_netns, r.peer_name))
    return frozenset(out)


def _phase(op: Op, made: frozenset[tuple[str, str]] = frozenset()) -> int:
    """Which step of the order in the module docstring an op belongs to; ``made``: the links made in the same
    ops (:func:`made_links`)."""
    r = op.res
    if isinstance(r, (TableText, NftText, BaseChains)):
        return 5
    if isinstance(r, Sysctl):
        return {"netns": 1, "link": 4, "tables": 5}[when_written(r.name)]
    if isinstance(r, Link):
        if op.verb == "del":
            # an extra link goes last; one made again, and a pod's eth0 standing where its new pair is made
            # (_stale_peer), before anything is made, also when the kernel may free it by itself meanwhile
            # (missing_ok)
            last = op.missing_ok and not isinstance(r, VethPeer) and (r.netns, r.name) not in made
            return 6 if last else 2
        return 3
    return 0 if op.verb == "del" and op.missing_ok else 4


def ordered(ops: Iterable[Op]) -> list[Op]:
    """Ops in kernel order (stable: the plan's own order holds within a kind)."""
    ops = list(ops)
    made = made_links(ops)

    def key(op: Op) -> tuple:
        phase = _phase(op, made)
        # An interface's sysctl ranks after every kind of object (_rank), nf_conntrack's after the tables.
        rank = _rank(op.res) if phase in (3, 4) else int(isinstance(op.res, Sysctl))  # type: ignore[arg-type]
        return (phase, rank, op.verb != "del")

    return sorted(ops, key=key)


def stages(ops: list[Op]) -> list[list[Op]]:
    """``ops`` (in :func:`ordered` order) cut where one namespace's step needs another's done first.

    The kernel sends each stage namespace by namespace. What is taken away
    (steps 1 and 2 of the order above, and links made again) must be gone in
    every namespace before anything is made in any: a veth is made from its
    node's side with its peer already named in the pod. Extra links go last,
    after everything else everywhere.
    """
    cut: list[list[Op]] = [[], [], []]
    made = made_links(ops)
    for op in ops:
        phase = _phase(op, made)
        cut[0 if phase <= 2 else 2 if phase == 6 else 1].append(op)
    return [stage for stage in cut if stage]


def _table_op(planned: NatRules, observed: dict[str, Observed], backend: str) -> Op:
    obs = observed.get(planned.netns)
    text = obs.tables.get(backend, {}).get(planned.table) if obs else None
    if backend:  # the backend the lab is not in: all of it goes (realize/backend)
        payload = foreign_payload(planned.table, text, planned.plugin_jumps) or f"*{planned.table}\nCOMMIT\n"
    else:
        payload = netfilter_drift.table_payload(planned, text) or f"*{planned.table}\nCOMMIT\n"
        if text and obs is not None and iptables.default_backend() == "nft":  # iptables-nft: its hooked chains only
            text = netfilter_drift.hooked_only(text, {c for t, c in obs.base_chains if t == planned.table})
    old = TableText(planned.netns, planned.table, text or f"*{planned.table}\nCOMMIT\n", backend)
    return Op("restore", TableText(planned.netns, planned.table, payload, backend, noflush=True), old=old)


def _nft_op(planned: NftRules, observed: dict[str, Observed]) -> Op:
    """Make an nftables table as planned (or, unplanned, take it away) in one transaction; the old one can be
    put back."""
    obs = observed.get(planned.netns)
    have = obs.nft.get((planned.family, planned.table)) if obs else None
    gone = nft_sync.delete_payload(planned.family, planned.table)
    old = None
    if have is not None:  # what was there, made again from its listing (a dynamic set's elements are lost)
        seen = nftables.listing(have)
        old = NftText(planned.netns, planned.family, planned.table,
                      nft_sync.replay_payload(planned.family, planned.table, seen), seen, whole=True)
    text, after, whole = planned.payload or gone, planned.listing, True
    if planned.payload and old is not None:  # the table is there: only what differs (kube-proxy's partial sync)
        delta = nft_sync.listing_delta(planned.family, planned.table, old.listing, planned.listing)
        if delta and not nft_sync.is_replay(delta, planned.family, planned.table):
            text, after, whole = delta, nftables.after_sync(old.listing, planned.listing), False  # emptied stay
    return Op("restore", NftText(planned.netns, planned.family, planned.table, text, after,
                                 removes=not planned.payload, whole=whole),
              old=old or NftText(planned.netns, planned.family, planned.table, gone, removes=True, whole=True))


def deleted_chains(ops: Iterable[Op]) -> dict[tuple[str, str], list[str]]:
    """What the iptables restores among ``ops`` delete (``-X``: chains the lab owns by name that the plan does not
    hold), by (namespace, table), as the Services feature reports its own (StartResult.deleted_chains)."""
    out: dict[tuple[str, str], list[str]] = {}
    for op in ops:  # the other backend's are said with its restore (said)
        if op.verb == "restore" and isinstance(op.res, TableText) and op.res.noflush and not op.res.backend:
            gone = [line[3:] for line in op.res.text.splitlines() if line.startswith("-X ")]
            if gone:
                out.setdefault((op.netns, op.res.table), []).extend(gone)
    return out


def stale_chain_ops(want: dict[str, list[Resource]], observed: dict[str, Observed]) -> list[tuple[Op, list[str]]]:
    """kube-proxy's belated deletion: per node, one transaction deleting the chains an earlier sync emptied
    (realize/nftables.py), with their names; run before the sync, apart from it."""
    out = []
    for ns, resources in want.items():
        obs = observed.get(ns)
        if obs is None:
            continue  # not observed (a namespace made in this run): no chain of an earlier sync in it
        for r in resources:
            if not isinstance(r, NftRules):
                continue
            have = obs.nft.get((r.family, r.table))
            chains = nftables.stale_chains(r, have)
            if chains:
                gone = {f"chain {name}" for name in chains}
                left = tuple(line for line in nftables.listing(have) if line not in gone)
                text = nft_sync.delete_chains_payload(r.family, r.table, chains)
                out.append((Op("restore", NftText(ns, r.family, r.table, text, left)), chains))
    return out


def links_brought_up(ops: Iterable[Op], veths: Iterable[Resource]) -> list[tuple[str, str]]:
    """The (namespace, link) whose carrier comes up through ``ops``: each link made, or set up from down, and
    the other end of its veth (``veths``: the plan's), which has carrier only while both ends are up. A bridge
    has carrier from its ports: one without any (a node without pods) is not waited for."""
    other: dict[tuple[str, str], tuple[str, str]] = {}
    bridged: set[tuple[str, str]] = set()
    for v in veths:
        if isinstance(v, Veth):
            other[(v.netns, v.name)] = (v.peer_netns, v.peer_name)
            other[(v.peer_netns, v.peer_name)] = (v.netns, v.name)
            if v.master:
                bridged.add((v.netns, v.master))
    out: list[tuple[str, str]] = []
    for op in ops:
        r = op.res
        if not isinstance(r, Link) or not r.up or op.verb not in ("add", "set"):
            continue
        if op.verb == "set" and isinstance(op.old, Link) and op.old.up:
            continue  # it was up already: its carrier stayed
        if isinstance(r, Bridge) and (r.netns, r.name) not in bridged:
            continue  # no port: no carrier (a bridge made anew says UNKNOWN, one set up again DOWN)
        here = (r.netns, r.name)
        out += [here] + ([other[here]] if here in other else [])
    return list(dict.fromkeys(out))


def create_ops(resources: Iterable[Resource]) -> list[Op]:
    """Everything of namespaces made in this run, in plan order (they hold nothing yet)."""
    ops: list[Op] = []
    for r in resources:
        if isinstance(r, Sysctl) and when_written(r.name) != "netns":
            ops.append(Op("write", r))  # once its link or nf_conntrack is there (ordered puts it there)
            continue
        if r.kind in ("netns", "sysctl"):
            continue  # made with the namespace
        if isinstance(r, NatRules):
            payload = netfilter_drift.table_payload(r, None)
            if payload:
                ops.append(Op("restore", TableText(r.netns, r.table, payload, noflush=True)))
        elif isinstance(r, NftRules):
            ops.append(Op("restore", NftText(r.netns, r.family, r.table, r.payload, r.listing, whole=True)))
        elif isinstance(r, (Route, Neigh)):
            ops.append(Op("replace", r))
        else:
            ops.append(Op("add", r))
    return ops


def said(ops: Iterable[Op], lab_backend: str) -> list[str]:
    """``up``'s lines for ``ops``. Where some take the lab's rules out of the backend it is not in (up
    --reconfigure moved it, or an `up` under the other alternative left rules there), each iptables restore names
    its backend, and the taken-out one its chains: both were said "restore iptables filter in NS", the same line
    twice, and the chains as stale ones of no backend."""
    ops = list(ops)
    other = any(op.verb == "restore" and isinstance(op.res, TableText) and op.res.backend for op in ops)
    out = []
    for op in ops:
        res = op.res
        if not (other and op.verb == "restore" and isinstance(res, TableText)):
            out.append(op.describe())
        elif not res.backend:
            out.append(f"restore iptables-{lab_backend} {res.table} in {res.netns}")
        else:
            gone = [line[3:] for line in res.text.splitlines() if line.startswith("-X ")]
            out.append(f"take the lab's {res.table} rules{' and chains ' + ', '.join(gone) if gone else ''} out of "
                       f"iptables-{res.backend} in {res.netns} (the lab is in iptables-{lab_backend})")
    return out
