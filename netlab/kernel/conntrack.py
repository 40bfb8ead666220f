"""conntrack in a namespace: reading the entries, deleting them by filter or by exact tuple.

Each entry holds a connection's original tuple and the reply tuple the kernel
expects, so it carries what NAT decided for the flow (which endpoint a
Service's DNAT picked, which source a masquerade chose). ``trace`` and
``inspect`` read them with one ctnetlink dump through netlab's codec
(:func:`entries`, nfnl.CtRecord), no conntrack program, and show them as
``conntrack -L`` prints them, the text a learner compares with
(:func:`list_entries`). An entry that outlives the decision
keeps applying it: a UDP client that keeps sending from one port keeps
reaching an endpoint that is gone. Two ways to delete, for two kinds of caller:

- by filter (:func:`delete_counted`): "every UDP flow to ClusterIP:port
  DNATed to this endpoint", the way kube-proxy cleans up after an endpoint
  change. ctnetlink has no filtered delete: one dump, the filters (written
  as a learner types them for ``conntrack -D``) matched in Python as that
  program matches them (netlab.kernel.ctfilter), then one
  IPCTNL_MSG_CT_DELETE per match, by its original tuple and id, all on one
  socket, acknowledged in batches; no conntrack program;
- by exact original tuple (:func:`delete_flows`): the prober's own
  unanswered Service flows, hundreds per run, one IPCTNL_MSG_CT_DELETE each
  on one ctnetlink socket (nfnl.ct_delete), no process per flow.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Iterable, Sequence

from netlab.errors import EnvironmentNotReady, NetnsGone
from netlab.kernel.netlink import NetlinkError
from netlab.kernel import ctfilter, netlink, netns, nfnl

# The kernel module that answers ctnetlink, and how to get it (as the doctor's kernel conntrack line says it).
CTNETLINK_FIX = "modprobe nf_conntrack_netlink (CONFIG_NF_CONNTRACK, CONFIG_NF_CT_NETLINK)"
DRAIN_EVERY = 64  # requests sent between two reads of the kernel's answers


@dataclass(frozen=True)
class Flow:
    """A connection's original tuple, as the client sent it."""

    proto: int  # socket.IPPROTO_TCP or IPPROTO_UDP
    src: str
    sport: int
    dst: str
    dport: int


def entries(ns: str, proto: str | None = None) -> list[nfnl.CtRecord]:
    """The IPv4 entries of namespace ``ns`` (of protocol ``proto``: "tcp", "udp", "icmp"), in the kernel's order:
    one ctnetlink dump, what ``conntrack -L [-p PROTO]`` lists. NetnsGone when the namespace is gone;
    EnvironmentNotReady when the kernel has no ctnetlink (nf_conntrack_netlink)."""
    try:
        msgs = _dump(ns)
    except NetnsGone:
        raise
    except OSError as exc:  # no NETLINK_NETFILTER socket, or the subsystem refused the dump
        raise EnvironmentNotReady(f"cannot read the conntrack entries of {ns}: the kernel's ctnetlink refused "
                                  f"({exc}); {CTNETLINK_FIX}") from None
    records = [r for r in map(nfnl.ct_record, msgs) if r is not None]
    return [r for r in records if proto is None or r.proto == proto]


def list_entries(ns: str, proto: str | None = None) -> list[str]:
    """The entries of namespace ``ns`` as ``conntrack -L [-p PROTO]`` prints them, one line each (:func:`entries`)."""
    return [r.text() for r in entries(ns, proto)]


def _dump(ns: str) -> list[netlink.Msg]:
    with netns.entered(ns):
        conn = netlink.Conn(netlink.NETLINK_NETFILTER)
    with conn:
        return conn.dump(f"conntrack entries in {ns}", nfnl.ct_dump())


