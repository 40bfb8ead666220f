"""What ``netlab inspect`` shows for one namespace: what the tutorials show, read from the kernel.

Links with their veth peers (from the lab's plan: the kernel only knows a
peer's ifindex in another namespace), addresses, the main routing table,
neighbours (ARP), FDB entries (VXLAN remote VTEPs, learned bridge MACs),
bridge ports, the sockets that listen (TCP) or are bound (UDP), as ``ss -ltun``
lists them (the kernel's sock_diag: what answers a packet there), the sysctls
that decide forwarding, the lab's own iptables chains with their packet
counters, the lab's nftables tables (kube-proxy's ``ip kube-proxy`` on a node
in nftables mode), and conntrack: counted by
protocol, state and NAT, each entry only when asked for (a node behind a busy
Service holds hundreds). Each section of the text (cli/inspect_text.py) names the
command that shows the same.
"""

from __future__ import annotations

import re
import subprocess
from ipaddress import IPv4Interface
from typing import Any, Callable, Collection

from netlab.errors import EnvironmentNotReady
from netlab.kernel import conntrack, iptables, netns as nsmod, nft, procsys
from netlab.realize import nftables as nftlisting
from netlab.trace.kernel import LiveKernel
from netlab.trace.labmap import LabMap
from netlab.trace.sections import NFT_TABLES, SECTIONS, section_names

# CNI-*: portmap's hostPort chains (CNI-HOSTPORT-*, each pod's CNI-DN-<hash>), and the bridge plugin's ipMasq chains:
# a builtin lab writes them itself (plan/portmap_rules.py) and status checks them; in a conflist lab they are the real
# plugins', made for the lab's pods in the lab's own node namespace, and trace quotes them: the lab's in both
LAB_CHAIN = re.compile(r"^(KUBE-|FLANNEL-|NETLAB-|CNI-)")
RULE = re.compile(r"^(\[\d+:\d+\] )?-A (\S+)(.*)$")
SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.ipv4.conf.all.rp_filter")


def inspect(netns: str, lab: LabMap | None = None, sections: Collection[str] | None = None) -> dict[str, Any]:
    """What the tutorials show for one namespace, as plain data.

    ``sections`` (names of :data:`SECTIONS`, or their keys, :data:`ALIASES`):
    only those are read; None reads all of them. Conntrack is summarised; its
    entries are listed only when ``conntrack`` is asked for by name.
    """
    want = set(SECTIONS) if sections is None else set(section_names(sections))
    unknown = want - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown inspect sections: {sorted(unknown)}")
    data: dict[str, Any] = {"netns": netns, "what": lab.where(netns) if lab else netns}
    if want & {"links", "addrs", "routes", "neigh", "fdb", "bridge"}:
        data.update(_links_and_tables(netns, lab, want))
    unreadable: dict[str, str] = {}
    if "sockets" in want:
        data["sockets"] = _sockets(netns, unreadable)
    if "sysctls" in want:
        with nsmod.entered(netns):
            data["sysctls"] = {key: procsys.read_sysctl_here(key) for key in SYSCTLS}
    if "iptables" in want:
        data["iptables"] = _readable("iptables", lambda: lab_iptables(netns), unreadable)
    if "nftables" in want:
        data["nftables"] = _readable("nftables", lambda: lab_nftables(netns), unreadable)
    if unreadable:
        data["unreadable"] = unreadable
    if "conntrack" in want:
        data["conntrack"] = conntrack_view(netns, entries=sections is not None)
    return data


def _sockets(netns: str, unreadable: dict[str, str]) -> list[dict[str, Any]]:
    """TCP's listening sockets and UDP's bound ones (``ss -ltun``): what answers a packet to this namespace."""
    out: list[dict[str, Any]] = []
    with LiveKernel() as k:
        for proto in ("udp", "tcp"):  # in ss's order
            bound = k.sockets(netns, proto)
            if bound is None:
                unreadable["sockets"] = "this kernel cannot list its sockets (no inet_diag)"
                return []
            # `protocol`, as every other document says it; `proto` beside it for one release (docs/json.md)
            out += [{"protocol": proto, "proto": proto, "state": s.state_name, "address": s.address, "port": s.port,
                     "text": s.text()} for s in sorted(bound, key=lambda s: (s.port, s.family, s.address))]
    return out


