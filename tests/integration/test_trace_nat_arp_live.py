"""What trace says of a masquerade, of an ARP exchange and of an internet host's packet to a LoadBalancer IP,
against the kernel's own view, on a real host-gw lab in both kube-proxy modes (root; QA report ql, 1-4).

1, 2. A node's ping to a pod of another node is masqueraded by Flannel (``! -s 10.244.0.0/16 -d 10.244.0.0/16
-j MASQUERADE --random-fully``) to the node's own address: only the echo id changes. The MASQUERADE row and
its reversal show the ids the node's conntrack entry holds (``conntrack -L`` in the node), name the rule whose
``iptables-save -c`` counter went up, and send the learner to ``iptables-save -c -t nat``, in nftables mode too
(not to kube-proxy's masquerading chain: the entry's mark is 0, kube-proxy did not mark it).
3. A pod's first packet to a pod of its node, with no ARP entry before it: the neighbour row says so and shows the
who-has and the answer the capture holds; the answer's MAC is the entry the kernel has after it (``ip -j neigh``).
4. An internet host's packet to the LoadBalancer IP is the Service's: captured where the endpoint receives it
(a seen delivery with its TTL), kube-proxy's rule counted it (iptables mode) or its table holds the address
(nftables mode, ``nft -j list ruleset``), the gateway routed it to that node untranslated (its only DNAT is the
node's), and no note credits an echo server of the internet's.
"""

from __future__ import annotations

import json
import re

import pytest

from helpers import in_netns, ip_json, lab_up, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

