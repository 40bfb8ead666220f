"""Traffic control: the root qdisc of an interface, set and read back over rtnetlink (netlab's codec).

What ``tc qdisc replace dev eth0 root handle 1: tbf rate 10mbit burst 12500 latency 50ms``
sends. The options are encoded here with tc(8)'s own arithmetic (iproute2's
tc/q_tbf.c and q_netem.c: the token bucket's ``buffer`` in scheduler ticks,
the rate table), as pyroute2's tc encoder ports it, byte for byte
(tests/unit/test_impair_tc.py checks both ways), plus what pyroute2's lacks:
tbf's rate field (``struct tc_ratespec``) holds 32 bits of bytes a second,
34.4 Gbit/s; a faster rate goes in ``TCA_TBF_RATE64`` beside a saturated
field, as tc sends it and as the kernel dumps it. A socket is opened in the
namespace for each call (a netlink socket keeps the namespace it was made in).

- rate only: ``tbf`` as the root qdisc;
- delay (and jitter): ``netem`` as the root, and with a rate a ``tbf`` child
  under its one class (parent <root>:1, handle 10:), the layout tc-netem(8)
  shows for "delay plus rate".

Every change is a replacement the kernel makes whole (RTM_NEWQDISC with
NLM_F_CREATE | NLM_F_REPLACE, ``tc qdisc replace``), so a change the kernel
refuses leaves the interface shaped as it was (net/sched/sch_api.c,
tc_modify_qdisc):

- a root of the same kind: its parameters are changed in place, after the
  kernel has checked them (same handle);
- a root of another kind: the kernel creates the new qdisc, and only then
  grafts it in the old one's place; it takes a handle the kernel picks
  (8001: ...), as a qdisc of another kind cannot take over the old handle
  ("Invalid qdisc name: must match existing qdisc");
- only the kernel's default there (``noqueue``, handle 0:): created as 1:.

A delay with a rate takes two requests (netem, then tbf under it): when the
second is refused, what the interface had is applied again. A delay that
loses its rate gets a new netem (NLM_F_EXCL: created and grafted even over
one of its kind), which drops the tbf under the old one.

Packets a device *sends* pass its root qdisc; what it receives does not.
Deleting the root qdisc gives the device its default back (``noqueue`` for
veth, bridge and vxlan devices).
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import struct
from dataclasses import dataclass

from netlab.kernel import netlink, rtnl, rtnl_parse
from netlab.kernel import netns as nsmod
from netlab.model.impair import LATENCY_US, NETEM_LIMIT, burst_bytes

# linux/rtnetlink.h, linux/pkt_sched.h
RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
TCMSG = struct.Struct("=BxxxiIII")  # family, ifindex, handle, parent, info
TCA_KIND, TCA_OPTIONS = rtnl_parse.TCA_KIND, 2
TCA_TBF_PARMS, TCA_TBF_RTAB, TCA_TBF_RATE64, TCA_TBF_PRATE64 = 1, 2, 4, 5
# netem's attributes after its struct (linux/pkt_sched.h): those that change what it does, when not zero
NETEM_EXTRAS = {1: "correlation", 3: "reorder", 4: "corrupt", 5: "loss model", 6: "rate", 7: "ecn", 12: "slot"}
TCA_HTB_INIT = 2  # htb's root options (struct tc_htb_glob); netlab shapes with tbf, the doctor probes htb too
# struct tc_tbf_qopt: rate and peakrate (struct tc_ratespec: cell_log, linklayer, overhead, cell_align, mpu,
# rate in bytes a second), limit (bytes queued), buffer (scheduler ticks), mtu
TBF_QOPT = struct.Struct("=BBHhHI" "BBHhHI" "III")
# struct tc_netem_qopt: latency (ticks), limit (packets), loss, gap, duplicate, jitter (ticks)
NETEM_QOPT = struct.Struct("=IIIIII")
U32_MAX = 0xFFFFFFFF

TC_H_ROOT = 0xFFFFFFFF
RTM_NEWTCLASS, RTM_GETTCLASS = 40, 42
TC_H_INGRESS = rtnl.TC_H_INGRESS  # the ingress qdisc's parent: what a device receives, before the stack sees it
INGRESS_HANDLE = 0xFFFF0000  # ffff:
# Filters (linux/rtnetlink.h, linux/pkt_cls.h, linux/tc_act/tc_mirred.h): a u32 classifier matching every frame
# (one key of mask 0), its classid, and an action: mirred's redirect to another device's egress.
RTM_NEWTFILTER = 44
ETH_P_ALL = 0x0003
TCA_U32_CLASSID, TCA_U32_SEL, TCA_U32_ACT = 1, 5, 7
TC_U32_TERMINAL = 1
# struct tc_u32_sel: flags, offshift, nkeys, offmask (be16), off, offoff, hoff, hmask (be32), then its keys;
# struct tc_u32_key: mask, val (be32), off, offmask
U32_SEL = struct.Struct("=BBBxHHhhI")
U32_KEY = struct.Struct("=IIii")
TCA_ACT_KIND, TCA_ACT_OPTIONS = 1, 2
TCA_MIRRED_PARMS = 2
# struct tc_mirred: struct tc_gen (index, capab, action, refcnt, bindcnt), eaction, ifindex
MIRRED_PARMS = struct.Struct("=IIiiiiI")
TCA_EGRESS_REDIR, TC_ACT_STOLEN = 1, 4
ROOT_HANDLE = 0x10000  # 1:
CHILD_HANDLE = 0xA0000  # 10:
RTAB_MTU = 1600  # the largest packet the rate table is sized for (cell_log 3: 256 cells of 8 bytes)
# The kernel's own root qdiscs: an interface showing one of these is not impaired.
DEFAULT_KINDS = frozenset({"noqueue", "pfifo_fast", "fq_codel", "mq", "fq", "pfifo", "noop"})


class TcError(OSError):
    """The kernel refused a qdisc change: errno and a line saying which."""

    def __str__(self) -> str:
        return str(self.strerror)


@dataclass(frozen=True)
class Shaping:
    """What an interface's qdiscs do to its egress (None: not set)."""

    rate_bits: int | None = None  # bits a second (tbf)
    delay_us: int | None = None  # netem
    jitter_us: int | None = None
    other: str | None = None  # a root qdisc netlab does not make (htb, sfq ...), by kind
    # Parameters of netlab's own qdiscs set otherwise than netlab sets them (a burst, a latency, a netem loss
    # changed with `tc qdisc change`), in tc's words: drift as much as another rate is.
    off: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.rate_bits or self.delay_us or self.jitter_us or self.other)


