"""Stale UDP conntrack entries: which status reports and up deletes (netlab/services/stale.py),
and the ctnetlink dump they are read from (nfnl.ct_tuples); stale chains: what up says it deleted."""

from __future__ import annotations

import socket
import struct

from netlab.kernel import nfnl
from netlab.kernel.ctfilter import CtFilter
from netlab.kernel.nfnl import CtRecord
from netlab.kernel.netlink import Msg, attr, nested
from netlab.services.stale import stale_in

PORTS = {("10.96.0.10", "53"): {"10.244.0.4"}}


def flow(src, dst, sport, dport):
    return {"src": src, "dst": dst, "sport": str(sport), "dport": str(dport)}


STALE = (flow("10.244.0.3", "10.96.0.10", 40053, 53), flow("10.244.0.250", "10.244.0.3", 53, 40053))
GOOD = (flow("10.244.0.3", "10.96.0.10", 41000, 53), flow("10.244.0.4", "10.244.0.3", 53, 41000))
OTHER = (flow("10.244.0.3", "10.244.1.2", 41000, 8080), flow("10.244.1.2", "10.244.0.3", 8080, 41000))


def _tuple(kind, t):
    ip = attr(nfnl.CTA_IP_V4_SRC, socket.inet_aton(t["src"])) + attr(nfnl.CTA_IP_V4_DST, socket.inet_aton(t["dst"]))
    ports = (attr(nfnl.CTA_PROTO_NUM, bytes([socket.IPPROTO_UDP]))
             + attr(nfnl.CTA_PROTO_SRC_PORT, struct.pack("!H", int(t["sport"])))
             + attr(nfnl.CTA_PROTO_DST_PORT, struct.pack("!H", int(t["dport"]))))
    return nested(kind, nested(nfnl.CTA_TUPLE_IP, ip) + nested(nfnl.CTA_TUPLE_PROTO, ports))


def test_ct_tuples_reads_what_the_kernel_sends():
    body = nfnl.NFGENMSG.pack(socket.AF_INET, 0, 0) + _tuple(nfnl.CTA_TUPLE_ORIG, STALE[0]) \
        + _tuple(nfnl.CTA_TUPLE_REPLY, STALE[1])
    proto, orig, reply = nfnl.ct_tuples(Msg(0, 0, 0, body))
    assert proto == socket.IPPROTO_UDP and (orig, reply) == STALE
    assert nfnl.ct_tuples(Msg(0, 0, 0, nfnl.NFGENMSG.pack(socket.AF_INET, 0, 0))) is None


def counted(deleted: list, filters: list) -> tuple[list[int], list[str]]:
    """conntrack.delete_counted as the kernel answers when every filter's entry is there: one deleted each."""
    deleted.extend(filters)
    return [1] * len(filters), []


def test_only_entries_dnated_to_no_endpoint_are_stale():
    found = stale_in("lab-node-1", [STALE, GOOD, OTHER], PORTS)
    assert len(found) == 1
    s = found[0]
    assert s.netns == "lab-node-1" and s.to == "10.244.0.250:53"
    # said after "deleted " by up and after "conntrack: " by status: a sentence either way
    assert s.describe() == ("a UDP conntrack entry in lab-node-1 that DNATs 10.244.0.3:40053 → 10.96.0.10:53 to "
                            "10.244.0.250:53, which is no endpoint")
    assert s.filter == ("-p", "udp", "--orig-src", "10.244.0.3", "--orig-port-src", "40053", "--orig-dst",
                        "10.96.0.10", "--orig-port-dst", "53", "--reply-src", "10.244.0.250")
    assert stale_in("lab-node-1", [GOOD, OTHER], PORTS) == []


def test_a_stale_entrys_filter_keys_on_its_reply_source_not_its_nat_status():
    """QA q62k 1: an entry written with its reply tuple (conntrack -I -r) has no DST_NAT_DONE bit; its --dst-nat
    filter matched nothing and up said "deleted" of it. kube-proxy's cleanup keys on the reply's source."""
    (s,) = stale_in("lab-node-1", [STALE], PORTS)
    for status in (0, 1 << 5):  # no NAT bit (conntrack -I -r), DST_NAT_DONE (the kernel's own DNAT)
        assert CtFilter.parse(s.filter).matches(CtRecord("udp", 17, STALE[0], STALE[1], status, 30))
    assert not CtFilter.parse(s.filter).matches(CtRecord("udp", 17, GOOD[0], GOOD[1], 1 << 5, 30))


