"""Which missing kube-proxy rule a trace blames when a node did not DNAT a Service packet, in both modes (no root).

A rule on the packet's way that decides nothing for the DNAT (the mark that asks for a masquerade later,
sessionAffinity's bookkeeping) is not the reason: without it the packet is DNATed all the same. So a flushed
endpoint chain is blamed on its DNAT rule, the chain's other rules named beside it, and the fix puts them all
back. The lab is topologies/services.yaml (web-1 on node-1, web-2 on node-2, client on node-1); the fake kernel
answers from its plan, in nftables mode with kube-proxy's table as the kernel lists it (a rule less renumbers
the rest of its chain).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlab.model.load import load_topology
from netlab.model.lab import resolve
from netlab.plan.build import build_plan
from netlab.plan.resources import NatRules, NftRules
from netlab.trace import kubeproxy_nft
from netlab.trace.facts import NftTable
from netlab.trace.flow import Flow
from netlab.trace.kernel import nft_table_of
from netlab.trace.labmap import LabMap
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_walk import FakeKernel, _seen_everywhere, lab_from

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "kube_proxy"
CLIENT, WEB_IP, WEB_1, WEB_2 = "10.244.0.3", "10.96.0.20", "10.244.0.2", "10.244.1.2"
NFT_MODE = "cluster: {kubeProxyMode: nftables}\n"


class NftKernel(FakeKernel):
    """The fake kernel with kube-proxy's table (nftables mode) as ``nft -j list table`` gives it, from the plan;
    tests take lines out (``gone``) the way ``nft delete rule`` / ``nft flush chain`` would."""

    def __init__(self, lab, plan):
        super().__init__(lab, plan)
        self.gone: set[tuple[str, str]] = set()  # (netns, planned listing line)

    def nft_table(self, netns):
        res = next((r for r in self.plan.resources if isinstance(r, NftRules) and r.netns == netns), None)
        if res is None:
            return None
        rules: dict[str, list[str]] = {}
        elements: dict[str, list[str]] = {}
        other = []
        for line in res.listing:  # sorted: a chain's rules in their order
            if (netns, line) in self.gone:
                continue
            kind, name, rest = (line.split(" ", 2) + [""])[:3]
            if kind == "rule":
                rules.setdefault(name, []).append(rest.split(" ", 1)[1])
                continue
            if kind == "chain":
                rules.setdefault(name, [])
            elif kind == "element":
                elements.setdefault(name, []).append(rest)
            other.append(line)
        # The kernel numbers a chain's rules by position: one rule less renumbers those after it.
        listed = other + [f"rule {c} {i:04d} {text}" for c, texts in rules.items() for i, text in enumerate(texts)]
        return NftTable(frozenset(listed), {c: tuple(t) for c, t in rules.items()},
                        {n: tuple(e) for n, e in elements.items()}, {})


def services_lab(nft: bool):
    text = (ROOT / "topologies/services.yaml").read_text()
    if nft:
        text = text.replace("\nnodes:\n", f"\n{NFT_MODE}nodes:\n", 1)
    lab = lab_from(text)
    plan = build_plan(lab)
    return lab, LabMap.from_lab(lab, plan), (NftKernel if nft else FakeKernel)(lab, plan)


@pytest.fixture
def nft():
    return services_lab(nft=True)


@pytest.fixture
def ipt():
    return services_lab(nft=False)


def traced(m, k, flow, src="svc-client"):
    w = walk(k, m, src, flow)
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    return w, explain(w)


def to_web():
    return Flow("tcp", CLIENT, WEB_IP, 40000, 80)


def planned_rules(k, netns, chain):
    """The planned listing lines of one chain of kube-proxy's table."""
    res = next(r for r in k.plan.resources if isinstance(r, NftRules) and r.netns == netns)
    return [line for line in res.listing if line.startswith(f"rule {chain} ")]