# --- encoding ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def ticks_per_us() -> float:
    """Scheduler ticks a microsecond, as tc reads them from /proc/net/psched (a tick is 64 ns: 15.625)."""
    try:
        with open("/proc/net/psched") as fh:
            t2us, us2t, clock_res, _ = (int(word, 16) for word in fh.read().split())
        return t2us / us2t * (clock_res / 1_000_000)
    except (OSError, ValueError):
        return 1000 / 64


def _xmittime(rate: float, size: float) -> int:
    """tc_calc_xmittime: the ticks ``size`` bytes take at ``rate`` bytes a second."""
    return int(int(1_000_000 * (float(size) / rate)) * ticks_per_us())


def tbf_options(rate_bits: int) -> bytes:
    """TCA_OPTIONS of ``tbf rate <rate_bits>bit burst <burst_bytes> latency 50ms`` (tc/q_tbf.c)."""
    rate = rate_bits // 8  # whole bytes a second, as tc sends it and the kernel keeps it (model.impair.rate_bits)
    burst = burst_bytes(rate_bits)
    limit = min(int(rate * float(LATENCY_US) / 1_000_000 + burst), U32_MAX)  # what 50 ms of waiting holds
    rate32 = min(int(rate), U32_MAX)  # past 32 bits: saturated here, the rate itself in TCA_TBF_RATE64
    cell_log = 0
    while (RTAB_MTU >> cell_log) > 255:
        cell_log += 1
    # The rate table: the ticks a packet of each size takes (the kernel uses it only to tell the link layer).
    rtab = [_xmittime(rate32, (i + 1) << cell_log) for i in range(256)]
    parms = TBF_QOPT.pack(cell_log, 0, 0, -1, 0, rate32, 0, 0, 0, 0, 0, 0, limit, _xmittime(rate, burst), 0)
    rate64 = netlink.attr(TCA_TBF_RATE64, struct.pack("=Q", int(rate))) if int(rate) > U32_MAX else b""
    return netlink.attr(TCA_TBF_PARMS, parms) + rate64 + netlink.attr(TCA_TBF_RTAB, struct.pack("=256I", *rtab))