def test_up_reports_the_stale_chains_it_deleted_not_the_ones_it_asked_for(monkeypatch):
    """services.lifecycle.sync_chains: the chains the record holds and the plan no longer does are asked
    to go; a chain already gone (netlab's own NETLAB-* go with the rules' restore) is not reported."""
    from netlab.model.lab import resolve
    from netlab.model.topology import Topology
    from netlab.realize import netfilter
    from netlab.services import lifecycle

    lab = resolve(Topology.model_validate({"name": "sc", "nodes": [{"name": "n1"}],
                                           "pods": [{"name": "a", "node": "n1"}]}))
    asked = []

    def delete_chains(netns, table, chains, backend=None):
        asked.append((netns, table, list(chains)))
        return netfilter.Change(netns, table, deleted=[c for c in chains if c.startswith("KUBE-")])

    monkeypatch.setattr(netfilter, "delete_chains", delete_chains)
    monkeypatch.setattr(lifecycle.nsmod, "is_netns_mount", lambda name: True)
    rec = {"chains": {"sc-n1/nat": ["FLANNEL-POSTRTG", "KUBE-SEP-GONE", "NETLAB-LB-GONE"]}}
    done = lifecycle.sync_chains(lab, rec)
    assert asked == [("sc-n1", "nat", ["KUBE-SEP-GONE", "NETLAB-LB-GONE"])]
    assert done.deleted_chains == {("sc-n1", "nat"): ["KUBE-SEP-GONE"]} and done.actions == []
    rec["chains"]["sc-n1/nat"] += ["NETLAB-LB-GONE"]
    monkeypatch.setattr(netfilter, "delete_chains", lambda netns, table, chains, backend=None:
                        netfilter.Change(netns, table, deleted=[]))
    assert lifecycle.sync_chains(lab, rec).deleted_chains == {}  # nothing was there to delete: nothing said


def test_an_external_ips_a_balancers_and_a_node_ports_entries_are_stale_as_the_cluster_ips_are():
    """kube-proxy's cleanup (pkg/proxy/conntrack/cleanup.go) keys a UDP Service's ClusterIP, balancer IPs and
    externalIPs with the port, and any address with its nodePort; netlab looked at the ClusterIP only."""
    from test_services_plan import lab_of

    from netlab.services.lifecycle import conntrack_deletions, udp_frontends
    from netlab.services.stale import _udp_ports

    lab = lab_of({"name": "st", "nodes": [{"name": "n1"}],
                  "internet": {"cidr": "203.0.113.0/24", "gateway": {"ip": "203.0.113.1"},
                               "hosts": [{"name": "h", "ip": "203.0.113.9"}]},
                  "pods": [{"name": "a", "node": "n1", "labels": {"app": "dns"}}],
                  "services": [{"name": "dns", "type": "LoadBalancer", "clusterIP": "10.96.0.53",
                                "externalIPs": ["198.51.100.7"], "selector": {"app": "dns"},
                                "ports": [{"port": 53, "protocol": "UDP", "nodePort": 30053}]}]})
    ports = _udp_ports(lab)
    lb = str(lab.addressing.lb_ip[("default", "dns")])
    ep = str(lab.pod("a").ip)
    assert {k: v for k, v in ports.items() if k[1] in ("53", "30053")} == {
        ("10.96.0.53", "53"): {ep}, (lb, "53"): {ep}, ("198.51.100.7", "53"): {ep}, ("*", "30053"): {ep}}
    for dst, dport in (("198.51.100.7", 53), (lb, 53), ("192.168.122.2", 30053)):
        entry = (flow("203.0.113.9", dst, 40053, dport), flow("10.244.0.250", "203.0.113.9", 53, 40053))
        (s,) = stale_in("st-n1", [entry], ports)
        assert s.to == "10.244.0.250:53" and s.filter[-4:] == ("--orig-port-dst", str(dport), "--reply-src",
                                                               "10.244.0.250")
        assert stale_in("st-n1", [(entry[0], flow(ep, "203.0.113.9", 53, 40053))], ports) == []
    # up: an endpoint gone takes the externalIP's and the balancer's entries with the ClusterIP's
    gone = {("10.96.0.53", 53, 30053, "10.244.0.250", 53)}
    filters = conntrack_deletions(gone, set(), set(), udp_frontends(lab))
    assert [f[3] for f in filters if f[2] == "--orig-dst"] == ["10.96.0.53", lb, "198.51.100.7"]
    assert ["-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.244.0.250"] in filters
    # and a Service that was without endpoints and is served again: their entries that were never DNATed
    filters = conntrack_deletions(set(), {(*next(iter(gone))[:3], ep, 53)}, {("10.96.0.53", 53, 30053)},
                                  udp_frontends(lab))
    assert ["-p", "udp", "--orig-dst", "198.51.100.7", "--orig-port-dst", "53"] in filters