LB = "203.0.113.100"
TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
network: {{mode: host-gw}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: c, node: n1}}
services:
  - {{name: web-lb, type: LoadBalancer, selector: {{app: web}}, loadBalancerIP: {lb},
     ports: [{{port: 80, targetPort: 8080, nodePort: 30081}}]}}
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: example, ip: 203.0.113.10}}]
"""


def _ip(netns: str) -> str:
    return in_netns(netns, "ip", "-4", "-br", "addr", "show", "eth0", check=True).stdout.split()[2].split("/")[0]


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def live(request, tmp_path_factory):
    lab = unique_lab("tq")
    path = write_topology(tmp_path_factory.mktemp("natarp"), TOPOLOGY.format(lab=lab, mode=request.param, lb=LB),
                          f"{lab}.yaml")
    with lab_up(path, lab):
        yield {"name": lab, "mode": request.param, "web": _ip(f"{lab}-web"), "c": _ip(f"{lab}-c"),
               "n2": _ip(f"{lab}-n2")}


def counters(netns: str) -> dict[str, int]:
    """Each nat rule (as iptables-save prints it) and the packets it counted, from ``iptables-save -c -t nat``."""
    out = {}
    for row in in_netns(netns, "iptables-save", "-c", "-t", "nat", check=True).stdout.splitlines():
        m = re.match(r"^\[(\d+):\d+\] (.*)$", row)
        if m:
            out[m.group(2)] = int(m.group(1))
    return out


def test_a_masquerade_shows_the_echo_id_conntrack_rewrote_and_the_rule_that_counted_it(live):
    lab, n2 = live["name"], f"{live['name']}-n2"
    before = counters(n2)
    rc, d = traced(lab, "n2", "web")
    after = counters(n2)
    assert rc == 0 and d["delivered"] and d["reply_received"], d["lost"]
    masq = next(h for h in d["hops"] if h["kind"] == "snat" and h["netns"] == n2)
    undo = next(h for h in d["reply_hops"] if h["kind"] == "dnat" and h["netns"] == n2)
    sent = int(masq["facts"]["before"].rsplit(" ", 1)[1])
    out = int(masq["facts"]["after"].rsplit(" ", 1)[1])
    # the kernel's entry: the sender's id in the original tuple, the id on the wire in the reply tuple
    entries = in_netns(n2, "conntrack", "-L", "-p", "icmp", "-s", live["n2"], "-d", live["web"], check=True).stdout
    (entry,) = [line for line in entries.splitlines() if f" id={sent} " in line and f" id={out} " in line]
    assert re.search(rf"src={live['n2']} dst={live['web']} type=8 code=0 id={sent} src={live['web']} "
                     rf"dst={live['n2']} type=0 code=0 id={out} mark=0 ", entry), entry  # mark 0: not kube-proxy's
    change, back = (f", echo id {sent} → {out}", f", echo id {out} → {sent}") if sent != out else ("", "")
    assert masq["decision"].startswith(f"MASQUERADE: source {live['n2']} → {live['n2']}{change}"), masq["decision"]
    assert (f"destination {live['n2']} → {live['n2']}{back}") in undo["decision"], undo["decision"]
    assert masq["facts"]["conntrack"] == (f"icmp {live['n2']} → {live['web']} id {sent} | reply {live['web']} → "
                                          f"{live['n2']} id {out}")
    rule = masq["facts"]["rule"]
    assert rule.startswith("-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 ") and "MASQUERADE" in rule, rule
    assert masq["facts"]["rule_counted"] == 1 and after[rule] - before[rule] >= 1, (before[rule], after[rule])
    save = f"ip netns exec {n2} iptables-save -c -t nat"
    assert masq["commands"][1:] == undo["commands"][1:] == [save], (masq["commands"], undo["commands"])


def test_the_first_packets_arp_exchange_is_shown_from_the_capture(live):
    lab, c = live["name"], f"{live['name']}-c"
    in_netns(c, "ip", "neigh", "flush", "dev", "eth0", check=True)  # c asks for web afresh
    assert not [n for n in ip_json("-4", "neigh", "show", live["web"], netns=c) if n.get("lladdr")]
    rc, d = traced(lab, "c", "web")
    assert rc == 0 and d["delivered"], d["lost"]
    (entry,) = ip_json("-4", "neigh", "show", live["web"], "dev", "eth0", netns=c)  # the kernel's, after
    row = next(h for h in d["hops"] if h["kind"] == "neigh" and h["facts"]["ip"] == live["web"])
    ask = f"ARP, Request who-has {live['web']} tell {live['c']}, length 28"
    answer = f"ARP, Reply {live['web']} is-at {entry['lladdr']}, length 28"
    assert row["facts"]["state_before"] == "no entry" and row["evidence"] == ask, row
    assert (row["facts"]["arp_request"], row["facts"]["arp_reply"]) == (ask, answer), row["facts"]
    assert row["decision"].startswith(f"no ARP entry for {live['web']} (web) before the packet: the kernel held "
                                      "the packet back, asked who-has"), row["decision"]
    item = next(a for a in d["arp"] if a["netns"] == c)
    assert (item["text"], item["reply"], item["answered"], item["state_before"]) == (ask, answer, True, "no entry")


def test_an_internet_hosts_packet_to_the_lb_ip_is_proven_at_the_endpoint(live):
    lab = live["name"]
    nodes = [f"{lab}-n1", f"{lab}-n2"]  # the gateway routes the LoadBalancer IP to either node
    before = {n: counters(n) for n in nodes}
    rc, d = traced(lab, "example", LB, "--port", "80")
    after = {n: counters(n) for n in nodes}
    assert rc == 0 and d["delivered"] and d["reply_received"], d["lost"]
    assert (d["destination"]["kind"], d["destination"]["service"]) == ("service", "web-lb"), d["destination"]
    assert d["listener"] is None and f"{lab}-web" in d["captured_netns"], d["captured_netns"]
    last = d["hops"][-1]
    assert (last["kind"], last["netns"], last["seen"]) == ("deliver", f"{lab}-web", True), last
    assert isinstance(last["facts"]["ttl"], int) and last["evidence"].startswith(f"IP (ttl {last['facts']['ttl']})")
    assert [h["netns"] for h in d["hops"] if h["kind"] == "dnat"] in ([n] for n in nodes), d["hops"]  # the node's only
    ep = d["endpoint"]
    node = next(h["netns"] for h in d["hops"] if h["kind"] == "dnat" and "Service default/web-lb" in h["decision"])
    assert ep["endpoint"] == "web" and node in nodes, ep
    if live["mode"] == "iptables":
        assert ep["rule_counted"] == 1 and after[node][ep["rule"]] - before[node][ep["rule"]] >= 1, ep
    else:
        ruleset = json.loads(in_netns(node, "nft", "-j", "list", "ruleset", check=True).stdout)["nftables"]
        chains = {c["chain"]["name"] for c in ruleset if "chain" in c and c["chain"]["table"] == "kube-proxy"}
        assert ep["sep_chain"] in chains and ep["svc_chain"] in chains, ep
        elems = [e for m in ruleset if "map" in m and m["map"]["name"] == "service-ips" for e in m["map"]["elem"]]
        assert any(LB in json.dumps(e) for e in elems), elems