def delete_counted(ns: str, filters: Iterable[Sequence[str]]) -> tuple[list[int], list[str]]:
    """``conntrack -D FILTER...`` in namespace ``ns``, for every filter (conntrack(8)'s words): how many entries
    the kernel deleted for each filter (an entry several filters match is counted for the first), and the problems
    in words.

    One dump of the namespace's IPv4 entries, each matched against every filter (an entry several filters
    match is deleted once), then the matches deleted by their original tuples and ids. An entry gone
    meanwhile (ENOENT: it expired, or its flow's tuple is another entry's now) is no problem, but no deletion
    either: there was nothing of it left to delete. A namespace that is gone holds nothing.
    """
    parsed = [ctfilter.CtFilter.parse(f) for f in filters]
    counts = [0] * len(parsed)
    if not parsed:
        return counts, []
    try:
        with netns.entered(ns):
            conn = netlink.Conn(netlink.NETLINK_NETFILTER)
        with conn:
            records = [r for r in map(nfnl.ct_record, conn.dump(f"conntrack entries in {ns}", nfnl.ct_dump()))
                       if r is not None]
            doomed = ctfilter.matching(records, parsed)
            requests = [(f"delete conntrack entry {r.text()} in {ns}", _delete_msg(r)) for r in doomed]
            codes, problems = _delete_all(conn, requests)
    except NetnsGone:
        return counts, []
    except OSError as exc:
        return counts, [f"{ns}: deleting conntrack entries over ctnetlink: {exc}"]
    for r, code in zip(doomed, codes):
        if code == 0:
            counts[next(i for i, f in enumerate(parsed) if f.matches(r))] += 1
    return counts, problems


def _delete_msg(r: nfnl.CtRecord) -> bytes:
    o = r.orig
    return nfnl.ct_delete(o["src"], o["dst"], r.protonum, int(o["sport"]), int(o["dport"]), r.id)


def _delete_all(conn: netlink.Conn, requests: list[tuple[str, bytes]]) -> tuple[list[int], list[str]]:
    """Send every delete, acknowledged (netlink.Conn.batch stops after a chunk with a failure: the rest is sent
    again): each one's errno (0: the kernel deleted the entry), and the problems (ENOENT is none)."""
    problems: list[str] = []
    codes: list[int] = []
    while len(codes) < len(requests):
        rest = requests[len(codes):]
        got = conn.batch(rest)
        problems += [f"{what}: {NetlinkError(code)}" for (what, _), code in zip(rest, got)
                     if code and code != errno.ENOENT]
        codes += got
    return codes, problems


def delete_flows(ns: str, flows: Sequence[Flow]) -> None:
    """Delete the entries of these flows in namespace ``ns``, by their original tuples.

    No acknowledgement is asked; the kernel still answers "no such entry"
    (ENOENT) for each flow it does not hold (most namespaces hold none of a
    given flow). Those answers are read and dropped as the requests go, so
    they never fill the socket's receive buffer. Raises OSError when the
    namespace is gone.
    """
    with netns.entered(ns):
        conn = netlink.Conn(netlink.NETLINK_NETFILTER)
    with conn:
        for i, f in enumerate(flows):
            msg = nfnl.ct_delete(f.src, f.dst, f.proto, f.sport, f.dport)
            for _attempt in range(2):
                try:
                    conn.sock.send(msg)
                    break
                except OSError:  # ENOBUFS or EAGAIN: the answers fill the buffer; read them, try again
                    netlink.drain(conn.sock)
            if i % DRAIN_EVERY == DRAIN_EVERY - 1:
                netlink.drain(conn.sock)
        netlink.drain(conn.sock)



def insert_dnat(ns: str, proto: str, src: str, sport: int, dst: str, dport: int, to: str, to_port: int,
                timeout: int = 600) -> None:
    """``conntrack -I ... -u SEEN_REPLY,ASSURED``: an entry for one flow, DNATed to ``to:to_port``, as a kube-proxy
    DNAT leaves a flow that was answered (IPCTNL_MSG_CT_NEW, nfnl.ct_new: the message conntrack(8) sends).

    ``netlab break`` uses it to leave what an endpoint change leaves when nobody cleans up: the
    flow's next packets skip the nat table and follow the entry. The entry is one the endpoint answered
    before it went (SEEN_REPLY, ASSURED), as the real stale entry is: each packet of the flow refreshes it to
    UDP's stream timeout (nf_conntrack_udp_timeout_stream, 120 s), so it lives as long as the client keeps
    sending from its port. Without those bits the first packet would cut it to the unreplied timeout
    (nf_conntrack_udp_timeout, 30 s): the fault would heal 30 s after the first look at it. OSError when it
    cannot (EEXIST: an entry of the flow is there already).
    """
    what = f"{ns}: insert conntrack entry {proto} {src}:{sport} → {dst}:{dport} DNATed to {to}:{to_port}"
    with netns.entered(ns):
        conn = netlink.Conn(netlink.NETLINK_NETFILTER)
    with conn:
        conn.request(what, nfnl.ct_new(src, dst, ctfilter.PROTOCOLS[proto], sport, dport, timeout, (to, to_port),
                                       nfnl.IPS_SEEN_REPLY | nfnl.IPS_ASSURED))


