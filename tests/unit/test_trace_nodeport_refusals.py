"""A nodePort's refusals judged from the rules the kernel holds, in both modes (no root): kube-proxy's REJECT of a
NodePort Service without endpoints (KUBE-EXTERNAL-SERVICES / map no-endpoint-nodeports) and the DROP of an
externalTrafficPolicy Local one on a node without an endpoint of its own. Deleted by hand, the trace says the
packet was not refused there, names the rule (or element) the kernel lacks and the command that puts it back;
whole, it names the rule that refused it.
"""

from __future__ import annotations

import pytest

from netlab.plan.build import build_plan
from netlab.plan.resources import NatRules, NftRules
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from test_trace_missing_rules import NftKernel
from test_trace_service_paths import traced
from test_trace_walk import FakeKernel, lab_from
from nodeport_refusals_lab import TOPOLOGY

N2 = "np-n2"


def build(mode: str):
    lab = lab_from(TOPOLOGY.format(lab="np", mode=mode))
    plan = build_plan(lab)
    k = (NftKernel if mode == "nftables" else FakeKernel)(lab, plan)
    return LabMap.from_lab(lab, plan), k, str(lab.node("n2").ip)


def planned(k, what: str) -> str:
    """n2's planned filter rule (iptables) or listing line (nftables) that refuses ``what`` (the nodePort)."""
    if isinstance(k, NftKernel):
        (r,) = [r for r in k.plan.resources if isinstance(r, NftRules) and r.netns == N2]
        return next(line for line in r.listing if line.startswith(f"element no-endpoint-nodeports tcp . {what} "))
    (r,) = [r for r in k.plan.resources if isinstance(r, NatRules) and r.netns == N2 and r.table == "filter"]
    return next(line for line in r.rules if f"--dport {what} -j" in line)


def gone(k, line: str) -> None:
    if isinstance(k, NftKernel):
        k.gone.add((N2, line))  # nft delete element ip kube-proxy no-endpoint-nodeports { tcp . PORT }
    else:
        k.no_rule.add((N2, line))  # iptables -t filter -D KUBE-EXTERNAL-SERVICES ...


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
@pytest.mark.parametrize("port,words", [(30081, "externalTrafficPolicy Local and no endpoint on n2"),
                                        (30082, "Service default/empty has no endpoints")])
def test_a_deleted_nodeport_refusal_is_named_with_its_fix(mode, port, words):
    m, k, n2 = build(mode)
    line = planned(k, str(port))
    w, v = traced(m, k, Flow("tcp", "203.0.113.50", n2, 40000, port), src="np-client")
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.kind) == (N2, "dnat") and words in v.reason and v.fix is None, v.reason
    if mode == "iptables":
        assert f"`{line}`" in v.reason  # the rule that refused it, as the kernel holds it
    gone(k, line)
    w, v = traced(m, k, Flow("tcp", "203.0.113.50", n2, 40000, port), src="np-client")
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.kind) == (N2, "dnat"), [(h.netns, h.kind) for h in w.hops]
    assert lost.facts["missing_rule"] == line and lost.facts.get("dropped_here") is None, lost.facts
    assert ("not drop this packet" if port == 30081 else "not refuse this packet") in v.reason, v.reason
    assert f"stays addressed to n2 itself, port {port}, where no socket listens" in v.reason, v.reason
    if mode == "iptables":
        assert "missing from n2's filter table" in v.reason
        assert v.fix.startswith(f"ip netns exec {N2} iptables -t filter -I KUBE-EXTERNAL-SERVICES "), v.fix
        assert f"--dport {port} -j {'DROP' if port == 30081 else 'REJECT'}" in v.fix
    else:
        assert "of map no-endpoint-nodeports" in v.reason and "missing from n2's table ip kube-proxy" in v.reason
        assert v.fix == (f"ip netns exec {N2} nft 'add element ip kube-proxy no-endpoint-nodeports "
                         f"{{ {line.split(' ', 2)[2]} }}'"), v.fix


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_deleted_jump_to_the_nodeport_check_is_named(mode):
    """The jump from INPUT (filter-input) is on the way too: without it nothing refuses the nodePort."""
    m, k, n2 = build(mode)
    if mode == "iptables":
        jump = next(line for r in k.plan.resources if isinstance(r, NatRules) and r.netns == N2
                    and r.table == "filter" for line in r.rules
                    if line.startswith("-A INPUT ") and line.endswith("-j KUBE-EXTERNAL-SERVICES"))
    else:
        jump = next(line for r in k.plan.resources if isinstance(r, NftRules) and r.netns == N2
                    for line in r.listing if line.startswith("rule filter-input ") and "nodeport-endpoints" in line)
    gone(k, jump)
    _, v = traced(m, k, Flow("tcp", "203.0.113.50", n2, 40000, 30082), src="np-client")
    assert "not refuse this packet" in v.reason and v.fix and ("INPUT" in v.fix or "filter-input" in v.fix), v.reason


@pytest.mark.parametrize("port", [30081, 30082])
def test_nftables_names_the_no_endpoint_nodeports_element_that_refused_it(port):
    """nftables mode: the element of map no-endpoint-nodeports that drops (30081) or rejects (30082) the nodePort
    is quoted, as iptables mode quotes its filter rule; the node's address in set nodeport-ips only leads to the
    lookup (it was quoted as the refusing element)."""
    m, k, n2 = build("nftables")
    line = planned(k, str(port))  # element no-endpoint-nodeports tcp . PORT comment "..." : drop / goto reject-chain
    w, v = traced(m, k, Flow("tcp", "203.0.113.50", n2, 40000, port), src="np-client")
    lost = w.hops[v.lost_at]
    assert f"`{line}`" in v.reason and "nodeport-ips" not in v.reason, v.reason
    if port == 30082:
        said = lost.facts["rejected"]
        assert f"map no-endpoint-nodeports (`{line}`)" in said and "nodeport-ips" not in said, said
