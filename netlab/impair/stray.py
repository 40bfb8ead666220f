"""Root qdiscs added by hand on the lab's interfaces that no impairment names, and ingress or clsact qdiscs: drift,
which ``up`` takes off.

``tc qdisc add dev flannel.1 root tbf rate 8kbit ...`` on a node shapes what it
sends to the other nodes as an impairment would, but the topology does not
say it. Every device netlab (and Flannel, and the bridge CNI plugin) makes is
one the kernel gives ``noqueue`` (IFF_NO_QUEUE: veth, bridge, VXLAN, lo; handle
``0:``); any root qdisc added has a handle of its own (``1:``, ``8001:``), so
that is what tells one (rtnl_parse.added_root_qdisc). The kernel gives a
device of txqueuelen 0 (the CNI veths, flannel.1) 1000 when a qdisc is
attached to it (qdisc_create): ``status`` names the qdisc as the cause of that
txqueuelen, on the link's one line.

Read from the snapshot ``status`` and ``up`` take of each namespace (one
qdisc dump more: kernel/readns.py); the interfaces an impairment shapes now or
did (netlab.impair.lifecycle) are that feature's, and what a user's CNI
plugins made (the bandwidth plugin's tbf) is theirs (realize/attachments.py).
``up`` deletes the root qdisc (RTM_DELQDISC, kernel/tc.py) through the run's
journal: the device gets its default back; the txqueuelen is the link's repair.
A rollback puts both back (the qdisc from its dump's message), as the kernel was,
but for what hung under the qdisc (an htb's classes, a qdisc under one, filters):
the deletion takes it with the qdisc, its dump's message does not hold it, and
the rollback's line names what the kernel does not show again (:func:`put_back_alone`;
a prio's own classes come back with it, a hand's do not).

An ingress or clsact qdisc (``tc qdisc add dev eth0 ingress``, then ``tc filter add dev eth0 ingress ... action
drop``) holds filters that act on what the device takes in, before the stack sees it: nothing netlab, Flannel or
the reference plugins make has one (the bandwidth plugin's on a host veth is the user's CNI's, left to it as its
tbf is), so any is drift, said with how many filters hang on it, and ``up`` deletes it with its filters
(``tc qdisc del dev D ingress``), on an impaired interface too (an impairment shapes with a root qdisc). Its
removal is not journaled: a rollback could add the qdisc again, not the filters that made it matter.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Iterable, NamedTuple

from netlab.impair.lifecycle import RECORD, wanted, words
from netlab.kernel import netlink, tc
from netlab.kernel.base import Kernel, Op, Snapshot
from netlab.plan.hand_qdisc import HandQdisc
from netlab.plan.resources import Bridge, Link, Loopback, Resource, Veth, VethPeer, Vxlan
from netlab.realize.diff import Drift

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.realize.state import LabState

NOQUEUE_KINDS = (Bridge, Loopback, Veth, VethPeer, Vxlan)  # IFF_NO_QUEUE devices: the kernel's root is noqueue


def shaped(lab: Lab, state: LabState) -> set[tuple[str, str]]:
    """(namespace, interface) of every interface the impairment feature keeps: impaired now, or shaped before and
    not yet taken back (its own drift says those)."""
    rec = state.extra.get(RECORD)
    before = rec.get("shaped") if isinstance(rec, dict) else None
    old = {(ns, i) for ns, v in (before if isinstance(before, dict) else {}).items() if isinstance(v, list)
           for i in v if isinstance(i, str)}
    return set(wanted(lab)) | old


def qdisc_words(body: bytes) -> str:
    """A root qdisc as tc names it: ``tbf rate 8kbit``, ``netem delay 30ms``, ``htb``."""
    q = tc.parse_qdisc(netlink.Msg(tc.RTM_NEWQDISC, 0, 0, body))
    what = words(tc.Shaping(q.rate_bits, q.delay_us, q.jitter_us, off=q.off)) if q.kind in ("tbf", "netem") else ""
    return f"{q.kind} {what}" if what and what != "none" else q.kind


class Stray(NamedTuple):
    link: Link  # the planned link
    words: str  # its qdisc in tc's words
    txqlen: int  # its txqueuelen as read
    body: bytes = b""  # a root qdisc's dump message body (a rollback adds it again from it)
    ingress: bool = False  # an ingress or clsact qdisc, not a root one
    under: tuple[int, int, int] = (0, 0, 0)  # a root one's classes, qdiscs under them, filters


def under_words(n: tuple[int, int, int]) -> str:
    """``2 classes, 1 qdisc and 1 filter``; "" for none."""
    parts = [f"{k} {what}{'es' if what == 'class' and k != 1 else 's' if k != 1 else ''}"
             for k, what in zip(n, ("class", "qdisc", "filter")) if k]
    return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)


def _filters(n: int) -> str:
    return f"{n} filter{'s' if n != 1 else ''}" if n else "no filter"


def found(ns: str, snap: Snapshot, planned: Iterable[Resource], skip: set[tuple[str, str]]) -> list[Stray]:
    """The planned links of ``ns`` with a root qdisc someone added (not on those of ``skip``, the impaired ones)
    or an ingress or clsact qdisc: that qdisc in tc's words, the link's txqlen."""
    if not snap.root_qdiscs and not snap.ingress_qdiscs:
        return []
    out: list[Stray] = []
    for r in planned:
        if not isinstance(r, Link):
            continue
        link = snap.links.get(r.name)
        if link is None:
            continue
        if (ns, link.name) not in skip and link.index in snap.root_qdiscs:
            body = snap.root_qdiscs[link.index]
            out.append(Stray(r, qdisc_words(body), link.txqlen or 0, body,
                             under=snap.root_qdisc_under.get(link.index, (0, 0, 0))))
        if link.index in snap.ingress_qdiscs:
            kind, filters = snap.ingress_qdiscs[link.index]
            out.append(Stray(r, f"{kind} qdisc with {_filters(filters)}", link.txqlen or 0, ingress=True))
    return out


def default_of(r: Link) -> str:
    return "the kernel's noqueue" if isinstance(r, NOQUEUE_KINDS) else "the kernel's default"


def _txqlen_words(r: Link, txqlen: int) -> str:
    return f", which made the kernel set txqlen {txqlen}" if r.txqlen == 0 and txqlen != 0 else ""


def _acts(what: str) -> str:
    """What an ingress qdisc's filters see of the device's traffic; a clsact's, both ways."""
    return "takes in and what it sends" if what.startswith("clsact ") else "takes in"