def tuples(ns: str, proto: int) -> list[tuple[dict[str, str], dict[str, str]]]:
    """The original and reply tuples of every entry of protocol ``proto`` in namespace ``ns`` (one
    ctnetlink dump): what each flow's NAT made of it."""
    return _of_proto(_dump(ns), proto)


def ports_towards(namespaces: Iterable[str], proto: int, dst: str, dport: int) -> set[int]:
    """The source ports of every flow to ``dst:dport`` these namespaces hold an entry for (one dump each).

    A new connection from one of those ports would not be new to conntrack: its
    packets would follow the old entry (a DNAT made before, or none) and skip the
    nat table. A namespace that is gone holds nothing.
    """
    ports: set[int] = set()
    for ns in namespaces:
        try:
            entries = tuples(ns, proto)
        except OSError:
            continue
        ports.update(int(o["sport"]) for o, _ in entries
                     if o.get("dst") == dst and o.get("dport") == str(dport) and "sport" in o)
    return ports


def _of_proto(msgs: Iterable[netlink.Msg], proto: int) -> list[tuple[dict[str, str], dict[str, str]]]:
    """The (original, reply) tuples of the entries of protocol ``proto`` among ctnetlink messages."""
    return [(t[1], t[2]) for t in map(nfnl.ct_tuples, msgs) if t is not None and t[0] == proto]


def onward(flows: Sequence[Flow], entries: Iterable[tuple[dict[str, str], dict[str, str]]],
           hops: int = 3) -> list[Flow]:
    """Where these flows went on after a NAT, as the next namespace tracks them: an entry whose original
    tuple is a flow's and whose reply tuple is not that flow turned around was translated (a Service's
    DNAT, a masquerade), and the flow goes on as the reply tuple turned around: from the masqueraded
    address and port to the endpoint. Followed up to ``hops`` translations (a load balancer's, then a
    NodePort's); the flows given are not in the result."""
    # A flow has an entry in each namespace it passed: the sender's untranslated, the NAT's translated.
    replies: dict[tuple[str, int, str, int], list[dict[str, str]]] = {}
    for o, r in entries:
        replies.setdefault((o["src"], int(o["sport"]), o["dst"], int(o["dport"])), []).append(r)
    seen = {(f.proto, f.src, f.sport, f.dst, f.dport) for f in flows}
    out: list[Flow] = []
    frontier = list(flows)
    for _ in range(hops):
        found = []
        for f in frontier:
            for r in replies.get((f.src, f.sport, f.dst, f.dport), []):
                g = Flow(f.proto, r["dst"], int(r["dport"]), r["src"], int(r["sport"]))
                key = (g.proto, g.src, g.sport, g.dst, g.dport)
                if key not in seen:  # nor the flow itself (an entry it left untranslated): it is in seen
                    seen.add(key)
                    found.append(g)
        out += found
        frontier = found
    return out


NFNLGRP_CONNTRACK_NEW = 1  # linux/netfilter/nfnetlink.h: the entries a namespace confirms


class NewEntries:
    """The conntrack entries a namespace confirms from now on (ctnetlink's NEW events), read afterwards.

    A dump after the fact misses some: a TCP entry whose first packet was refused with a RST (a
    NetworkPolicy's REJECT on the way, a closed port) is destroyed as the RST passes, so a node that
    DNATed a Service's SYN holds nothing by the time anyone looks. Its NEW event, sent when the SYN
    left the node, carries what the DNAT decided.
    """

    def __init__(self, ns: str):
        with netns.entered(ns):  # the socket hears the events of the namespace it was opened in
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
                                      netlink.NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.sock.bind((0, 1 << (NFNLGRP_CONNTRACK_NEW - 1)))
        except BaseException:
            self.sock.close()
            raise

    def tuples(self, proto: int) -> list[tuple[dict[str, str], dict[str, str]]]:
        """The original and reply tuples of the entries of protocol ``proto`` confirmed since it opened
        (those whose events fitted its buffer: a busy namespace may drop some, ENOBUFS)."""
        out = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # some were lost; the next read goes on with the others
                    continue
                return out
            out += _of_proto(netlink.split(data), proto)

    def close(self) -> None:
        self.sock.close()
