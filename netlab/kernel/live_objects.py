"""The netlink messages of the objects that hang on a namespace's links (kernel/live.py's encoding): addresses,
routes, a root qdisc someone added (impair/stray.py), neighbours, FDB entries, and the policy-routing rules."""

from __future__ import annotations

from typing import Callable

from netlab.kernel import rtnl, rtnl_bridge, rtnl_neigh, rtnl_vxlan, tc
from netlab.kernel.base import Op
from netlab.plan.hand_qdisc import HandQdisc
from netlab.plan.resources import Address, Fdb, Neigh, PortFdb, ProxyNeigh, Route, Rule


def encode(op: Op, index: Callable[[str, str], int]) -> list[bytes] | None:
    """The messages of ``op`` (each one whole or refused), ``index(netns, name)`` giving a link's index; None for an
    op of any other kind."""
    res, ns = op.res, op.netns
    if isinstance(res, Address):
        idx = index(ns, res.dev)
        ip, plen = str(res.address.ip), res.address.network.prefixlen
        if op.verb == "del":
            return [rtnl.addr_del(idx, ip, plen)]
        # replace: an address there given its metric and lifetimes in place (its other settings it keeps)
        forever = rtnl.INFINITY_LIFE_TIME
        lifetimes = (forever if res.valid_lft is None else res.valid_lft,
                     forever if res.preferred_lft is None else res.preferred_lft)
        return [rtnl.addr_add(idx, ip, plen, str(res.broadcast) if res.broadcast else None,
                              rtnl.scope_num(res.scope), res.metric,
                              rtnl.IFA_F_NOPREFIXROUTE if res.noprefixroute else 0,
                              lifetimes if res.lifetimes or op.verb == "replace" else None,
                              replace=op.verb == "replace")]
    if isinstance(res, Route):
        dst, plen = str(res.dst.network_address), res.dst.prefixlen
        # A connected route (proto kernel) goes and comes by its device: another device's of the prefix stays
        connected = res.proto == "kernel" and res.dev is not None and not res.nexthops
        if op.verb == "del":
            return [rtnl.route_del(dst, plen, res.table, rtnl.proto_num(res.proto), rtnl.scope_num(res.scope),
                                   rtnl.type_num(res.type), res.metric or None, res.tos,
                                   index(ns, res.dev) if connected else None)]
        oif = index(ns, res.dev) if res.dev else None
        gw, src = (str(a) if a else None for a in (res.gateway, res.src))
        return [rtnl.route_replace(dst, plen, oif, gw, res.onlink, res.table, rtnl.proto_num(res.proto),
                                   rtnl.scope_num(res.scope), rtnl.type_num(res.type), res.metric or None,
                                   src, [(str(h), oif or 0) for h in res.nexthops] or None, res.metrics,
                                   res.tos, append=connected and op.verb == "add")]
    if isinstance(res, HandQdisc):  # impair/stray.py: taken off, or put back as it was by a rollback
        idx = index(ns, res.dev)
        return [tc.qdisc_del(idx, handle=res.handle) if op.verb == "del" else tc.qdisc_add_dumped(idx, res.body)]
    if isinstance(res, Neigh):
        idx = index(ns, res.dev)
        if op.verb == "del":
            return [rtnl.neigh_del(idx, str(res.dst))]
        return [rtnl.neigh_replace(idx, str(res.dst), res.lladdr, rtnl_vxlan.NEIGH_STATES[res.state],
                                   rtnl_neigh.flag_bits(res.flags))]  # the flags it has: a replace clears others
    if isinstance(res, ProxyNeigh):  # a hand's (none is planned): deleted, or put back by a rollback
        idx = index(ns, res.dev) if res.dev else 0
        return [(rtnl_neigh.proxy_del if op.verb == "del" else rtnl_neigh.proxy_add)(idx, str(res.dst))]
    if isinstance(res, PortFdb):  # `bridge fdb add|del MAC dev PORT master static [sticky]`
        return [rtnl_bridge.port_fdb(op.verb, index(ns, res.dev), res)]
    if isinstance(res, Fdb):
        # The remote whole (its port, VNI and device where not the device's own): the kernel deletes only the
        # remote that matches all of them, and a rollback puts back the one there was
        idx, via = index(ns, res.dev), index(ns, res.via) if res.via else None
        remote = (idx, res.lladdr, str(res.dst), res.port, res.vni, via)
        if op.verb == "del":
            return [rtnl_vxlan.fdb_del(*remote)]
        build = rtnl_vxlan.fdb_replace if op.verb == "replace" else rtnl_vxlan.fdb_append
        return [build(*remote, state=res.state, flags=rtnl_neigh.flag_bits(res.flags))]
    if isinstance(res, Rule):
        build = rtnl.rule_del if op.verb == "del" else rtnl.rule_add
        src = res.src or None
        dst = res.dst or None
        return [build(res.priority, res.table, rtnl.action_num(res.action),
                      str(src.network_address) if src else None, src.prefixlen if src else 0,
                      str(dst.network_address) if dst else None, dst.prefixlen if dst else 0,
                      res.iif, res.oif, res.fwmark, res.fwmask, res.tos)]
    return None
