"""The trace's live kernel on netlab's own codec, against a netlink socket that answers like the kernel (no root).

Every answer is encoded by pyroute2 (as in test_rtnl.py), so the decoding the
walker and ``inspect`` rely on is checked against an independent encoder:
links with their VXLAN settings and bridge ports, ``ip route get`` with and
without ``fibmatch`` (and its refusals), the ARP table, the FDB, the main
routing table, and ``conntrack -L`` lines.
"""

from __future__ import annotations

import errno
import os
import struct

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.kernel import netlink as nl
from netlab.kernel import rtnl
from netlab.trace.facts import CtEntry, RouteFailure
from netlab.trace.flow import Flow
from netlab.trace.kernel import LiveKernel, parse_bridge_port, parse_conntrack, parse_nat_table
from netlink_socket import QueuedSocket

NS = "demo-minikube"


def encode(cls, mtype: int, fields: dict, attrs: list) -> bytes:
    msg = cls()
    for key, value in fields.items():
        msg[key] = value
    msg["attrs"] = attrs
    msg["header"]["type"] = mtype
    msg.encode()
    return bytes(msg.data)


def link(index: int, name: str, kind: str | None, mac: str, master: int | None = None, info: list | None = None):
    attrs = [("IFLA_IFNAME", name), ("IFLA_ADDRESS", mac), ("IFLA_MTU", 1450 if index > 1 else 65536)]
    if master:
        attrs.append(("IFLA_MASTER", master))
    if kind:
        attrs.append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", kind)] + (info or [])}))
    return encode(ifinfmsg, rtnl.RTM_NEWLINK, {"index": index, "flags": 1}, attrs)


LINKS = [
    link(1, "lo", None, "00:00:00:00:00:00"),
    link(2, "eth0", "veth", "02:7e:92:95:ee:33"),
    link(3, "cni0", "bridge", "02:31:39:28:a3:2f"),
    link(4, "veth1", "veth", "02:dc:91:18:e8:f1", master=3),
    link(5, "flannel.1", "vxlan", "02:7d:63:dd:1d:06",
         info=[("IFLA_INFO_DATA", {"attrs": [("IFLA_VXLAN_ID", 1), ("IFLA_VXLAN_LINK", 2),
                                             ("IFLA_VXLAN_LOCAL", "192.168.122.215"), ("IFLA_VXLAN_LEARNING", 0),
                                             ("IFLA_VXLAN_PORT", 8472)]})]),
]
PORTS = [encode(ifinfmsg, rtnl.RTM_NEWLINK, {"family": rtnl.AF_BRIDGE, "index": 4},
                [("IFLA_IFNAME", "veth1"), ("IFLA_MASTER", 3),
                 ("IFLA_PROTINFO", {"attrs": [("IFLA_BRPORT_STATE", 3), ("IFLA_BRPORT_MODE", 1),
                                              ("IFLA_BRPORT_LEARNING", 0)]})])]
ADDRS = [encode(ifaddrmsg, rtnl.RTM_NEWADDR, {"family": 2, "prefixlen": plen, "index": index},
                [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)])
         for index, ip, plen in ((1, "127.0.0.1", 8), (2, "192.168.122.215", 24), (3, "10.244.0.1", 24),
                                 (5, "10.244.0.0", 32))]
ONLINK = {"family": 2, "dst_len": 24, "table": 254, "proto": 3, "scope": 0, "type": 1, "flags": rtnl.RTNH_F_ONLINK}
ROUTES = [
    encode(rtmsg, rtnl.RTM_NEWROUTE, {"family": 2, "table": 254, "proto": 3, "type": 1},
           [("RTA_TABLE", 254), ("RTA_GATEWAY", "192.168.122.1"), ("RTA_OIF", 2)]),
    encode(rtmsg, rtnl.RTM_NEWROUTE, {"family": 2, "dst_len": 24, "table": 254, "proto": 2, "scope": 253, "type": 1},
           [("RTA_TABLE", 254), ("RTA_DST", "10.244.0.0"), ("RTA_PREFSRC", "10.244.0.1"), ("RTA_OIF", 3)]),
    encode(rtmsg, rtnl.RTM_NEWROUTE, ONLINK,
           [("RTA_TABLE", 254), ("RTA_DST", "10.244.1.0"), ("RTA_GATEWAY", "10.244.1.0"), ("RTA_OIF", 5)]),
    encode(rtmsg, rtnl.RTM_NEWROUTE, {"family": 2, "dst_len": 32, "table": 255, "proto": 2, "scope": 254, "type": 2},
           [("RTA_TABLE", 255), ("RTA_DST", "10.244.0.1"), ("RTA_PREFSRC", "10.244.0.1"), ("RTA_OIF", 3)]),
]
NEIGHS = [encode(ndmsg, rtnl.RTM_NEWNEIGH, {"family": 2, "ifindex": index, "state": state},
                 [("NDA_DST", ip)] + ([("NDA_LLADDR", mac)] if mac else []))
          for index, ip, mac, state in ((5, "10.244.1.0", "02:a8:79:e2:c6:88", 0x80),
                                        (3, "10.244.0.2", "0a:58:0a:f4:00:02", 0x04),
                                        (3, "10.244.0.9", None, 0x20),
                                        (2, "224.0.0.22", "01:00:5e:00:00:16", 0x40))]