def _readable(section: str, read: Callable[[], dict[str, Any]], unreadable: dict[str, str]) -> dict[str, Any]:
    """A section the tools could not read is empty, and ``unreadable`` says why: inspect goes on with the
    others, and the section does not pass for one that has nothing of the lab."""
    try:
        return read()
    except (iptables.IptablesError, nft.NftError, EnvironmentNotReady, OSError) as exc:
        unreadable[section] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {}


def _links_and_tables(netns: str, lab: LabMap | None, want: set[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    with LiveKernel() as k:
        links = sorted(k.links(netns).items(), key=lambda kv: kv[1].index)
        out_links = []
        for name, link in links:
            peer = lab.peers.get((netns, name)) if lab else None
            item: dict[str, Any] = {"name": name, "index": link.index,
                                    "kind": link.kind or ("loopback" if name == "lo" else None),
                                    "state": link.operstate, "mac": link.mac, "mtu": link.mtu,
                                    "master": link.master,
                                    "peer": {"netns": peer[0], "name": peer[1]} if peer else None,
                                    "addresses": list(link.addresses)}
            if link.hairpin is not None:
                item["hairpin"] = link.hairpin
            if link.vxlan:
                v = link.vxlan
                item["vxlan"] = {"vni": v.vni, "port": v.port, "local": v.local, "dev": v.dev, "learning": v.learning}
            out_links.append(item)
        addresses = [{"dev": name, "address": a, "network": str(IPv4Interface(a).network)}
                     for name, link in links for a in link.addresses]
        if "links" in want:
            data["links"] = out_links
        if "addrs" in want:
            data["addresses"] = addresses
        if "routes" in want:
            data["routes"] = k.routes(netns)
        if "neigh" in want:
            data["neighbours"] = k.neighbours(netns)
        if "fdb" in want:
            data["fdb"] = [{"mac": e.lladdr, "dev": e.dev, "master": e.master, "dst": e.dst, "state": e.state,
                            "self": e.self_, "text": e.text()}
                           for e in k.fdb(netns) if not (int(e.lladdr.split(":")[0], 16) & 1)]  # multicast: noise
        if "bridge" in want:
            data["bridge_ports"] = k.bridge_ports(netns)
    return data


def conntrack_view(netns: str, entries: bool = False) -> dict[str, Any]:
    """The namespace's conntrack table, counted; with ``entries``, every entry as ``conntrack -L`` prints it."""
    try:
        lines = conntrack.list_entries(netns)
    except (EnvironmentNotReady, OSError, subprocess.SubprocessError) as exc:
        # Say so instead of failing the whole inspect.
        return {"total": None, "by_protocol": {}, "by_state": {}, "translated": None, "entries": None,
                "error": f"conntrack unavailable: {exc}"}
    out = summarise_conntrack(lines)
    out["entries"] = lines if entries else None
    out["error"] = None
    return out


def summarise_conntrack(lines: list[str]) -> dict[str, Any]:
    """Entries counted by protocol and by TCP state, and how many are NATed (a Service's DNAT, a masquerade).

    An entry (``tcp 6 117 TIME_WAIT src=A dst=B sport=P dport=Q src=C dst=D sport=R dport=S ...``)
    holds the original tuple, then the reply tuple; when the reply does not come
    back from the original destination to the original source, the flow was translated.
    """
    by_proto: dict[str, int] = {}
    by_state: dict[str, int] = {}
    translated = 0
    for line in lines:
        words = line.split()
        if not words:
            continue
        by_proto[words[0]] = by_proto.get(words[0], 0) + 1
        if words[0] == "tcp" and len(words) > 3 and "=" not in words[3]:
            by_state[words[3]] = by_state.get(words[3], 0) + 1
        pairs = [w.split("=", 1) for w in words if w.startswith(("src=", "dst="))]
        if len(pairs) >= 4:
            (_, osrc), (_, odst), (_, rsrc), (_, rdst) = pairs[:4]
            if rsrc != odst or rdst != osrc:
                translated += 1
    return {"total": len(lines), "by_protocol": by_proto, "by_state": by_state, "translated": translated}


def lab_iptables(netns: str) -> dict[str, list[str]]:
    """``iptables-save -c``, only the lab's chains (KUBE-*, FLANNEL-*, NETLAB-*, CNI-*) and the jumps into them;
    IptablesError when it cannot be read."""
    text = iptables.save(netns, counters=True)
    tables: dict[str, list[str]] = {}
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            continue
        if table is None or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith(":"):
            if LAB_CHAIN.match(line[1:]):
                tables.setdefault(table, []).append(line)
            continue
        m = RULE.match(line)
        if not m:
            continue
        chain, rest = m.group(2), m.group(3)
        target = re.search(r" -[jg] (\S+)", rest)
        if LAB_CHAIN.match(chain) or (target and LAB_CHAIN.match(target.group(1))):
            tables.setdefault(table, []).append(line)
    return tables


def lab_nftables(netns: str) -> dict[str, dict[str, Any]]:
    """The lab's nftables tables here (kube-proxy's ``ip kube-proxy``), keyed ``"ip kube-proxy"``; {} where
    there is none (iptables mode, a pod); NftError (or EnvironmentNotReady, OSError) when nft cannot read it."""
    tables: dict[str, dict[str, Any]] = {}
    for family, name in NFT_TABLES:
        data = nft.list_table(netns, family, name)
        if data is None:
            continue
        # The same door again for the text nft prints to a person, a moment later (a counter may have moved).
        text = nft.list_table_text(netns, family, name)
        tables[f"{family} {name}"] = nft_table_view(family, name, data, text or "")
    return tables


def nft_table_view(family: str, name: str, data: dict, text: str) -> dict[str, Any]:
    """One table as inspect shows it: ``listing``, nft's own text (``nft list table``, counters in place),
    and from ``nft -j``: ``chains`` (base chains with type, hook, priority and policy; rules in kube-proxy's
    words, as status and plan print them, with the packets and bytes of their ``counter``, None without one)
    and ``sets`` (sets and maps: kind, type, flags, timeout, elements)."""
    chains: dict[str, dict[str, Any]] = {}
    sets: list[dict[str, Any]] = []

    def chain(cname: str) -> dict[str, Any]:
        return chains.setdefault(cname, {"name": cname, "type": None, "hook": None, "priority": None,
                                         "policy": None, "rules": []})

    for o in nftlisting.objects(data):
        if "chain" in o:
            c = o["chain"]
            chain(c["name"]).update(type=c.get("type"), hook=c.get("hook"), priority=c.get("prio"),
                                    policy=c.get("policy"))
        elif "rule" in o:
            r = o["rule"]
            count = nftlisting.counted(r.get("expr", []))
            chain(r["chain"])["rules"].append({"rule": nftlisting.rule_text(r.get("expr", []), r.get("comment")),
                                               "packets": count[0] if count else None,
                                               "bytes": count[1] if count else None})
        elif found := nftlisting.set_or_map(o):
            kind, s = found
            sets.append({"name": s["name"], "kind": kind, "type": nftlisting.set_type(kind, s),
                         "flags": nftlisting.set_flags(s), "timeout": s.get("timeout"),
                         "elements": nftlisting.elements_of(s)})
    return {"family": family, "name": name, "listing": text.rstrip("\n").splitlines(),
            "chains": list(chains.values()), "sets": sets}