def test_an_entry_never_dnated_is_stale_once_its_port_has_an_endpoint():
    """kube-proxy's cleanup deletes a UDP entry to a Service address whose reply comes from no serving endpoint:
    one made before the Service existed or had endpoints was never DNATed (the reply from the address itself) and
    keeps its client off the endpoints. Its Service port going from no endpoints to some (0→n) makes it stale; with
    none (n→0) kube-proxy leaves it; n→m takes the entries DNATed to the endpoint that went, not the new one's."""
    never = (flow("10.244.1.2", "10.96.0.10", 40003, 53), flow("10.96.0.10", "192.168.122.3", 53, 40003))
    to_node = (flow("10.244.1.2", "192.168.122.3", 40004, 30053), flow("192.168.122.3", "10.244.1.2", 30053, 40004))
    served = {("10.96.0.10", "53"): {"10.244.0.4"}, ("*", "30053"): {"10.244.0.4"}}
    s, n = stale_in("lab-n2", [never, to_node, GOOD, OTHER], served)  # 0→n: the ClusterIP's, the nodePort's
    assert not s.dnat and s.to == "10.96.0.10:53"
    assert s.describe() == ("a UDP conntrack entry in lab-n2 that keeps 10.244.1.2:40003 → 10.96.0.10:53 "
                            "un-DNATed (no rule of kube-proxy's DNATed it; kube-proxy's cleanup deletes it too)")
    assert s.filter == ("-p", "udp", "--orig-src", "10.244.1.2", "--orig-port-src", "40003", "--orig-dst",
                        "10.96.0.10", "--orig-port-dst", "53", "--reply-src", "10.96.0.10")
    assert not n.dnat and n.filter[-4:] == ("--orig-port-dst", "30053", "--reply-src", "192.168.122.3")
    # n→0: no endpoint to send it to; kube-proxy's REJECT answers the next packet of a new flow, this one it leaves
    assert stale_in("lab-n2", [never, to_node], {k: set() for k in served}) == []
    # n→m: the entry DNATed to the endpoint that went is stale (by its reply's source), the new endpoint's is not
    old = (flow("10.244.1.2", "10.96.0.10", 40005, 53), flow("10.244.0.9", "10.244.1.2", 53, 40005))
    (gone,) = stale_in("lab-n2", [old, GOOD], {("10.96.0.10", "53"): {"10.244.0.4"}})
    assert gone.dnat and gone.filter[-2:] == ("--reply-src", "10.244.0.9")


