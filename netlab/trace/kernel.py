"""The kernel's own answers, per namespace: what ``trace`` asks and what ``inspect`` shows.

Netlink through pyroute2, on sockets opened inside each namespace (see
realize/netns.py; no helper processes):

- ``RTM_GETROUTE`` is ``ip route get DST from SRC iif DEV``: the kernel's
  routing decision for that very packet, and again with ``RTM_F_FIB_MATCH``
  (``ip route get ... fibmatch``) for the table entry it matched;
- ``RTM_GETNEIGH`` for the next hop's ARP entry, ``AF_BRIDGE`` neighbour dumps
  for the FDB (``bridge fdb show``): VXLAN entries carry the remote VTEP in
  ``NDA_DST``, bridge entries name their port and ``NDA_MASTER``;
- links with their kind, master, VXLAN settings and hairpin flag.

conntrack and iptables through their own tools (``conntrack -L``,
``iptables-save -c``) run inside the namespace with absolute paths: their text
is what a learner compares with.
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Interface
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from netlab.realize import netns as nsmod
from netlab.realize.netlink import Sockets
from netlab.trace.facts import CtEntry, FdbFacts, LinkFacts, NeighFacts, RouteFacts, RouteFailure, VxlanFacts
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap

RTM_F_FIB_MATCH = 0x2000
from netlab.realize.nlmsg import RTNH_F_ONLINK  # noqa: E402
RTN_TYPES = {0: "unspec", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole",
             7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve"}
RT_PROTOS = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static"}
RT_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
NUD = [(0x80, "PERMANENT"), (0x40, "NOARP"), (0x02, "REACHABLE"), (0x04, "STALE"), (0x08, "DELAY"),
       (0x10, "PROBE"), (0x20, "FAILED"), (0x01, "INCOMPLETE")]
NTF_SELF, NTF_MASTER = 0x02, 0x04
IFF_UP = 0x1
BR_STATES = {0: "disabled", 1: "listening", 2: "learning", 3: "forwarding", 4: "blocking"}
LAB_CHAIN = re.compile(r"^(KUBE-|FLANNEL-|NETLAB-)")


def nud_state(state: int) -> str:
    for bit, name in NUD:
        if state & bit:
            return name
    return "NONE"


def _fdb_state(state: int) -> str:
    if state & 0x80:
        return "permanent"
    if state & 0x40:
        return "static"
    return "learned"


class LiveKernel:
    """:class:`netlab.trace.facts.Kernel` answered by the running kernel (cached per namespace)."""

    def __init__(self, lab: LabMap | None = None):
        self.lab = lab
        self.s = Sockets()
        self._links: dict[str, dict[str, LinkFacts]] = {}
        self._byindex: dict[str, dict[int, str]] = {}
        self._fdb: dict[str, list[FdbFacts]] = {}
        self._ct: dict[tuple[str, str], list[CtEntry]] = {}
        self._brnf: dict[str, bool] = {}

    def close(self) -> None:
        self.s.close()

    def __enter__(self) -> "LiveKernel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- links

    def links(self, netns: str) -> dict[str, LinkFacts]:
        if netns not in self._links:
            self._load_links(netns)
        return self._links[netns]

    def ifname(self, netns: str, index: int) -> str | None:
        self.links(netns)
        return self._byindex[netns].get(index)

    def _load_links(self, netns: str) -> None:
        ipr = self.s(netns)
        raw = list(ipr.get_links())
        names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in raw}
        addrs: dict[int, list[str]] = {}
        for a in ipr.get_addr(family=socket.AF_INET):
            addrs.setdefault(a["index"], []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        hairpin: dict[int, bool] = {}
        try:
            for m in ipr.brport("dump"):
                info = m.get_attr("IFLA_PROTINFO")
                if info is not None:
                    hairpin[m["index"]] = bool(info.get_attr("IFLA_BRPORT_MODE"))
        except NetlinkError:
            pass
        out: dict[str, LinkFacts] = {}
        for m in raw:
            info = m.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            vx = None
            if kind == "vxlan":
                d = info.get_attr("IFLA_INFO_DATA")
                vx = VxlanFacts(vni=d.get_attr("IFLA_VXLAN_ID"), port=d.get_attr("IFLA_VXLAN_PORT"),
                                local=d.get_attr("IFLA_VXLAN_LOCAL"),
                                dev=names.get(d.get_attr("IFLA_VXLAN_LINK") or 0),
                                learning=bool(d.get_attr("IFLA_VXLAN_LEARNING")))
            name = m.get_attr("IFLA_IFNAME")
            master = m.get_attr("IFLA_MASTER")
            out[name] = LinkFacts(
                name=name, index=m["index"], kind=kind, mac=m.get_attr("IFLA_ADDRESS"), mtu=m.get_attr("IFLA_MTU"),
                up=bool(m["flags"] & IFF_UP), master=names.get(master) if master else None,
                hairpin=hairpin.get(m["index"]), vxlan=vx, addresses=tuple(addrs.get(m["index"], ())))
        self._links[netns] = out
        self._byindex[netns] = names

    # -- routes

    def route_get(self, netns: str, dst: str, src: str | None = None, iif: str | None = None) -> RouteFacts:
        ipr = self.s(netns)
        kwargs: dict[str, Any] = {"dst": dst}
        if src:
            kwargs["src"] = src
        if iif:
            link = self.links(netns).get(iif)
            if link is None:
                raise RouteFailure(19, f"no device {iif}")
            kwargs["iif"] = link.index
        try:
            (ans,) = ipr.route("get", **kwargs)
        except NetlinkError as exc:
            raise RouteFailure(exc.code, _strerror(exc.code)) from None
        rtype = RTN_TYPES.get(ans["type"], str(ans["type"]))
        oif = ans.get_attr("RTA_OIF")
        matched = None
        try:
            (fib,) = ipr.route("get", flags=RTM_F_FIB_MATCH, **kwargs)
            matched = self._route_text(netns, fib)
        except NetlinkError:
            pass
        return RouteFacts(type=rtype, oif=self.ifname(netns, oif) if oif else None,
                          gateway=ans.get_attr("RTA_GATEWAY"), prefsrc=ans.get_attr("RTA_PREFSRC"), matched=matched)

    def _route_text(self, netns: str, m: Any) -> str:
        """An RTM_NEWROUTE message as ``ip route`` prints it."""
        rtype = RTN_TYPES.get(m["type"], str(m["type"]))
        dst = m.get_attr("RTA_DST")
        text = "default" if not dst or m["dst_len"] == 0 else f"{dst}/{m['dst_len']}" if m["dst_len"] != 32 else dst
        if rtype not in ("unicast",):
            text = f"{rtype} {text}"
        gw = m.get_attr("RTA_GATEWAY")
        if gw:
            text += f" via {gw}"
        oif = m.get_attr("RTA_OIF")
        if oif:
            text += f" dev {self.ifname(netns, oif)}"
        proto = RT_PROTOS.get(m["proto"])
        if proto and proto not in ("unspec", "boot"):
            text += f" proto {proto}"
        scope = RT_SCOPES.get(m["scope"], str(m["scope"]))
        if scope != "global" and rtype == "unicast":
            text += f" scope {scope}"
        src = m.get_attr("RTA_PREFSRC")
        if src:
            text += f" src {src}"
        if m["flags"] & RTNH_F_ONLINK:
            text += " onlink"
        return text

    def routes(self, netns: str) -> list[dict[str, Any]]:
        out = []
        for m in self.s(netns).get_routes(family=socket.AF_INET, table=254):
            dst = m.get_attr("RTA_DST")
            oif = m.get_attr("RTA_OIF")
            out.append({"dst": f"{dst}/{m['dst_len']}" if dst else "default", "gateway": m.get_attr("RTA_GATEWAY"),
                        "dev": self.ifname(netns, oif) if oif else None, "prefsrc": m.get_attr("RTA_PREFSRC"),
                        "proto": RT_PROTOS.get(m["proto"], str(m["proto"])), "scope": RT_SCOPES.get(m["scope"]),
                        "type": RTN_TYPES.get(m["type"]), "onlink": bool(m["flags"] & RTNH_F_ONLINK),
                        "text": self._route_text(netns, m)})
        return out

    # -- neighbours and FDB

    def neigh(self, netns: str, dev: str, ip: str) -> NeighFacts | None:
        link = self.links(netns).get(dev)
        if link is None:
            return None
        try:
            (m,) = self.s(netns).neigh("get", dst=ip, ifindex=link.index)
        except NetlinkError as exc:
            if exc.code in (2, 22):  # ENOENT; EINVAL (no such entry on some kernels)
                return None
            raise
        return NeighFacts(ip=ip, dev=dev, lladdr=m.get_attr("NDA_LLADDR"), state=nud_state(m["state"]))

    def neighbours(self, netns: str) -> list[dict[str, Any]]:
        out = []
        for m in self.s(netns).get_neighbours(family=socket.AF_INET):
            state = nud_state(m["state"])
            if state == "NOARP":  # multicast/broadcast/loopback entries `ip neigh` hides too
                continue
            out.append({"dst": m.get_attr("NDA_DST"), "dev": self.ifname(netns, m["ifindex"]),
                        "lladdr": m.get_attr("NDA_LLADDR"), "state": state})
        return out

    def fdb(self, netns: str) -> list[FdbFacts]:
        if netns not in self._fdb:
            out = []
            for m in self.s(netns).fdb("dump"):
                mac = m.get_attr("NDA_LLADDR")
                if not mac:
                    continue
                master = m.get_attr("NDA_MASTER")
                out.append(FdbFacts(lladdr=mac, dev=self.ifname(netns, m["ifindex"]) or str(m["ifindex"]),
                                    master=self.ifname(netns, master) if master else None, dst=m.get_attr("NDA_DST"),
                                    state=_fdb_state(m["state"]), self_=bool(m["flags"] & NTF_SELF)))
            self._fdb[netns] = out
        return self._fdb[netns]

    def bridge_ports(self, netns: str) -> list[dict[str, Any]]:
        out = []
        try:
            dump = list(self.s(netns).brport("dump"))
        except NetlinkError:
            return out
        for m in dump:
            info = m.get_attr("IFLA_PROTINFO")
            master = m.get_attr("IFLA_MASTER")
            if info is None or not master:
                continue
            out.append({"bridge": self.ifname(netns, master), "port": m.get_attr("IFLA_IFNAME"),
                        "state": BR_STATES.get(info.get_attr("IFLA_BRPORT_STATE"), "?"),
                        "hairpin": bool(info.get_attr("IFLA_BRPORT_MODE")),
                        "learning": bool(info.get_attr("IFLA_BRPORT_LEARNING"))})
        return out

    def bridge_nf(self, netns: str) -> bool:
        if netns not in self._brnf:
            with nsmod.entered(netns):
                self._brnf[netns] = nsmod.read_sysctl_here("net.bridge.bridge-nf-call-iptables") == "1"
        return self._brnf[netns]

    # -- conntrack

    def conntrack(self, netns: str, proto: str) -> list[CtEntry]:
        key = (netns, proto)
        if key not in self._ct:
            self._ct[key] = read_conntrack(netns, proto)
        return self._ct[key]

    def snapshot_conntrack(self, namespaces: list[str], proto: str) -> None:
        """Read the entries now (right after the packet, before its socket closes)."""
        for ns in namespaces:
            self._ct[(ns, proto)] = read_conntrack(ns, proto)


def _strerror(code: int) -> str:
    import os

    try:
        return os.strerror(code)
    except ValueError:
        return f"error {code}"


# --- conntrack -------------------------------------------------------------------

def conntrack_lines(netns: str, proto: str | None = None) -> list[str]:
    """``conntrack -L [-p PROTO]`` inside a namespace (its summary line goes to stderr)."""
    argv = [nsmod.binary("conntrack"), "-L"] + (["-p", proto] if proto else [])
    proc = nsmod.run_in_netns(netns, argv, timeout=10, check=False)
    return [line for line in proc.stdout.decode(errors="replace").splitlines() if line.strip()]


def read_conntrack(netns: str, proto: str) -> list[CtEntry]:
    return [e for e in (parse_conntrack(line) for line in conntrack_lines(netns, proto)) if e is not None]


def parse_conntrack(line: str) -> CtEntry | None:
    """One line of ``conntrack -L``: the original tuple, then the reply tuple."""
    words = line.split()
    if not words:
        return None
    proto = words[0]
    if proto not in ("tcp", "udp", "icmp"):
        return None
    state = words[3] if proto == "tcp" and len(words) > 3 and "=" not in words[3] else None
    tuples: list[dict[str, str]] = []
    flags = []
    for w in words[1:]:
        if w.startswith("[") and w.endswith("]"):
            flags.append(w.strip("[]"))
            continue
        if "=" not in w:
            continue
        k, v = w.split("=", 1)
        if k == "src":
            tuples.append({})
        if tuples and k in ("src", "dst", "sport", "dport", "id", "type", "code"):
            tuples[-1].setdefault(k, v)
    if len(tuples) < 2:
        return None

    def flow(t: dict[str, str]) -> Flow:
        if proto == "icmp":
            ident = int(t["id"]) if "id" in t else None
            return Flow("icmp", t["src"], t["dst"], ident, ident)
        return Flow(proto, t["src"], t["dst"], int(t.get("sport", 0)), int(t.get("dport", 0)))

    return CtEntry(orig=flow(tuples[0]), reply=flow(tuples[1]), state=state, flags=tuple(flags))


# --- iptables ------------------------------------------------------------------

def lab_iptables(netns: str) -> dict[str, list[str]]:
    """``iptables-save -c``, only the lab's chains (KUBE-*, FLANNEL-*, NETLAB-*) and the jumps into them."""
    proc = nsmod.run_in_netns(netns, [nsmod.binary("iptables-save"), "-c"], timeout=10, check=False)
    tables: dict[str, list[str]] = {}
    table = None
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line.startswith("*"):
            table = line[1:]
            continue
        if table is None or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith(":"):
            if LAB_CHAIN.match(line[1:]):
                tables.setdefault(table, []).append(line)
            continue
        m = re.match(r"^(\[\d+:\d+\] )?-A (\S+)(.*)$", line)
        if not m:
            continue
        chain, rest = m.group(2), m.group(3)
        target = re.search(r" -[jg] (\S+)", rest)
        if LAB_CHAIN.match(chain) or (target and LAB_CHAIN.match(target.group(1))):
            tables.setdefault(table, []).append(line)
    return tables