# --- nftables mode ------------------------------------------------------------------------------------------------

def test_a_flushed_endpoint_chain_is_blamed_on_its_dnat_rule_and_the_fix_puts_back_the_chain(nft):
    _, m, k = nft
    web = m.service_for(WEB_IP, 80, "tcp")
    sep = next(e.sep_chain for e in web.endpoints if e.pod == "web-1")
    k.gone |= {("svc-node-1", line) for line in planned_rules(k, "svc-node-1", sep)}  # nft flush chain
    w, v = traced(m, k, to_web())
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.kind) == ("svc-node-1", "dnat") and not v.delivered
    assert (f"the rule `meta l4proto tcp dnat to {WEB_1}:8080` of chain {sep} (the DNAT to endpoint web-1) is "
            "missing from node-1's table ip kube-proxy (and so is the chain's other rule "
            f"`ip saddr {WEB_1} jump mark-for-masquerade`)") in v.reason
    assert "mark-for-masquerade` of chain" not in v.reason
    assert lost.decision.endswith(f"the rule `meta l4proto tcp dnat to {WEB_1}:8080` of chain {sep} is missing")
    assert lost.facts["missing_rule"] == f"rule {sep} 0001 meta l4proto tcp dnat to {WEB_1}:8080"
    assert lost.facts["also_missing"] == [f"rule {sep} 0000 ip saddr {WEB_1} jump mark-for-masquerade"]
    # The fix, as before: the chain again, whole, in the plan's order, in one transaction.
    assert v.fix == (f"ip netns exec svc-node-1 nft 'add chain ip kube-proxy {sep}; flush chain ip kube-proxy {sep}; "
                     f"add rule ip kube-proxy {sep} ip saddr {WEB_1} jump mark-for-masquerade; "
                     f"add rule ip kube-proxy {sep} meta l4proto tcp dnat to {WEB_1}:8080'")
    assert f"ip netns exec svc-node-1 nft list chain ip kube-proxy {sep}" in lost.commands


def test_every_endpoint_lacking_its_dnat_is_named_and_put_back(nft):
    """Both of web's endpoint chains flushed: the packet went to one of them (nothing says which). The trace
    named web-1's alone, and its fix left web-2's chain empty."""
    _, m, k = nft
    web = m.service_for(WEB_IP, 80, "tcp")
    seps = {e.pod: e.sep_chain for e in web.endpoints}
    k.gone |= {("svc-node-1", line) for sep in seps.values() for line in planned_rules(k, "svc-node-1", sep)}
    w, v = traced(m, k, to_web())
    lost = w.hops[v.lost_at]
    assert lost.decision.endswith("the DNAT to endpoints web-1 and web-2 are missing")
    assert (f"; so is the rule `meta l4proto tcp dnat to {WEB_2}:8080` of chain {seps['web-2']} (the DNAT to "
            "endpoint web-2): the packet was sent to one of these 2 endpoints, which no conntrack entry names; "
            "without a DNAT") in v.reason
    assert lost.facts["other_endpoints_missing"] == [f"rule {seps['web-2']} 0001 meta l4proto tcp dnat to "
                                                     f"{WEB_2}:8080"]
    first, second = v.fix.split(" && ")
    assert f"flush chain ip kube-proxy {seps['web-1']};" in first and f"dnat to {WEB_1}:8080'" in first
    assert f"flush chain ip kube-proxy {seps['web-2']};" in second and f"dnat to {WEB_2}:8080'" in second
    # web-2's alone: named alone (the packet that was not DNATed went there).
    k.gone = {("svc-node-1", line) for line in planned_rules(k, "svc-node-1", seps["web-2"])}
    lost = (w := traced(m, k, to_web())[0]).hops[explain(w).lost_at]
    assert lost.facts.get("other_endpoints_missing") is None and "web-1" not in lost.decision