def test_up_deletes_an_entry_never_dnated_and_status_does_not_name_it(monkeypatch):
    """up deletes every stale entry (services.lifecycle.start); status names only those DNATed to no endpoint:
    kube-proxy's rules are right, and a packet to an address where nothing listens leaves such an entry too."""
    from test_services_plan import lab_of

    from netlab.kernel.ctfilter import CtFilter
    from netlab.kernel.nfnl import CtRecord
    from netlab.services import flannel_files, hosts, lifecycle, stale

    never = (flow("10.244.1.2", "10.96.0.10", 40003, 53), flow("10.96.0.10", "192.168.122.3", 53, 40003))
    found = stale_in("lab-n2", [STALE, never], PORTS | {("10.96.0.10", "53"): {"10.244.0.4"}})
    monkeypatch.setattr(stale, "find", lambda lab: found)
    lab = lab_of({"name": "st", "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}]})
    monkeypatch.setattr(flannel_files, "drift", lambda lab, state: [])
    monkeypatch.setattr(hosts, "drift", lambda lab, rec: [])

    class State:
        extra: dict = {}

    lines = [line for line in lifecycle.drift(lab, State()) if line.startswith("conntrack: ")]
    assert lines == [f"conntrack: {found[0].describe()}; up deletes it"]
    deleted = []
    monkeypatch.setattr(stale.conntrack, "delete_counted", lambda ns, filters: counted(deleted, filters))
    actions, problems = stale.delete(found, "st")
    assert problems == [] and actions == [f"deleted {s.describe()}" for s in found]
    record = CtRecord("udp", 17, never[0], never[1], 1 << 3, 30)
    assert [CtFilter.parse(f).matches(record) for f in deleted] == [False, True]


def test_a_live_flows_un_dnated_entry_is_deleted_at_each_apply_and_said_once(monkeypatch):
    """QA q10 6: a live flow kube-proxy's rules do not DNAT (to a nodePort on an address nothing DNATs) makes its
    entry anew after each deletion; every watcher apply said "deleted ... un-DNATed (made before the Service had
    endpoints)" of it. Deleted each time, as kube-proxy's cleanup does at each sync; said once per flow, in words
    that say what it is; a stale DNATed entry is said each time it is found."""
    from netlab.services import stale

    monkeypatch.setattr(stale, "_watched", {})
    stale.watching("lab")  # a watcher's applies (api/watch.py)
    deleted: list[list[str]] = []
    monkeypatch.setattr(stale.conntrack, "delete_counted", lambda ns, filters: counted(deleted, filters))
    to_node = (flow("10.244.1.2", "192.168.122.2", 40003, 30950), flow("192.168.122.2", "10.244.1.2", 30950, 40003))
    other = (flow("10.244.1.2", "192.168.122.2", 40004, 30950), flow("192.168.122.2", "10.244.1.2", 30950, 40004))
    ports = PORTS | {("*", "30950"): {"10.244.0.2"}}
    first, _ = stale.delete(stale_in("lab-n2", [to_node, STALE], ports), "lab")
    again, _ = stale.delete(stale_in("lab-n2", [to_node, STALE], ports), "lab")
    third, _ = stale.delete(stale_in("lab-n2", [to_node, other], ports), "lab")
    assert len(deleted) == 6  # every entry deleted every time
    assert first == ["deleted a UDP conntrack entry in lab-n2 that keeps 10.244.1.2:40003 → 192.168.122.2:30950 "
                     "un-DNATed (no rule of kube-proxy's DNATed it; kube-proxy's cleanup deletes it too)",
                     f"deleted {stale_in('lab-n2', [STALE], ports)[0].describe()}"]
    assert again == first[1:]  # the DNATed one is said each time it is found stale
    assert third == [first[0].replace("40003", "40004")]  # another flow: said


def test_each_up_but_a_watchers_says_its_own_deletions(monkeypatch):
    """QA q11: the once-per-flow line was global to the process: a second ``Lab.up()`` in the same process (or a
    lab made again under its name) deleted an un-DNATed entry without a word in its UpResult.fixed. Only a
    watcher's applies are quiet about one said already, and only while it watches."""
    from netlab.services import stale

    monkeypatch.setattr(stale, "_watched", {}, raising=False)
    monkeypatch.setattr(stale.conntrack, "delete_counted", lambda ns, filters: ([1] * len(filters), []))
    to_node = (flow("10.244.1.2", "192.168.122.2", 40003, 30950), flow("192.168.122.2", "10.244.1.2", 30950, 40003))
    found = stale_in("lab-n2", [to_node], PORTS | {("*", "30950"): {"10.244.0.2"}})
    line = [f"deleted {found[0].describe()}"]
    assert not found[0].dnat
    assert stale.delete(found)[0] == line
    assert stale.delete(found)[0] == line  # no lab named: nothing is quiet
    assert stale.delete(found, "lab")[0] == line
    assert stale.delete(found, "lab")[0] == line  # a second up in the same process: said again
    stale.watching("other")  # another lab's watcher changes nothing of this lab's
    assert stale.delete(found, "lab")[0] == line
    stale.watching("lab")
    assert stale.delete(found, "lab")[0] == line
    assert stale.delete(found, "lab")[0] == []  # the watcher's next apply: said already
    stale.watching("lab", on=False)  # the watcher ended: the next up says it
    assert stale.delete(found, "lab")[0] == line


def test_an_entry_the_kernel_did_not_delete_is_not_said_deleted(monkeypatch):
    """QA q62k 1: up said "deleted" of every entry it asked to delete; one the kernel deleted none of (gone before
    the delete, or one the filter missed) is said as such, a problem, not a repair."""
    from netlab.services import stale

    found = stale_in("lab-n1", [STALE], PORTS)
    monkeypatch.setattr(stale.conntrack, "delete_counted", lambda ns, filters: ([0] * len(filters), []))
    assert stale.delete(found, "lab") == ([], [f"found {found[0].describe()}, but the kernel deleted no entry of it "
                                               "(gone before the delete)"])
