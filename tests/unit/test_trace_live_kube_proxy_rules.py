"""trace judges kube-proxy's rules as the kernel holds them, not as planned (no root; QA report "qs", 1-5).

- A Service without endpoints: the REJECT (iptables: filter's KUBE-SERVICES; nftables: the Service's element
  in map no-endpoint-services) deleted by hand is named, with its fix; the packet is not said to be rejected
  by the rule that is gone (iptables: it follows the node's routes; nftables: cluster-ips-check rejects it).
- An endpoint chain whose DNAT was edited to another endpoint: the chain whose counter moved is the one named
  (iptables), or, without a counter (nftables), every chain that DNATs there, and the edited DNAT is flagged.
- nftables: the share of a numgen map is read from the live map (two elements to one chain: 2 in 2), and a
  counter the user inserted is read.
"""

from __future__ import annotations

from fractions import Fraction

from netlab.plan.build import build_plan
from netlab.trace import detour, kubeproxy_nft, picture, refusal
from netlab.trace.facts import NatRule, NatTable, NftTable
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.verdict import explain
from netlab.trace.walk import walk
from test_trace_missing_rules import NftKernel
from test_trace_walk import FakeKernel, lab_from

TOPOLOGY = """name: kp
{mode}nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: w1, node: n1, labels: {{app: web}}}}
  - {{name: w2, node: n2, labels: {{app: web}}}}
  - {{name: c, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
  - {{name: empty, selector: {{app: none}}, clusterIP: 10.96.0.14, ports: [{{name: http, port: 80}}]}}
"""
N1, C = "kp-n1", "kp-c"
REJECT = ('-A KUBE-SERVICES -d 10.96.0.14/32 -p tcp -m comment --comment "default/empty:http has no endpoints" '
          "-m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable")


def world(nft: bool):
    lab = lab_from(TOPOLOGY.format(mode="cluster: {kubeProxyMode: nftables}\n" if nft else ""))
    plan = build_plan(lab)
    return LabMap.from_lab(lab, plan), (NftKernel if nft else FakeKernel)(lab, plan)


def dnat_row(k, m, dst="10.96.0.14"):
    w = walk(k, m, C, Flow("tcp", "10.244.0.3", dst, 40000, 80))
    return next(h for h in w.hops if h.kind == "dnat")


def test_iptables_a_deleted_no_endpoints_reject_is_named_with_its_fix_and_the_packet_goes_on():
    m, k = world(nft=False)
    assert REJECT in m.planned_filter[N1].rules
    row = dnat_row(k, m)
    assert row.facts.get("dropped_here") and "missing" not in row.problem  # as planned: rejected here
    k.no_rule.add((N1, REJECT))
    row = dnat_row(k, m)
    assert not row.facts.get("dropped_here") and row.cause and row.facts["missing_rule"] == REJECT
    assert f"the rule `{REJECT}`" in row.problem and "is missing from n1's filter table" in row.problem
    assert "follows n1's routes as it is" in row.problem and "rejects the packet" not in row.problem
    assert row.fix == (f"ip netns exec {N1} iptables -t filter -I KUBE-SERVICES 1 -d 10.96.0.14/32 -p tcp -m comment "
                       "--comment 'default/empty:http has no endpoints' -m tcp --dport 80 -j REJECT --reject-with "
                       "icmp-port-unreachable")


def test_nftables_a_deleted_no_endpoint_services_element_names_cluster_ips_check_and_the_fix():
    m, k = world(nft=True)
    element = next(line for line in m.planned_nft[N1] if line.startswith("element no-endpoint-services 10.96.0.14 "))
    k.gone.add((N1, element))
    row = dnat_row(k, m)
    assert row.facts["missing_rule"] == element and row.facts.get("dropped_here")
    assert "of map no-endpoint-services" in row.problem and "is missing from n1's table ip kube-proxy" in row.problem
    assert "cluster-ips-check rejects it" in row.problem and "reject-chain does not refuse" in row.problem
    assert row.fix == (f"ip netns exec {N1} nft 'add element ip kube-proxy no-endpoint-services "
                       "{ 10.96.0.14 . tcp . 80 comment \"default/empty:http\" : goto reject-chain }'")


def _web(m):
    svc = m.service_for("10.96.0.20", 80, "tcp")
    return svc, svc.endpoint("10.244.0.2", 8080), svc.endpoint("10.244.1.2", 8080)