def netem_options(delay_us: int, jitter_us: int = 0) -> bytes:
    """TCA_OPTIONS of ``netem delay <delay_us>us <jitter_us>us`` (a struct, not attributes: tc/q_netem.c)."""
    tick = ticks_per_us()
    return NETEM_QOPT.pack(int(delay_us * tick), NETEM_LIMIT, 0, 0, 0, int(jitter_us * tick))


def qdisc_replace(index: int, parent: int, handle: int, kind: str, options: bytes, fresh: bool = False) -> bytes:
    """``tc qdisc replace dev IDX parent P [handle H] KIND ...``; ``fresh``: a new qdisc even where one of
    that kind is (NLM_F_EXCL, handle 0: the kernel creates one and grafts it, dropping the old one's children)."""
    flags = netlink.NLM_F_CREATE | netlink.NLM_F_REPLACE | (netlink.NLM_F_EXCL if fresh else 0)
    body = TCMSG.pack(0, index, handle, parent, 0) + netlink.string(TCA_KIND, kind) + \
        netlink.attr(TCA_OPTIONS, options)
    return netlink.message(RTM_NEWQDISC, flags, body)


def ingress_add(index: int) -> bytes:
    """``tc qdisc add dev IDX handle ffff: ingress``: where filters on what the device receives hang."""
    body = TCMSG.pack(0, index, INGRESS_HANDLE, TC_H_INGRESS, 0) + netlink.string(TCA_KIND, "ingress")
    return netlink.message(RTM_NEWQDISC, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL, body)


def u32_add(index: int, prio: int, classid: int, redirect_to: int | None = None) -> bytes:
    """``tc filter add dev IDX parent ffff: protocol all prio P u32 match u32 0 0 classid C [action mirred
    egress redirect dev TO]``: every frame the device receives, sent on as ``redirect_to`` sends it (the bandwidth
    CNI plugin's redirect of a pod's traffic to its ifb, where a tbf shapes it)."""
    sel = U32_SEL.pack(TC_U32_TERMINAL, 0, 1, 0, 0, 0, 0, 0) + U32_KEY.pack(0, 0, 0, 0)
    options = netlink.u32(TCA_U32_CLASSID, classid) + netlink.attr(TCA_U32_SEL, sel)
    if redirect_to is not None:
        mirred = MIRRED_PARMS.pack(0, 0, TC_ACT_STOLEN, 0, 0, TCA_EGRESS_REDIR, redirect_to)
        action = netlink.string(TCA_ACT_KIND, "mirred") + \
            netlink.nested(TCA_ACT_OPTIONS, netlink.attr(TCA_MIRRED_PARMS, mirred))
        options += netlink.nested(TCA_U32_ACT, netlink.nested(1, action))
    body = TCMSG.pack(0, index, 0, INGRESS_HANDLE, (prio << 16) | socket.htons(ETH_P_ALL))
    body += netlink.string(TCA_KIND, "u32") + netlink.nested(TCA_OPTIONS, options)
    return netlink.message(RTM_NEWTFILTER, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL, body)


def qdisc_del(index: int, parent: int = TC_H_ROOT, handle: int = 0) -> bytes:
    """``tc qdisc del dev IDX parent P [handle H]`` (``root``: TC_H_ROOT)."""
    return netlink.message(RTM_DELQDISC, 0, TCMSG.pack(0, index, handle, parent, 0))


TCA_STAB = 8
TCA_HTB_INIT, HTB_VER = 2, 0x30011  # linux/pkt_sched.h: struct tc_htb_glob's first field, its version