FDB = [encode(ndmsg, rtnl.RTM_NEWNEIGH, {"family": rtnl.AF_BRIDGE, "ifindex": index, "state": state, "flags": flags},
              attrs)
       for index, state, flags, attrs in (
           (5, 0x80, rtnl.NTF_SELF, [("NDA_LLADDR", "02:a8:79:e2:c6:88"), ("NDA_DST", "192.168.122.7")]),
           (4, 0x02, rtnl.NTF_MASTER, [("NDA_LLADDR", "0a:58:0a:f4:00:02"), ("NDA_MASTER", 3)]),
           (3, 0x80, rtnl.NTF_SELF, [("NDA_LLADDR", "02:31:39:28:a3:2f"), ("NDA_MASTER", 3)]))]


class KernelSocket(QueuedSocket):
    """Answers rtnetlink requests like the kernel would for one node namespace of the demo lab."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[nl.Msg] = []

    def _answer(self, seq: int, msgs: list[bytes], dump: bool) -> None:
        out = b""
        for data in msgs:
            flags = nl.NLM_F_MULTI if dump else 0
            out += data[:6] + struct.pack("=HI", flags, seq) + data[12:]
        if dump:
            out += nl.HDR.pack(20, nl.NLMSG_DONE, nl.NLM_F_MULTI, seq, 0) + bytes(4)
        self.queue.append(out)

    def send(self, data: bytes) -> int:
        for m in nl.split(data):
            self.requests.append(m)
            dump = bool(m.flags & nl.NLM_F_DUMP)
            family = m.body[0]
            if m.mtype == rtnl.RTM_GETLINK:
                self._answer(m.seq, PORTS if family == rtnl.AF_BRIDGE else LINKS, dump)
            elif m.mtype == rtnl.RTM_GETADDR:
                self._answer(m.seq, ADDRS, dump)
            elif m.mtype == rtnl.RTM_GETNEIGH:
                self._answer(m.seq, FDB if family == rtnl.AF_BRIDGE else NEIGHS, dump)
            elif m.mtype == rtnl.RTM_GETROUTE and dump:
                self._answer(m.seq, ROUTES, dump)
            elif m.mtype == rtnl.RTM_GETROUTE:
                self._route_get(m)
        return len(data)

    def _route_get(self, m: nl.Msg) -> None:
        flags = rtnl.RTMSG.unpack_from(m.body)[8]
        dst = nl.get_ipv4(nl.attrs(m.body, rtnl.RTMSG.size), rtnl.RTA_DST)
        if not dst or not dst.startswith("10.244.1."):
            return self._error(m.seq, errno.ENETUNREACH)
        if flags & rtnl.RTM_F_FIB_MATCH:  # the table entry that matched
            return self._answer(m.seq, [ROUTES[2]], dump=False)
        answer = encode(rtmsg, rtnl.RTM_NEWROUTE, {"family": 2, "dst_len": 32, "table": 254, "type": 1},
                        [("RTA_DST", dst), ("RTA_GATEWAY", "10.244.1.0"), ("RTA_OIF", 5),
                         ("RTA_PREFSRC", "10.244.0.0")])
        self._answer(m.seq, [answer], dump=False)


@pytest.fixture
def kernel(monkeypatch):
    sock = KernelSocket()
    monkeypatch.setattr(nl, "_readable", lambda s, t: bool(sock.queue))
    k = LiveKernel()
    k._conns[NS] = nl.Conn(sock=sock, timeout=1)  # type: ignore[arg-type]  (what conn() opens inside NS)
    k.sock = sock  # type: ignore[attr-defined]
    return k


def test_links_carry_kind_master_vxlan_settings_hairpin_and_addresses(kernel):
    links = kernel.links(NS)
    assert list(links) == ["lo", "eth0", "cni0", "veth1", "flannel.1"]
    vx = links["flannel.1"].vxlan
    assert (vx.vni, vx.port, vx.local, vx.dev, vx.learning) == (1, 8472, "192.168.122.215", "eth0", False)
    assert links["veth1"].master == "cni0" and links["veth1"].hairpin is True
    assert links["veth1"].port_state == "forwarding" and links["cni0"].port_state is None  # `bridge link`'s state
    assert links["cni0"].hairpin is None and links["cni0"].kind == "bridge" and links["lo"].kind is None
    assert links["cni0"].addresses == ("10.244.0.1/24",) and links["flannel.1"].addresses == ("10.244.0.0/32",)
    assert links["eth0"].mac == "02:7e:92:95:ee:33" and links["eth0"].mtu == 1450 and links["eth0"].up


def test_route_get_asks_for_the_packet_and_names_the_fib_entry(kernel):
    r = kernel.route_get(NS, "10.244.1.3", src="10.244.0.2", iif="cni0")
    assert (r.type, r.oif, r.gateway, r.prefsrc) == ("unicast", "flannel.1", "10.244.1.0", "10.244.0.0")
    assert r.matched == "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink"
    gets = [m for m in kernel.sock.requests if m.mtype == rtnl.RTM_GETROUTE]
    assert len(gets) == 2  # the route, then the FIB entry it matched
    msg = rtmsg(nl.HDR.pack(16 + len(gets[0].body), gets[0].mtype, gets[0].flags, gets[0].seq, 0) + gets[0].body)
    msg.decode()
    assert msg.get_attr("RTA_IIF") == 3 and msg.get_attr("RTA_SRC") == "10.244.0.2"  # cni0's index
    assert rtnl.RTMSG.unpack_from(gets[1].body)[8] == rtnl.RTM_F_FIB_MATCH


def test_route_get_refusals_are_route_failures(kernel):
    with pytest.raises(RouteFailure) as exc:
        kernel.route_get(NS, "8.8.8.8")
    assert exc.value.code == errno.ENETUNREACH and exc.value.message == os.strerror(errno.ENETUNREACH)
    with pytest.raises(RouteFailure) as exc:
        kernel.route_get(NS, "10.244.1.3", iif="eth9")
    assert exc.value.code == errno.ENODEV and "eth9" in exc.value.message


def test_neighbours_and_fdb(kernel):
    n = kernel.neigh(NS, "flannel.1", "10.244.1.0")
    assert (n.lladdr, n.state) == ("02:a8:79:e2:c6:88", "PERMANENT")
    assert kernel.neigh(NS, "cni0", "10.244.0.9").state == "FAILED"
    assert kernel.neigh(NS, "cni0", "10.244.1.0") is None and kernel.neigh(NS, "eth7", "10.244.0.2") is None
    table = kernel.neighbours(NS)
    assert [(x["dst"], x["dev"], x["state"]) for x in table] == [
        ("10.244.1.0", "flannel.1", "PERMANENT"), ("10.244.0.2", "cni0", "STALE"), ("10.244.0.9", "cni0", "FAILED")]
    vtep, learned, own = kernel.fdb(NS)
    assert vtep.text() == "02:a8:79:e2:c6:88 dev flannel.1 dst 192.168.122.7 self permanent"
    assert (learned.dev, learned.master, learned.state) == ("veth1", "cni0", "learned")
    assert own.text() == "02:31:39:28:a3:2f dev cni0 master cni0 self permanent"


def test_main_table_as_ip_route_prints_it_and_bridge_ports(kernel):
    assert [r["text"] for r in kernel.routes(NS)] == [
        "default via 192.168.122.1 dev eth0",
        "10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1",
        "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink"]  # the local table's entry is not the main table's
    first = kernel.routes(NS)[0]
    # the route's origin is `protocol`, as `ip -j route` says it (`proto` beside it, deprecated: docs/json.md)
    assert (first["dst"], first["protocol"], first["scope"], first["type"]) == ("default", "boot", "global",
                                                                               "unicast")
    assert [r["protocol"] for r in kernel.routes(NS)] == [r["proto"] for r in kernel.routes(NS)] == [
        "boot", "kernel", "boot"]
    assert kernel.bridge_ports(NS) == [{"bridge": "cni0", "port": "veth1", "state": "forwarding", "hairpin": True,
                                        "learning": False}]


def test_parse_bridge_port_needs_port_attributes():
    port = parse_bridge_port(nl.Msg(rtnl.RTM_NEWLINK, 0, 0, PORTS[0][16:]))
    assert (port.index, port.name, port.master, port.state, port.hairpin, port.learning) == (4, "veth1", 3, 3,
                                                                                          True, False)
    assert parse_bridge_port(nl.Msg(rtnl.RTM_NEWLINK, 0, 0, LINKS[3][16:])) is None


def test_conntrack_lines_give_both_directions():
    dnat = parse_conntrack("tcp      6 86397 ESTABLISHED src=10.244.0.2 dst=10.96.0.20 sport=40000 dport=80 "
                           "src=10.244.1.3 dst=10.244.0.2 sport=8080 dport=40000 [ASSURED] mark=0 use=1")
    assert dnat == CtEntry(Flow("tcp", "10.244.0.2", "10.96.0.20", 40000, 80),
                           Flow("tcp", "10.244.1.3", "10.244.0.2", 8080, 40000), "ESTABLISHED", ("ASSURED",))
    ping = parse_conntrack("icmp     1 29 src=10.244.0.2 dst=192.168.122.7 type=8 code=0 id=5 src=192.168.122.7 "
                           "dst=192.168.122.215 type=0 code=0 id=900 mark=0 use=1")
    assert ping.orig == Flow.icmp("10.244.0.2", "192.168.122.7", 5) and ping.state is None
    assert ping.reply == Flow.icmp("192.168.122.7", "192.168.122.215", 900)
    udp = parse_conntrack("udp      17 29 src=10.244.0.2 dst=10.244.1.3 sport=41000 dport=9999 [UNREPLIED] "
                          "src=10.244.1.3 dst=10.244.0.2 sport=9999 dport=41000 mark=0 use=1")
    assert udp.flags == ("UNREPLIED",) and udp.reply.sport == 9999
    assert parse_conntrack("unknown  2 src=1.2.3.4") is None and parse_conntrack("") is None


SAVE_BEFORE = """# Generated by iptables-nft-save v1.8.9 (nf_tables) on Mon Jan  1 00:00:00 2024
*nat
:PREROUTING ACCEPT [3:180]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]
[7:420] -A PREROUTING -j KUBE-SERVICES
[2:120] -A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
[1:60] -A KUBE-SVC-CDGGSHYLG3RE2FKL -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A
[1:60] -A KUBE-SVC-CDGGSHYLG3RE2FKL -j KUBE-SEP-B
COMMIT
"""


def test_nat_table_rules_counters_and_what_the_packet_added():
    before = parse_nat_table(SAVE_BEFORE)
    assert {"PREROUTING", "KUBE-SERVICES", "KUBE-SVC-CDGGSHYLG3RE2FKL"} == before.chains
    assert [r.packets for r in before.rules] == [7, 2, 1, 1] and all(r.delta is None for r in before.rules)
    after = parse_nat_table(SAVE_BEFORE.replace("[7:420]", "[8:480]").replace("[2:120]", "[3:180]")
                            .replace("[1:60] -A KUBE-SVC-CDGGSHYLG3RE2FKL -j", "[2:120] -A KUBE-SVC-CDGGSHYLG3RE2FKL -j"),
                            before)
    assert [r.delta for r in after.rules] == [1, 1, 0, 1]
    last = after.chain_rules("KUBE-SVC-CDGGSHYLG3RE2FKL")[-1]
    assert last.line == "-A KUBE-SVC-CDGGSHYLG3RE2FKL -j KUBE-SEP-B" and last.target == "KUBE-SEP-B"
    assert after.rule("-A PREROUTING -j KUBE-SERVICES").chain == "PREROUTING"


def test_an_entry_confirmed_then_destroyed_joins_the_snapshot(monkeypatch):
    """A SYN DNATed by a node and refused down the road: the RST destroys the node's entry before anyone lists it.
    Its NEW event's tuples join what `conntrack -L` still lists, once (an entry listed too is not doubled)."""
    from netlab.trace import kernel as tk, tables

    listed = ("tcp      6 9 CLOSE src=10.244.1.2 dst=10.96.0.11 sport=2 dport=80 "
              "src=10.244.0.3 dst=10.244.1.2 sport=8080 dport=2")
    monkeypatch.setattr(tables, "read_conntrack", lambda ns, proto: [tables.parse_conntrack(listed)])
    gone = ({"src": "10.244.1.2", "dst": "10.96.0.11", "sport": "1", "dport": "80"},
            {"src": "10.244.0.2", "dst": "10.244.1.2", "sport": "8080", "dport": "1"})
    again = ({"src": "10.244.1.2", "dst": "10.96.0.11", "sport": "2", "dport": "80"},
             {"src": "10.244.0.3", "dst": "10.244.1.2", "sport": "8080", "dport": "2"})
    k = tk.LiveKernel()
    k.snapshot_conntrack(["n2"], "tcp", {"n2": [gone, again]})
    entries = k.conntrack("n2", "tcp")
    assert [e.orig.sport for e in entries] == [2, 1]
    assert entries[1].reply.src == "10.244.0.2" and entries[1].flags == ("DESTROYED",)
    # Both made while the packet ran (heard): the rules chose their NAT, no entry older than the packet did.
    assert [e.made_before for e in entries] == [False, False]
    assert entries[1].text() == ("tcp 10.244.1.2:1 → 10.96.0.11:80 | reply 10.244.0.2:8080 → 10.244.1.2:1 "
                                 "[DESTROYED]")