def _edited_nat(m, took: str | None) -> NatTable:
    """n1's nat table as planned, w1's DNAT edited to w2's address; ``took``: the SEP chain whose DNAT counted the
    packet (None: not counted)."""
    svc, w1, w2 = _web(m)
    rules = []
    for line in m.planned_nat[N1].rules:
        if line.startswith(f"-A {w1.sep_chain} ") and "--to-destination" in line:
            line = line.replace("10.244.0.2:8080", "10.244.1.2:8080")
        delta = None if took is None else int(line.startswith(f"-A {took} ") and "DNAT" in line)
        rules.append(NatRule(line, delta or 0, delta))
    return NatTable(m.planned_nat[N1].chains, tuple(rules))


def test_iptables_the_sep_chain_whose_counter_moved_is_named_and_its_edited_dnat_flagged():
    m, _ = world(nft=False)
    svc, w1, w2 = _web(m)
    new = Flow("tcp", "10.244.0.3", "10.244.1.2", 40000, 8080)
    d = detour.iptables_detour(m, N1, svc, new, _edited_nat(m, w1.sep_chain))
    assert d is not None and d.chain == w1.sep_chain and d.counted == 1 and len(d.edited) == 1
    assert "--to-destination 10.244.1.2:8080" in d.edited[0].rule and d.edited[0].planned.endswith("10.244.0.2:8080")
    assert d.fix() == (f"ip netns exec {N1} iptables -t nat -R {w1.sep_chain} 2 -p tcp -m comment --comment "
                       "default/web -m tcp -j DNAT --to-destination 10.244.0.2:8080")
    assert f"went through {w1.sep_chain}, endpoint w1's chain (its counter went up by 1" in d.problem("n1", "nat table")
    # Through w2's own chain: this packet's path is the plan's.
    assert detour.iptables_detour(m, N1, svc, new, _edited_nat(m, w2.sep_chain)) is None
    # As planned: only w2's chain DNATs to w2.
    assert detour.iptables_detour(m, N1, svc, new, NatTable(m.planned_nat[N1].chains, tuple(
        NatRule(line, 1, 1) for line in m.planned_nat[N1].rules))) is None


def _nft(m, numgen: str | None = None, dnat_w1: str | None = None,
         counters: dict[str, tuple[int, int]] | None = None) -> NftTable:
    """n1's kube-proxy table as planned, with the web chain's numgen rule or w1's DNAT replaced; ``counters``:
    chain -> (before, after) of a counter the user inserted at its head."""
    svc, w1, _ = _web(m)
    rules: dict[str, list[str]] = {}
    for line in m.planned_nft[N1]:
        if line.startswith("rule "):
            _, chain, _, text = line.split(" ", 3)
            if numgen and chain == svc.svc_chain and text.startswith("numgen"):
                text = numgen
            if dnat_w1 and chain == w1.sep_chain and "dnat to" in text:
                text = dnat_w1
            rules.setdefault(chain, []).append(text)
    now: dict[str, tuple[int | None, ...]] = {}
    then: dict[str, tuple[int | None, ...]] = {}
    for chain, (a, b) in (counters or {}).items():
        rules[chain].insert(0, "counter")
        then[chain] = (a,) + (None,) * (len(rules[chain]) - 1)
        now[chain] = (b,) + (None,) * (len(rules[chain]) - 1)
    return NftTable(frozenset(m.planned_nft[N1]), {c: tuple(r) for c, r in rules.items()}, {}, {},
                    counters=now, counters_before=then if counters else None)


def test_nftables_without_a_counter_every_chain_that_dnats_there_is_named_with_the_edited_one_flagged():
    m, _ = world(nft=True)
    svc, w1, w2 = _web(m)
    new = Flow("tcp", "10.244.0.3", "10.244.1.2", 40000, 8080)
    table = _nft(m, dnat_w1="meta l4proto tcp dnat to 10.244.1.2:8080")
    d = detour.nft_detour(m, N1, svc, new, table)
    assert d is not None and d.chain is None and set(d.candidates) == {w1.sep_chain, w2.sep_chain}
    assert [e.chain for e in d.edited] == [w1.sep_chain] and "no counter says which" in d.problem("n1", "t")
    assert d.fix().startswith(f"ip netns exec {N1} nft 'add chain ip kube-proxy {w1.sep_chain}; flush chain")
    # A counter the user inserted in both endpoint chains says which took it.
    counted = _nft(m, dnat_w1="meta l4proto tcp dnat to 10.244.1.2:8080",
                   counters={w1.sep_chain: (3, 4), w2.sep_chain: (5, 5)})
    d = detour.nft_detour(m, N1, svc, new, counted)
    assert d is not None and d.chain == w1.sep_chain and d.counted == 1
    counted = _nft(m, dnat_w1="meta l4proto tcp dnat to 10.244.1.2:8080",
                   counters={w1.sep_chain: (3, 3), w2.sep_chain: (5, 6)})
    assert detour.nft_detour(m, N1, svc, new, counted) is None
    assert detour.nft_detour(m, N1, svc, new, _nft(m)) is None  # as planned