def merged(drifts: list[Drift], strays: list[Stray]) -> list[Drift]:
    """``drifts`` with each stray qdisc said on its link's line, first: the cause of a txqueuelen of 1000 on a
    device planned with 0, which the kernel gave it with the qdisc."""
    if not strays:
        return drifts
    out = list(drifts)
    for r, what, txqlen, _, ingress, _ in strays:
        said = (f"{what} added (want none: its filters act on what {r.name} {_acts(what)})" if ingress else
                f"root qdisc {what} added (want {default_of(r)})") + _txqlen_words(r, txqlen)
        at = next((i for i, d in enumerate(out) if d.state == "different" and d.resource.key == r.key), None)
        if at is None:
            out.append(Drift("different", r, said, live=r))
            continue
        d = out[at]
        out[at] = replace(d, detail=f"{said}; {d.detail}" if d.detail else said)
    return out


def root_qdisc_del(ns: str, s: Stray) -> Op:
    """The journaled deletion of a stray root qdisc (RTM_DELQDISC): the device gets the kernel's default back, and a
    rollback of the run adds the qdisc again, as it puts back the txqueuelen the link's repair set (the kernel's
    1000 came with that qdisc)."""
    hand = HandQdisc(ns, dev=s.link.name, words=s.words, body=s.body, args=tc.qdisc_args(s.body),
                     under=s.under)
    return Op("del", hand, missing_ok=True)  # gone: ENOENT