def qdisc_add_dumped(index: int, body: bytes) -> bytes:
    """``tc qdisc add dev IDX root handle H KIND ...`` of a root qdisc as a dump's message ``body`` gave it (its
    kind, options and size table; not its statistics): one taken off put back as it was (impair/stray.py)."""
    _family, _index, handle, parent, _info = TCMSG.unpack_from(body)
    a = netlink.attrs(body, TCMSG.size)
    if a.get(TCA_KIND) == b"htb\0" and TCA_OPTIONS in a:
        a[TCA_OPTIONS] = _htb_options(a[TCA_OPTIONS])
    kept = b"".join(netlink.attr(t, a[t]) for t in (TCA_KIND, TCA_OPTIONS) if t in a)
    kept += netlink.nested(TCA_STAB, a[TCA_STAB]) if TCA_STAB in a else b""
    return netlink.message(RTM_NEWQDISC, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL,
                           TCMSG.pack(0, index, handle, parent, 0) + kept)



def _htb_options(options: bytes) -> bytes:
    """An htb's options as its dump gives them, as its init takes them: the dump's tc_htb_glob says the version
    whole (HTB_VER, 0x30011), htb_init wants its major alone (HTB_VER >> 16: "HTB version mismatch", EINVAL), as
    tc sends it. Every other attribute as it was."""
    nested = netlink.attrs(options)
    if TCA_HTB_INIT in nested and nested[TCA_HTB_INIT][:4] == struct.pack("=I", HTB_VER):
        nested[TCA_HTB_INIT] = struct.pack("=I", HTB_VER >> 16) + nested[TCA_HTB_INIT][4:]
    return b"".join(netlink.attr(t, v) for t, v in nested.items())


def qdisc_dump() -> bytes:
    return netlink.message(RTM_GETQDISC, 0, TCMSG.pack(0, 0, 0, 0, 0))



def class_dump(index: int) -> bytes:
    """``tc class show dev IDX``."""
    return netlink.message(RTM_GETTCLASS, 0, TCMSG.pack(0, index, 0, 0, 0))


# --- decoding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Qdisc:
    """One qdisc of a dump: where it hangs, and what netlab reads of its options."""

    index: int
    handle: int
    parent: int
    kind: str
    rate_bits: int | None = None  # tbf
    delay_us: int | None = None  # netem
    jitter_us: int | None = None
    off: tuple[str, ...] = ()  # its other parameters that are not what netlab sets (Shaping.off)


def _tbf_off(parms: bytes, o: dict[int, bytes], rate: int) -> tuple[str, ...]:
    """What of a tbf at ``rate`` bytes a second differs from netlab's own (tbf_options): every other
    parameter tc can set (burst, limit/latency, peakrate/mtu, overhead, mpu, linklayer), in tc's words."""
    (_cl, linklayer, overhead, _ca, mpu, _r, _pcl, _pll, _po, _pca, _pmpu, peak, limit, buffer,
     mtu) = TBF_QOPT.unpack_from(parms)
    ours = TBF_QOPT.unpack_from(netlink.attrs(tbf_options(rate * 8))[TCA_TBF_PARMS])
    prate64 = o.get(TCA_TBF_PRATE64, b"")
    peak = struct.unpack_from("=Q", prate64)[0] if len(prate64) >= 8 else peak
    out = []
    if buffer != ours[13]:
        out.append(f"burst {round(rate * buffer / ticks_per_us() / 1_000_000)}b")
    if limit != ours[12]:
        out.append(f"limit {limit}b")
    if peak or mtu:
        out.append(f"peakrate {peak * 8}bit")
    out += [f"{name} {v}" for name, v in (("overhead", overhead), ("mpu", mpu)) if v]
    if linklayer > 1:  # 0 as tc sends it, 1 (ethernet) as the kernel reads the rate table
        out.append("linklayer atm")
    return tuple(out)