def test_the_filter_tables_read_for_the_policies_are_the_ones_kube_proxys_rules_are_judged_on(monkeypatch):
    """A Service trace reads each node's filter table once a moment (before the packet, right after it): the
    texts read for the NetworkPolicies' counters are parsed for kube-proxy's REJECTs too, not read again."""
    from netlab.trace import kernel as tk, tables

    reads: list[tuple[str, str | None]] = []

    def save(netns, table=None, backend=None, counters=False):
        reads.append((netns, table))
        return "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"

    monkeypatch.setattr(tables.iptables, "save", save)
    monkeypatch.setattr(tables, "read_nft", lambda ns, before=None: (None, None))
    reject = '-A KUBE-SERVICES -d 10.96.0.14/32 -p tcp -m comment --comment "e has no endpoints" -j REJECT'
    table = "*filter\n:KUBE-SERVICES - [0:0]\n[{n}:60] " + reject + "\nCOMMIT\n"
    k = tk.LiveKernel()
    k.count_nat_before(["n1", "n2"], {"n1": table.format(n=2), "n2": table.format(n=0)})
    k.snapshot_nat(["n1", "n2"], {"n1": table.format(n=3)})  # n2's could not be read after the packet
    assert reads == [("n1", "nat"), ("n2", "nat")] * 2  # the filter tables came from the texts given
    assert [(r.line, r.delta) for r in k.filter_table("n1").rules] == [(reject, 1)]
    assert k.filter_table("n2") is None and reads[-1] == ("n2", "nat")