def put_back_alone(kernel: Kernel, qdiscs: list[HandQdisc]) -> list[str]:
    """A rollback added these root qdiscs again from their dumps' bodies: what hung under each when the run found
    it (its classes, the qdiscs under them, its filters) and the kernel does not show again, in words (none when
    all came back: a prio's own classes), or the qdisc itself when the kernel shows another root (it refused the
    dump's options: the journal's undo does not say it); what cannot be read is not said (the namespace gone)."""
    names = sorted({q.netns for q in qdiscs})
    try:
        snaps = kernel.snapshot_many({ns: ([], False) for ns in names if kernel.netns_mounted(ns)})
    except Exception:  # noqa: BLE001 - the words only: a rollback goes on
        return []
    out = []
    for q in qdiscs:
        snap = snaps.get(q.netns)
        link = snap.links.get(q.dev) if isinstance(snap, Snapshot) else None
        if link is None:
            continue
        if snap.root_qdiscs.get(link.index, b"")[8:12] != q.body[8:12]:  # its handle (a link made again: another index)
            under = under_words(q.under)
            out.append(f"root qdisc {q.words} of {q.dev} in {q.netns}{f' and the {under} under it' if under else ''}"
                       ", which the kernel would not take again as its dump gave it")
            continue
        now = snap.root_qdisc_under.get(link.index, (0, 0, 0))
        lost = under_words(tuple(max(0, was - back) for was, back in zip(q.under, now)))  # type: ignore[arg-type]
        if lost:
            out.append(f"the {lost} under root qdisc {q.words} of {q.dev} in {q.netns}, which went with it (the "
                       "rollback added the qdisc again alone)")
    return out


def ingress_qdisc_del(ns: str, s: Stray) -> tuple[bool, str | None]:
    """Delete a stray ingress or clsact qdisc with its filters (not journaled: see the module's text): whether there
    was one to delete (False: gone already), and the error's words when the kernel refuses, else None."""
    try:
        return tc.delete_ingress(ns, s.link.name), None
    except OSError as exc:  # TcError; NetnsGone
        return False, str(exc)


def _name(s: Stray) -> str:
    return f"the {s.words}" if s.ingress else f"root qdisc {s.words}"


def replaced(kernel: Kernel, ns: str, s: Stray) -> bool:
    """Whether a root qdisc up did not delete by the handle it read (the kernel refused: impair/stray.root_qdisc_del)
    is another one now, someone's since up read it (False: the kernel's own again, or nothing can be read)."""
    if s.ingress:
        return False
    try:
        snap = kernel.snapshot_many({ns: ([], False)}).get(ns)
    except Exception:  # noqa: BLE001 - the words only
        return False
    link = snap.links.get(s.link.name) if isinstance(snap, Snapshot) else None
    return link is not None and link.index in snap.root_qdiscs


def removed_words(ns: str, s: Stray, done: bool = True, changed: bool = False) -> str:
    """What up did of a stray qdisc it removed; ``done`` False: one already gone as it came to remove it (someone
    took it off since up read it, or its device went), or, ``changed``, another root qdisc there in its place,
    left as it is (up deletes only the one it read)."""
    if changed:
        return (f"{_name(s)} of {s.link.name} in {ns} changed since up read it (another root qdisc is there now): "
                "left as it is")
    qlen = f"; the txqlen {s.txqlen} the kernel gave it with the qdisc is set back to 0" \
        if _txqlen_words(s.link, s.txqlen) else ""
    why = f"none of the lab's: nothing acts on what {s.link.name} {_acts(s.words)} again" if s.ingress \
        else f"no impairment of the topology's: {s.link.name} has {default_of(s.link)} again"
    if not done:
        return f"{_name(s)} of {s.link.name} in {ns} was already gone when up came to remove it ({why}{qlen})"
    under = under_words(s.under) if not s.ingress else ""
    went = f"; its {under} went with it" if under else ""
    return f"removed {_name(s)} from {s.link.name} in {ns} ({why}{went}{qlen})"


def refused_words(ns: str, s: Stray, why: str) -> str:
    return f"could not remove {_name(s)} from {s.link.name} in {ns}: {why}"