def test_a_missing_mark_is_not_the_reason_a_missing_dnat_elsewhere_is(nft):
    """web-1's chain lacks only its mark (its DNAT, renumbered to 0000, is there); web-2's lacks its DNAT."""
    _, m, k = nft
    web = m.service_for(WEB_IP, 80, "tcp")
    sep1, sep2 = (e.sep_chain for e in web.endpoints)
    mark = planned_rules(k, "svc-node-1", sep1)[0]
    assert mark.endswith("jump mark-for-masquerade")
    k.gone.add(("svc-node-1", mark))
    _, v = traced(m, k, to_web())
    assert v.reason is None or "mark-for-masquerade" not in v.reason  # not blamed: it cannot stop the DNAT
    row = next(h for h in traced(m, k, to_web())[0].hops if h.kind == "dnat")
    assert not row.cause and "it was not DNATed here" in row.problem
    dnat2 = planned_rules(k, "svc-node-1", sep2)[-1]
    k.gone.add(("svc-node-1", dnat2))
    _, v = traced(m, k, to_web())
    assert f"the rule `meta l4proto tcp dnat to {WEB_2}:8080` of chain {sep2} (the DNAT to endpoint web-2)" \
        in v.reason
    assert "(and so" not in v.reason  # web-2's chain lacks nothing else
    assert f"add rule ip kube-proxy {sep2} meta l4proto tcp dnat to {WEB_2}:8080'" in v.fix


def test_a_clusterip_packet_kube_proxy_did_not_dnat_is_rejected_on_the_node_not_sent_on(nft):
    """cluster-ips-check rejects it in filter-forward: the trace stops there, not where the ClusterIP would lead."""
    _, m, k = nft
    web = m.service_for(WEB_IP, 80, "tcp")
    k.gone.add(("svc-node-1", next(line for line in planned_rules(k, "svc-node-1", web.svc_chain) if "numgen" in line)))
    w, v = traced(m, k, to_web())
    assert w.hops[v.lost_at].facts.get("dropped_here") is True
    assert "cluster-ips-check rejects it in the filter chains" in v.reason and "it went on as it was" not in v.reason
    # Without the reject rule (or the jump to it), nothing rejects it: it goes on, and the trace says where to.
    jump = next(line for line in planned_rules(k, "svc-node-1", "filter-forward") if "cluster-ips-check" in line)
    k.gone.add(("svc-node-1", jump))
    _, v = traced(m, k, to_web())
    assert "cluster-ips-check" not in v.reason and "it went on as it was" in v.reason


def test_the_kernels_own_listing_of_a_flushed_endpoint_chain():
    """The same on the table a real kernel printed (golden/kube_proxy/nft_kernel_view.json, with ClientIP
    affinity: the endpoint chain also updates the affinity set)."""
    lab = resolve(load_topology(str(GOLDEN / "nft_kernel_view.yaml")))
    m = LabMap.from_lab(lab, build_plan(lab))
    pod_a = next(str(p.ip) for p in lab.pods if p.name == "a")
    web = next(s for s in m.services if s.name == "default/web:http")
    sep = next(e.sep_chain for e in web.endpoints if e.pod == "a")
    view = json.loads((GOLDEN / "nft_kernel_view.json").read_text())
    view["nftables"] = [o for o in view["nftables"] if not ("rule" in o and o["rule"]["chain"] == sep)]
    why = kubeproxy_nft.no_dnat(m, nft_table_of(view), lab.nodes[0].netns, web,
                                Flow("tcp", "10.244.0.9", web.ip, 40000, 80), "cni0")
    assert why.cause and why.facts["missing_rule"] == f"rule {sep} 0002 meta l4proto tcp dnat to {pod_a}:8080"
    assert f"the rule `meta l4proto tcp dnat to {pod_a}:8080` of chain {sep} (the DNAT to endpoint a)" in why.problem
    assert f"(and so are 2 more of the chain's rules: `ip saddr {pod_a} jump mark-for-masquerade`, `update @affinity-" \
        in why.problem
    assert f"flush chain ip kube-proxy {sep}; add rule ip kube-proxy {sep} ip saddr {pod_a} jump" in why.fix


