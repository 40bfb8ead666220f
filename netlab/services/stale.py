"""Stale UDP conntrack entries: a Service flow still DNATed to an address that is no endpoint, or never DNATed.

kube-proxy deletes the UDP entries of an endpoint it removes (UDP has no
connection to end, so an entry lives as long as its client keeps sending).
One it missed keeps a client that reuses its source port on a dead
endpoint. ``status`` reports such entries and ``up`` deletes them, as
kube-proxy's next sync would (pkg/proxy/conntrack/cleanup.go): every UDP entry
in a node whose original destination is a Service port (its ClusterIP, its
balancer's IP or an externalIP, with the port; or any address with its
nodePort) and whose reply comes from an address that is not one of that port's
endpoints.

That takes in an entry that was never DNATed (its reply comes from its original
destination): one a client made before the Service existed or had endpoints
(kube-proxy's rules were not there to DNAT it: it went out the default route, or
to a node's own address where nothing listens on the nodePort). Its flow keeps
it, so a client that keeps its source port never reaches the endpoints.
kube-proxy deletes it once the port has a serving endpoint (a port without any
it leaves alone), and so does ``up``; ``status`` does not name it (kube-proxy's
rules are right, and a packet sent to an address nothing listens on, such as
127.0.0.1's nodePort in nftables mode, leaves one too). Such an entry is not
always old: a live flow that kube-proxy's rules do not DNAT (to the nodePort on
an address nothing DNATs, a transit node's entry of a flow DNATed further on)
makes it anew after each deletion. Its line says what it is, not when it was
made. Each ``up`` says every entry it deletes (its UpResult.fixed, in the Python
API too: QA q11); a watcher (api/watch.py) says an un-DNATed one once per flow
while it watches (:func:`watching`): its later applies delete it again without a
line (QA q10 6).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from netlab.kernel import conntrack
from netlab.kernel import netns as nsmod
from netlab.model.lab import Lab
from netlab.plan.services import service_ports


@dataclass(frozen=True)
class Stale:
    netns: str
    flow: str  # "client:port → ClusterIP:port"
    to: str  # the address it is DNATed to
    filter: tuple[str, ...]  # conntrack -D filter that deletes it (conntrack.delete_counted: over ctnetlink)
    dnat: bool = True  # False: never DNATed (``to`` is the original destination), made before the Service's rules

    def describe(self) -> str:
        if not self.dnat:
            return (f"a UDP conntrack entry in {self.netns} that keeps {self.flow} un-DNATed (no rule of kube-proxy's "
                    "DNATed it; kube-proxy's cleanup deletes it too)")
        return f"a UDP conntrack entry in {self.netns} that DNATs {self.flow} to {self.to}, which is no endpoint"


def _udp_ports(lab: Lab) -> dict[tuple[str, str], set[str]]:
    """(address, port) of every UDP Service port -> its endpoints' addresses: the ClusterIP, the balancer's IP and
    each externalIP with the port, and ("*", nodePort), as kube-proxy's cleanup keys them."""
    out: dict[tuple[str, str], set[str]] = {}
    for sp in service_ports(lab):
        if sp.protocol == "udp":
            eps = {str(ip) for ip, _ in sp.endpoints}
            for addr in [sp.cluster_ip, *([sp.lb_ip] if sp.lb_ip is not None else []), *sp.external_ips]:
                out[(str(addr), str(sp.port.port))] = eps
            if sp.node_port is not None:
                out[("*", str(sp.node_port))] = eps
    return out


def find(lab: Lab) -> list[Stale]:
    """Every stale entry in the lab's nodes (one ctnetlink dump per node, only in a lab with UDP Services)."""
    ports = _udp_ports(lab)
    if not ports:
        return []
    out = []
    for node in lab.nodes:
        if not nsmod.is_netns_mount(node.netns):
            continue
        try:
            entries = conntrack.tuples(node.netns, socket.IPPROTO_UDP)
        except OSError:  # NetlinkError too: no ctnetlink here, or the namespace went; nothing to say
            continue
        out += stale_in(node.netns, entries, ports)
    return out


Tuples = list[tuple[dict[str, str], dict[str, str]]]


def stale_in(netns: str, entries: Tuples, ports: dict[tuple[str, str], set[str]]) -> list[Stale]:
    """The entries (original, reply tuples) of a Service port (a Service IP's port, else any address's nodePort:
    ``("*", nodePort)`` in ``ports``) whose reply comes from no endpoint of it: DNATed to another address, or never
    DNATed (the reply from the original destination) while the port has endpoints, as kube-proxy's cleanup deletes
    both (``--reply-src`` not a serving endpoint)."""
    out = []
    for orig, reply in entries:
        eps = ports.get((orig["dst"], orig["dport"]), ports.get(("*", orig["dport"])))
        if eps is None or reply["src"] in eps:
            continue  # not a Service flow, or DNATed to an endpoint
        dnat = reply["src"] != orig["dst"]
        if not dnat and not eps:
            continue  # never DNATed, and the port has no endpoint to send it to: kube-proxy leaves it
        exact = ("-p", "udp", "--orig-src", orig["src"], "--orig-port-src", orig["sport"],
                 "--orig-dst", orig["dst"], "--orig-port-dst", orig["dport"])
        # keyed on the reply's source as kube-proxy's cleanup is, not on --dst-nat: an entry made with its reply
        # tuple (conntrack -I -r ...) has no DST_NAT_DONE bit, which --dst-nat asks for (QA q62k 1)
        out.append(Stale(netns, f"{orig['src']}:{orig['sport']} → {orig['dst']}:{orig['dport']}",
                         f"{reply['src']}:{reply['sport']}", exact + ("--reply-src", reply["src"]), dnat))
    return out


# lab -> (netns, flow) of the un-DNATed entries its watcher said it deleted, while one watches it: a live flow's,
# made anew, is not said again by its later applies. Only a watcher's: each other up says its own deletions.
_watched: dict[str, set[tuple[str, str]]] = {}


def watching(lab_name: str, on: bool = True) -> None:
    """A watcher of the lab starts (``on``) or ends: from now until then, an un-DNATed entry its applies delete
    is said once per flow."""
    if on:
        _watched[lab_name] = set()
    else:
        _watched.pop(lab_name, None)


def delete(stale: list[Stale], lab_name: str | None = None) -> tuple[list[str], list[str]]:
    """Delete them; (what was done, problems). Every one the kernel deleted is said, but an un-DNATed entry a
    watcher of ``lab_name`` said already (:func:`watching`: it deletes a live flow's again at each apply, as
    kube-proxy's cleanup does at each sync); one it did not delete (gone meanwhile) is a problem, not a deletion."""
    done, problems = [], []
    deleted: dict[Stale, int] = {}
    for ns in dict.fromkeys(s.netns for s in stale):  # one dump and one batch of deletes per node
        mine = [s for s in stale if s.netns == ns]
        counts, trouble = conntrack.delete_counted(ns, [list(s.filter) for s in mine])
        problems += trouble
        deleted.update(zip(mine, counts))
    said = _watched.get(lab_name) if lab_name is not None else None
    for s in stale:
        if not deleted.get(s):
            problems.append(f"found {s.describe()}, but the kernel deleted no entry of it (gone before the delete)")
            continue
        if not s.dnat and said is not None:
            if (s.netns, s.flow) in said:
                continue
            said.add((s.netns, s.flow))
        done.append(f"deleted {s.describe()}")
    return done, problems