def _netem_off(opts: bytes) -> tuple[str, ...]:
    """What of a netem differs from netlab's (netem_options): its limit, loss, gap, duplicate, and any of
    its attributes after the struct that does something (correlation, reorder, corrupt, rate ...)."""
    _latency, limit, loss, gap, dup, _jit = NETEM_QOPT.unpack_from(opts)
    out = [f"limit {limit}"] if limit != NETEM_LIMIT else []
    out += [f"{name} {v * 100 / U32_MAX:.4g}%" for name, v in (("loss", loss), ("duplicate", dup)) if v]
    out += [f"gap {gap}"] if gap else []
    extra = netlink.attrs(opts, (NETEM_QOPT.size + 3) & ~3)
    out += [name for key, name in NETEM_EXTRAS.items() if any(extra.get(key, b""))]
    return tuple(out)


def parse_qdisc(m: netlink.Msg) -> Qdisc:
    _family, index, handle, parent, _info = TCMSG.unpack_from(m.body)
    a = netlink.attrs(m.body, TCMSG.size)
    kind = netlink.get_str(a, TCA_KIND) or ""
    opts = a.get(TCA_OPTIONS)
    rate = delay = jitter = None
    off: tuple[str, ...] = ()
    if kind == "tbf" and opts:
        o = netlink.attrs(opts)
        parms, rate64 = o.get(TCA_TBF_PARMS, b""), o.get(TCA_TBF_RATE64, b"")
        if len(parms) >= TBF_QOPT.size:
            # The kernel dumps the rate field saturated and the rate itself in TCA_TBF_RATE64 past 32 bits.
            rate = 8 * (struct.unpack_from("=Q", rate64)[0] if len(rate64) >= 8 else TBF_QOPT.unpack_from(parms)[5])
            off = _tbf_off(parms, o, rate // 8) if rate else ()
    elif kind == "netem" and opts and len(opts) >= NETEM_QOPT.size:
        latency, _limit, _loss, _gap, _dup, jit = NETEM_QOPT.unpack_from(opts)
        delay = round(latency / ticks_per_us()) or None
        jitter = round(jit / ticks_per_us()) or None
        off = _netem_off(opts)
    return Qdisc(index, handle, parent, kind, rate, delay, jitter, off)


def qdisc_args(body: bytes) -> str:
    """tc's words after ``tc qdisc add dev D root`` that make a dump's qdisc again (``handle 8001: tbf rate 8000bit
    burst 3200b limit 3250b``): a tbf's parameters, a netem's delay, jitter, limit, loss, duplicate and gap, another
    kind's name alone; not a netem's correlation or reorder, another kind's options, nor its classes and filters."""
    q = parse_qdisc(netlink.Msg(RTM_NEWQDISC, 0, 0, body))
    head = f"handle {q.handle >> 16:x}: " if q.handle else ""
    opts = netlink.attrs(body, TCMSG.size).get(TCA_OPTIONS, b"")
    if q.kind == "tbf" and q.rate_bits:
        parms = netlink.attrs(opts)[TCA_TBF_PARMS]
        limit, buffer, mtu = TBF_QOPT.unpack_from(parms)[12:]
        burst = round(q.rate_bits // 8 * buffer / ticks_per_us() / 1_000_000)
        rest = [w for w in q.off if not w.startswith(("burst ", "limit "))]
        rest += [f"mtu {mtu}"] if any(w.startswith("peakrate ") for w in rest) else []
        return f"{head}tbf rate {q.rate_bits}bit burst {burst}b limit {limit}b" + "".join(f" {w}" for w in rest)
    if q.kind == "netem" and len(opts) >= NETEM_QOPT.size:
        jitter = f" {q.jitter_us}us" if q.jitter_us else ""
        rest = [w for w in q.off if w.split()[0] in ("limit", "loss", "duplicate", "gap")]
        return f"{head}netem delay {q.delay_us or 0}us{jitter}" + "".join(f" {w}" for w in rest)
    return f"{head}{q.kind}"


def shaping_of(qdiscs: list[Qdisc]) -> Shaping:
    """The shaping one interface's qdiscs (of a dump) describe."""
    rate = delay = jitter = None
    other = None
    off: tuple[str, ...] = ()
    for q in qdiscs:
        if q.kind == "tbf":
            rate, off = q.rate_bits, off + q.off
        elif q.kind == "netem":
            delay, jitter, off = q.delay_us, q.jitter_us, q.off + off
        elif q.parent == TC_H_ROOT and q.kind not in DEFAULT_KINDS:
            other = q.kind
    return Shaping(rate, delay, jitter, other, off)


# --- the kernel -------------------------------------------------------------------------------


def _links(conn: netlink.Conn, netns: str) -> dict[str, rtnl_parse.LinkMsg]:
    return {link.name: link for link in rtnl_parse.dump_links(conn, netns)}


def _qdiscs(conn: netlink.Conn, netns: str, index: int | None = None) -> list[Qdisc]:
    found = [parse_qdisc(m) for m in conn.dump(f"qdiscs in {netns}", qdisc_dump()) if m.mtype == RTM_NEWQDISC]
    return [q for q in found if index is None or q.index == index]


def _root(qdiscs: list[Qdisc]) -> Qdisc | None:
    return next((q for q in qdiscs if q.parent == TC_H_ROOT), None)


def _handle(there: Qdisc | None, kind: str, fresh: int) -> int:
    """The handle a replacement asks for: the one there when it is of the same kind (changed in place),
    ``fresh`` where only the kernel's default is, else 0 (the kernel picks one and grafts the new qdisc)."""
    if there is None or not there.handle:
        return fresh
    return there.handle if there.kind == kind else 0


def _shape(conn: netlink.Conn, where: str, index: int, have: list[Qdisc], want: Shaping) -> None:
    """Requests that turn the qdiscs ``have`` into ``want``'s; each one is whole or refused."""
    root = _root(have)
    if not want.delay_us and not want.jitter_us:  # no netem parameter does anything (a jitter round 0 does)
        if want.rate_bits:
            conn.request(f"set tbf (rate) as the root qdisc of {where}",
                         qdisc_replace(index, TC_H_ROOT, _handle(root, "tbf", ROOT_HANDLE), "tbf",
                                       tbf_options(want.rate_bits)))
        elif root is not None and root.handle:
            conn.request(f"delete the root qdisc of {where}", qdisc_del(index))
        return
    netem = netem_options(want.delay_us or 0, want.jitter_us or 0)
    handle = _handle(root, "netem", ROOT_HANDLE)
    changed_in_place = root is not None and handle == root.handle
    child = next((q for q in have if q.parent == handle + 1), None) if changed_in_place else None
    # A new netem, without the tbf under the old one; or whole, when the old one has attributes netlab does
    # not send (a reorder, a correlation): a change in place keeps those the request leaves out.
    fresh = (child is not None and not want.rate_bits) or (changed_in_place and root is not None and any(
        w in NETEM_EXTRAS.values() for w in root.off))
    conn.request(f"set netem (delay) as the root qdisc of {where}",
                 qdisc_replace(index, TC_H_ROOT, 0 if fresh else handle, "netem", netem, fresh=fresh))
    if not want.rate_bits:
        return
    if fresh:  # the kernel picked the new netem's handle, and took the old one's tbf with it
        handle, child = 0, None
    if not handle:  # the kernel picked the new netem's handle: the tbf goes under its class
        new_root = _root(_qdiscs(conn, where, index))
        handle = new_root.handle if new_root else ROOT_HANDLE
    conn.request(f"set tbf (rate) under netem on {where}",
                 qdisc_replace(index, handle + 1, _handle(child, "tbf", CHILD_HANDLE), "tbf",
                               tbf_options(want.rate_bits)))


def _why(exc: netlink.NetlinkError) -> str:
    if exc.errno == errno.ENOENT:
        return "the kernel lacks this qdisc"
    return os.strerror(exc.errno or 0)


def _refused(conn: netlink.Conn, where: str, iface: str, index: int, before: list[Qdisc],
             exc: netlink.NetlinkError) -> TcError:
    """The error of a refused change, once the interface has what it had before (put back if a first step of
    two had been made)."""
    had = shaping_of(before)
    line = f"{exc.what}: {_why(exc)}"
    try:
        now = _qdiscs(conn, where, index)
        if shaping_of(now) == had:
            return TcError(exc.errno, f"{line} ({iface} keeps its qdiscs)")
        if had.other:
            return TcError(exc.errno, f"{line} ({iface}'s root qdisc {had.other} was replaced before the refusal)")
        _shape(conn, where, index, now, had)
    except netlink.NetlinkError as again:
        return TcError(exc.errno, f"{line}; putting back what {iface} had failed too: {again}")
    return TcError(exc.errno, f"{line} ({iface} has its qdiscs as before again)")


def _keep_txqlen(conn: netlink.Conn, netns: str, iface: str, was: int | None) -> None:
    # A qdisc attached to a txqueuelen-0 device (the CNI plugin's veths, flannel.1) makes the kernel give it
    # the default 1000 (qdisc_create). tbf and netem keep their own limits, so the device gets its 0 back and
    # stays as the CNI plugin made it.
    if was != 0:
        return
    link = _links(conn, netns).get(iface)
    if link is not None and link.txqlen != 0:
        conn.request(f"set txqueuelen 0 on {iface} in {netns}", rtnl.link_set(link.index, txqlen=0))


def replace_root(netns: str, iface: str, rate_bits: int | None, delay_us: int | None = None,
                 jitter_us: int | None = None) -> None:
    """Make ``iface``'s egress shaped so; a change the kernel refuses is a TcError and leaves it as it was."""
    want = Shaping(rate_bits or None, delay_us or None, jitter_us or None)
    where = f"{iface} in {netns}"
    with nsmod.entered(netns), netlink.Conn() as conn:
        error = None
        try:
            link = _links(conn, netns).get(iface)
            if link is None:
                raise TcError(errno.ENODEV, f"{iface} does not exist in {netns}")
            before = _qdiscs(conn, netns, link.index)
        except netlink.NetlinkError as exc:
            raise TcError(exc.errno, str(exc)) from None
        try:
            _shape(conn, where, link.index, before, want)
        except netlink.NetlinkError as exc:
            error = _refused(conn, where, iface, link.index, before, exc)
        try:
            _keep_txqlen(conn, netns, iface, link.txqlen)
        except netlink.NetlinkError as exc:
            error = error or TcError(exc.errno, str(exc))
        if error is not None:
            raise error


def delete_root(netns: str, iface: str) -> None:
    """Give ``iface`` its default root qdisc back (nothing to do when it has it)."""
    with nsmod.entered(netns), netlink.Conn() as conn:
        link = _links(conn, netns).get(iface)
        if link is None:
            return  # the interface is gone, and its qdiscs with it
        try:
            conn.request(f"delete the root qdisc of {iface} in {netns}", qdisc_del(link.index))
        except netlink.NetlinkError as exc:
            # ENOENT/EINVAL: only the kernel's default is there (its handle is 0: "cannot delete")
            if exc.errno not in (errno.ENOENT, errno.EINVAL):
                raise TcError(exc.errno, str(exc)) from None


def delete_ingress(netns: str, iface: str) -> bool:
    """``tc qdisc del dev IFACE ingress`` (or ``clsact``: the same parent), with every filter on it: whether there
    was one to delete (False: none, or no ``iface``: gone already)."""
    with nsmod.entered(netns), netlink.Conn() as conn:
        link = _links(conn, netns).get(iface)
        if link is None:
            return False
        try:
            conn.request(f"delete the ingress qdisc of {iface} in {netns}", qdisc_del(link.index, TC_H_INGRESS))
        except netlink.NetlinkError as exc:
            if exc.errno != errno.ENOENT:
                raise TcError(exc.errno, str(exc)) from None
            return False  # gone already
        return True


def read(netns: str, ifaces: list[str]) -> dict[str, Shaping | None]:
    """Each interface's shaping as the kernel reports it (None: no such interface)."""
    with nsmod.entered(netns), netlink.Conn() as conn:
        links = _links(conn, netns)
        qdiscs = _qdiscs(conn, netns)
    out: dict[str, Shaping | None] = {}
    for iface in ifaces:
        link = links.get(iface)
        out[iface] = None if link is None else shaping_of([q for q in qdiscs if q.index == link.index])
    return out