# --- iptables mode ------------------------------------------------------------------------------------------------

def sep_rules(k, netns, chain):
    nat = next(r for r in k.plan.resources if isinstance(r, NatRules) and r.netns == netns and r.table == "nat")
    return [line for line in nat.rules if line.split()[1] == chain]


def test_a_flushed_kube_sep_chain_is_blamed_on_its_dnat_and_the_fix_puts_back_both_rules(ipt):
    _, m, k = ipt
    web = m.service_for(WEB_IP, 80, "tcp")
    sep = next(e.sep_chain for e in web.endpoints if e.pod == "web-1")
    mark, dnat = sep_rules(k, "svc-node-1", sep)
    assert mark.endswith("-j KUBE-MARK-MASQ") and "-j DNAT --to-destination 10.244.0.2:8080" in dnat
    k.no_rule |= {("svc-node-1", mark), ("svc-node-1", dnat)}  # iptables -t nat -F KUBE-SEP-...
    w, v = traced(m, k, to_web())
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.kind) == ("svc-node-1", "dnat")
    assert (f"the rule `{dnat}` (the DNAT to endpoint web-1) is missing from node-1's nat table (and so is the "
            f"chain's other rule `{mark}`)") in v.reason
    assert lost.facts["missing_rule"] == dnat and lost.facts["also_missing"] == [mark]
    ipt_nat = "ip netns exec svc-node-1 iptables -t nat"
    assert v.fix == (f"{ipt_nat} -I {sep} 1 -s 10.244.0.2/32 -m comment --comment default/web:http -j KUBE-MARK-MASQ"
                     f" && {ipt_nat} -I {sep} 2 -p tcp -m comment --comment default/web:http -m tcp -j DNAT "
                     "--to-destination 10.244.0.2:8080")
    # Only the mark missing: not the reason (the packet is DNATed without it).
    k.no_rule.discard(("svc-node-1", dnat))
    row = next(h for h in traced(m, k, to_web())[0].hops if h.kind == "dnat")
    assert not row.cause and "it was not DNATed here" in row.problem
    # Both endpoints' DNAT missing (web-2's chain gone whole): both named, both put back.
    other = next(e.sep_chain for e in web.endpoints if e.pod == "web-2")
    k.no_rule, k.no_chain = {("svc-node-1", dnat)}, {("svc-node-1", other)}
    w, v = traced(m, k, to_web())
    lost = w.hops[v.lost_at]
    assert lost.decision.endswith("the DNAT to endpoints web-1 and web-2 are missing")
    assert (f"; so is chain {other} (the DNAT to endpoint web-2): the packet was sent to one of these 2 "
            "endpoints") in v.reason
    assert lost.facts["other_endpoints_missing"] == [f"chain {other}"]
    assert v.fix.endswith(f" && ip netns exec svc-node-1 iptables -t nat -N {other} && ip netns exec svc-node-1 "
                          f"iptables -t nat -A {other} -s 10.244.1.2/32 -m comment --comment default/web:http -j "
                          f"KUBE-MARK-MASQ && ip netns exec svc-node-1 iptables -t nat -A {other} -p tcp -m comment "
                          "--comment default/web:http -m tcp -j DNAT --to-destination 10.244.1.2:8080")
    k.no_chain = set()
    # Only the DNAT missing: named alone, put back in its place, after the mark.
    k.no_rule = {("svc-node-1", dnat)}
    _, v = traced(m, k, to_web())
    assert f"`{dnat}` (the DNAT to endpoint web-1) is missing from node-1's nat table;" in v.reason
    assert v.fix.startswith(f"{ipt_nat} -I {sep} 2 -p tcp ") and "&&" not in v.fix
