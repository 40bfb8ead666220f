"""The commands a NAT row gives to see the same yourself: where the rules that made the translation are (no root).

In iptables mode kube-proxy's DNAT is in the nat table (``iptables-save -c -t nat``, with the counters trace
reads). In nftables mode it is in kube-proxy's own table: the DNAT row and the reply's un-DNAT row list its
chains with ``nft list chain ip kube-proxy ...`` and no iptables. A masquerade is Flannel's (iptables in both
modes) unless kube-proxy DNATed and marked the connection (its ``masquerading`` chain). The lab is
topologies/services.yaml, in both modes; conntrack entries are given as the kernel would hold them.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from netlab.trace import kubeproxy_nft
from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow
from netlab.trace.walk import walk
from test_trace_missing_rules import CLIENT, WEB_2, WEB_IP, services_lab

NODE_1, NODE_2 = "svc-node-1", "svc-node-2"


def nat_rows(w):
    return [h for h in w.hops if h.kind in ("dnat", "snat")]


def client_to_web_2(nft: bool):
    """client → web's ClusterIP, DNATed on node-1 to web-2 (node-2), and the reply back."""
    _, m, k = services_lab(nft)
    flow = Flow("tcp", CLIENT, WEB_IP, 40000, 80)
    k.ct[NODE_1] = [CtEntry(flow, Flow("tcp", WEB_2, CLIENT, 8080, 40000), "SYN_RECV")]
    w = walk(k, m, "svc-client", flow)
    assert w.outcome == "delivered" and w.end_netns == "svc-web-2"
    back = walk(k, m, w.end_netns, w.final.reversed(), role="reply", direction="reply")
    assert back.outcome == "delivered" and back.end_netns == "svc-client"
    return m, w, back


def test_in_nftables_mode_the_dnat_and_un_dnat_rows_list_kube_proxys_chains_not_iptables():
    m, w, back = client_to_web_2(nft=True)
    web = m.service_for(WEB_IP, 80, "tcp")
    sep = web.endpoint(WEB_2, 8080).sep_chain
    conntrack = f"ip netns exec {NODE_1} conntrack -L -p tcp --orig-src {CLIENT} --orig-dst {WEB_IP}"
    chains = [f"ip netns exec {NODE_1} nft list chain ip kube-proxy {web.svc_chain}",  # its numgen map chose
              f"ip netns exec {NODE_1} nft list chain ip kube-proxy {sep}"]  # its dnat to web-2
    (dnat,) = nat_rows(w)
    assert dnat.kind == "dnat" and dnat.commands == [conntrack] + chains
    (undnat,) = nat_rows(back)
    assert "un-DNAT" in undnat.decision and undnat.commands == [conntrack] + chains
    assert not [c for h in nat_rows(w) + nat_rows(back) for c in h.commands if "iptables" in c]


def test_in_iptables_mode_the_same_rows_keep_the_nat_tables_counters():
    _, w, back = client_to_web_2(nft=False)
    for row in nat_rows(w) + nat_rows(back):
        assert row.commands[1:] == [f"ip netns exec {NODE_1} iptables-save -c -t nat"]
        assert not [c for c in row.commands if "nft " in c]


@pytest.mark.parametrize("nft", [True, False])
def test_a_node_port_masquerade_is_kube_proxys_and_a_pods_egress_is_flannels(nft):
    _, m, k = services_lab(nft)
    # example → node-2:30080, DNATed to web-1 and masqueraded (kube-proxy's external chain marks it).
    flow = Flow("tcp", "203.0.113.10", "192.168.122.3", 40000, 30080)
    k.ct[NODE_2] = [CtEntry(flow, Flow("tcp", "10.244.0.2", "10.244.1.0", 8080, 20000), "SYN_SENT")]
    w = walk(k, m, "svc-example", flow)
    assert w.outcome == "delivered"
    dnat, masq = (h for h in nat_rows(w) if h.netns == NODE_2)
    web_np = m.service_for("192.168.122.3", 30080, "tcp")
    nft_list = f"ip netns exec {NODE_2} nft list chain ip kube-proxy"
    if nft:
        assert dnat.commands[1:] == [f"{nft_list} {web_np.ext_chain}", f"{nft_list} {web_np.svc_chain}",
                                     f"{nft_list} {web_np.endpoint('10.244.0.2', 8080).sep_chain}"]
        assert masq.commands[1:] == [f"{nft_list} masquerading"]
    else:
        assert masq.commands[1:] == dnat.commands[1:] == [f"ip netns exec {NODE_2} iptables-save -c -t nat"]
    # client → the internet: node-1 masquerades with Flannel's rule, an iptables rule in both modes.
    egress = Flow("tcp", CLIENT, "203.0.113.10", 40001, 80)
    k.ct[NODE_1] = [CtEntry(egress, Flow("tcp", "203.0.113.10", "192.168.122.2", 80, 40001), "SYN_SENT")]
    (snat,) = (h for h in nat_rows(walk(k, m, "svc-client", egress)) if h.netns == NODE_1)
    assert "MASQUERADE" in snat.decision
    save = f"ip netns exec {NODE_1} iptables-save -c -t nat"
    # (nftables mode: kube-proxy's chain too, for a packet it marked and did not DNAT)
    assert snat.commands[1:] == ([save, f"ip netns exec {NODE_1} nft list chain ip kube-proxy masquerading"]
                                 if nft else [save])


def test_an_affinity_choice_adds_the_set_that_held_the_client():
    sticky = kubeproxy_nft.Choice("service-X", "ip saddr @affinity-ABC-default/web/tcp/http__10.244.0.2/8080 "
                                  "goto endpoint-Y", "", 1, 1, affinity=True, chance=Fraction(1))
    assert sticky.commands("n1") == ["ip netns exec n1 nft list set ip kube-proxy "
                                     "affinity-ABC-default/web/tcp/http__10.244.0.2/8080"]
    assert kubeproxy_nft.Choice("service-X", "numgen ...", "0 : goto endpoint-Y", 1, 2).commands("n1") == []


def test_in_nftables_mode_a_hostports_dnat_and_its_masquerade_list_iptables_not_kube_proxys_table():
    """portmap's hostPort rules are iptables in both modes (plan/portmap_rules.py): a DNAT no Service made, its
    un-DNAT on the replies and the 0x2000 mark's masquerade of a hairpin list the nat table, not kube-proxy's nft
    table, where nothing of them is (QA: the row quoted portmap's DNAT under `nft list table ip kube-proxy`)."""
    from netlab.trace import nat

    _, m, _ = services_lab(True)
    node, pod = "192.168.122.2", CLIENT  # a node's address and hostPort 18080, DNATed to a pod's 8080
    assert m.service_for(node, 18080, "tcp") is None
    entry = CtEntry(Flow("tcp", pod, node, 40000, 18080), Flow("tcp", pod, "10.244.0.1", 8080, 40000), "SYN_RECV")
    save = f"ip netns exec {NODE_1} iptables-save -c -t nat"
    for direction, which in (("orig", "dst"), ("reply", "src"), ("orig", "src"), ("reply", "dst")):
        got = nat.commands(m, NODE_1, nat.Hit(entry, direction), which)
        assert got[1:] == [save], (direction, which, got)