def test_nftables_the_share_is_the_live_maps_and_no_drawn_number_is_claimed():
    m, _ = world(nft=True)
    svc, w1, w2 = _web(m)
    both = f"numgen random mod 2 vmap {{ 0 : goto {w2.sep_chain}, 1 : goto {w2.sep_chain} }}"
    c = kubeproxy_nft.choice(_nft(m, numgen=both), svc, w2, "10.244.0.3")
    assert c is not None and c.chance == Fraction(1) and len(c.elements) == 2
    assert "2 in 2 overall" in c.text() and "2 in 2 overall" in c.short() and "drew" not in c.text()
    plain = kubeproxy_nft.choice(_nft(m), svc, w2, "10.244.0.3")
    assert plain is not None and plain.chance == Fraction(1, 2) and "1 in 2 overall" in plain.text()


def test_nftables_a_counter_the_user_inserted_is_read():
    m, _ = world(nft=True)
    svc, _, w2 = _web(m)
    c = kubeproxy_nft.choice(_nft(m, counters={svc.svc_chain: (7, 8)}), svc, w2, "10.244.0.3")
    assert c is not None and f"the counter in {svc.svc_chain} went up by 1 during the trace" in c.text()
    assert "no counter" not in c.text() and c.facts()["rule_counted"] == 1
    bare = kubeproxy_nft.choice(_nft(m), svc, w2, "10.244.0.3")
    assert bare is not None and "no rule of these chains has a counter" in bare.text()


def _result(w):
    r = TraceResult(lab="kp", src={"name": "c", "ip": "10.244.0.3"}, dst={"name": "svc/empty", "ip": "10.96.0.14"},
                    proto="tcp", port=80, marker="m", forward=w, reply=None, verdict=explain(w), reply_verdict=None,
                    reply_received=False)
    number(r)
    return r


def test_a_service_without_endpoints_is_refused_by_kube_proxys_rule_not_lost_in_both_modes():
    # The kernel answers at once (ICMP port unreachable, the client's connection refused): the result says REFUSED
    # at the node's row, naming the rule and the node, and JSON's `refused` says why, as for a closed port's RST.
    for nft in (False, True):
        m, k = world(nft=nft)
        r = _result(walk(k, m, C, Flow("tcp", "10.244.0.3", "10.96.0.14", 40000, 80)))
        r.refused = refusal.rejected(r.verdict, r.forward.hops)
        rule = ("map no-endpoint-services (`element no-endpoint-services 10.96.0.14 . tcp . 80" if nft else
                f"filter rule `{REJECT}`")
        assert r.refused is not None and r.refused.startswith("Service default/empty:http has no endpoints: node n1's "
                                                               f"kube-proxy {rule}"), r.refused
        assert "rejected it at once with an ICMP port unreachable" in r.refused
        assert not r.ok and r.to_json()["refused"] == r.refused and r.to_json()["lost"]["netns"] == N1
        line = next(x for x in render_text(r).splitlines() if x.startswith("result:"))
        assert line.startswith(f"result: REFUSED at hop {r.to_json()['lost']['hop']} ({N1} ") and "LOST" not in line
        assert picture.title(r).endswith(f"REFUSED at hop {r.to_json()['lost']['hop']}")
    # Its REJECT deleted by hand, the packet goes on unrefused: no refusal to name, it is LOST where it went.
    m, k = world(nft=False)
    k.no_rule.add((N1, REJECT))
    r = _result(walk(k, m, C, Flow("tcp", "10.244.0.3", "10.96.0.14", 40000, 80)))
    assert refusal.rejected(r.verdict, r.forward.hops) is None
    assert next(x for x in render_text(r).splitlines() if x.startswith("result:")).startswith("result: LOST")