# --- inspect -------------------------------------------------------------------

def inspect(netns: str, lab: LabMap | None = None, conntrack_limit: int = 200) -> dict[str, Any]:
    """What the tutorials show for one namespace, as plain data."""
    k = LiveKernel(lab)
    try:
        links = k.links(netns)
        out_links = []
        for name, link in sorted(links.items(), key=lambda kv: kv[1].index):
            peer = lab.peers.get((netns, name)) if lab else None
            item: dict[str, Any] = {"name": name, "index": link.index, "kind": link.kind or ("loopback" if name == "lo" else None),
                                    "state": "UP" if link.up else "DOWN", "mac": link.mac, "mtu": link.mtu,
                                    "master": link.master, "peer": {"netns": peer[0], "name": peer[1]} if peer else None,
                                    "addresses": list(link.addresses)}
            if link.hairpin is not None:
                item["hairpin"] = link.hairpin
            if link.vxlan:
                v = link.vxlan
                item["vxlan"] = {"vni": v.vni, "port": v.port, "local": v.local, "dev": v.dev, "learning": v.learning}
            out_links.append(item)
        addresses = [{"dev": name, "address": a, "network": str(IPv4Interface(a).network)}
                     for name, link in sorted(links.items(), key=lambda kv: kv[1].index) for a in link.addresses]
        fdb = [{"mac": e.lladdr, "dev": e.dev, "master": e.master, "dst": e.dst, "state": e.state, "self": e.self_,
                "text": e.text()}
               for e in k.fdb(netns) if not (int(e.lladdr.split(":")[0], 16) & 1)]  # multicast entries: noise
        data = {
            "netns": netns,
            "what": lab.where(netns) if lab else netns,
            "links": out_links,
            "addresses": addresses,
            "routes": k.routes(netns),
            "neighbours": k.neighbours(netns),
            "fdb": fdb,
            "bridge_ports": k.bridge_ports(netns),
        }
    finally:
        k.close()
    data["sysctls"] = _sysctls(netns)
    data["iptables"] = lab_iptables(netns)
    try:
        lines = conntrack_lines(netns)
    except Exception as exc:  # conntrack missing: say so instead of failing the whole inspect
        lines = [f"(conntrack unavailable: {exc})"]
    data["conntrack"] = lines[:conntrack_limit]
    data["conntrack_total"] = len(lines)
    return data


def _sysctls(netns: str) -> dict[str, str | None]:
    keys = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.ipv4.conf.all.rp_filter")
    with nsmod.entered(netns):
        return {k: nsmod.read_sysctl_here(k) for k in keys}