def test_a_forward_policy_is_read_from_the_table_read_right_after_the_packet(monkeypatch):
    """faults.forward_policy (a packet lost in a node) asks the FORWARD policy of the filter table run.py read right
    after the packet (with counters), not a table read once more; a namespace not read then is read now."""
    from netlab.trace import faults, kernel as tk, tables

    reads: list[str] = []

    def save(netns, table=None, backend=None, counters=False):
        reads.append(netns)
        return "*filter\n:FORWARD ACCEPT\nCOMMIT\n"

    monkeypatch.setattr(tables.iptables, "save", save)
    k = tk.LiveKernel()
    k.filters_after = {"n1": "*filter\n:INPUT ACCEPT [3:180]\n:FORWARD DROP [1:60]\nCOMMIT\n"}
    why, fix = faults.forward_policy(k, "n1") or ("", "")
    assert fix == "ip netns exec n1 iptables -P FORWARD ACCEPT" and reads == []
    assert faults.forward_policy(k, "n2") is None and reads == ["n2"]


def test_a_forward_drop_with_flannels_jump_gone_names_both_steps_of_the_fix(monkeypatch):
    """QA: after `break forward-policy-drop` (policy DROP and FORWARD's jump to FLANNEL-FWD deleted) trace's fix
    said only `iptables -P FORWARD ACCEPT`: the probe passed again, yet `status` still found the jump missing. With
    Flannel's chain there and no FORWARD rule jumping to it, the fix puts the jump back too (appended: it is
    FORWARD's last rule as Flannel adds it); with the jump there, the policy alone."""
    from netlab.trace import faults, kernel as tk

    jump = '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD'
    head = "*filter\n:FORWARD DROP [1:60]\n:FLANNEL-FWD - [0:0]\n"
    k = tk.LiveKernel()
    k.filters_after = {"n1": head + "[0:0] -A FLANNEL-FWD -s 10.244.0.0/16 -j ACCEPT\nCOMMIT\n",
                       "n2": head + f"[0:0] {jump}\nCOMMIT\n"}
    _, fix = faults.forward_policy(k, "n1") or ("", "")
    assert fix == f"ip netns exec n1 iptables -P FORWARD ACCEPT && ip netns exec n1 iptables {jump}", fix
    _, fix = faults.forward_policy(k, "n2") or ("", "")
    assert fix == "ip netns exec n2 iptables -P FORWARD ACCEPT", fix
