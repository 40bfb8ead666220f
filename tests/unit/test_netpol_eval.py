"""The pure NetworkPolicy evaluator against truth tables written by hand (tests/netpol_cases.py)."""

from __future__ import annotations

import pytest
from netpol_cases import CASES, FLOWS, ORDER, expected, model, pod_name

from netlab.api.topology import load
from netlab.model.netpol import Peer, policy_set

BY_NAME = {c["name"]: c for c in CASES}


def table_of(case: dict, name: str = "npu") -> dict[tuple[str, str, str, int], bool]:
    lab = load(model(name, case["policies"])).lab
    ps = policy_set(lab)
    views = {f"{p.namespace}/{p.name.split('-')[1]}": p for p in ps.pods}
    out = {}
    for src in ORDER:
        for dst in ORDER:
            for proto, port in FLOWS:
                v = ps.flow(Peer(views[src].ip, views[src]), Peer(views[dst].ip, views[dst]), proto, port)
                out[(src, dst, proto, port)] = v.allowed
    return out


def test_at_least_25_cases():
    assert len(CASES) >= 25
    assert len({c["name"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_evaluator_matches_hand_table(case):
    got, want = table_of(case), expected(case)
    wrong = [k for k in want if got[k] != want[k]]
    assert not wrong, f"{len(wrong)} flows differ, first: {wrong[:5]}"


def test_no_policy_allows_everything():
    got = table_of({"policies": []})
    assert all(got.values())


def test_explanations_name_policy_rule_and_peer():
    lab = load(model("npu", CASES[8]["policies"])).lab  # pods-or-namespace-OR
    ps = policy_set(lab)
    xa, xb, yc, zc = (ps.pod(pod_name(*n.split("/"))) for n in ("x/a", "x/b", "y/c", "z/c"))
    ok = ps.flow(Peer(yc.ip, yc), Peer(xa.ip, xa), "TCP", 80)
    assert ok.allowed
    assert ok.describe() == ("allowed by policy x/allow-y-or-b, ingress rule 1, peer 1 namespaceSelector ns=y, "
                             "any port")
    ok2 = ps.flow(Peer(xb.ip, xb), Peer(xa.ip, xa), "TCP", 80)
    assert "peer 2 podSelector pod=b" in ok2.describe()
    no = ps.flow(Peer(zc.ip, zc), Peer(xa.ip, xa), "UDP", 81)
    assert not no.allowed
    assert no.describe() == "denied by policy x/allow-y-or-b (no ingress rule allows it for pod x/x-a)"


def test_a_pod_reaching_itself_is_never_judged_over_loopback_nor_through_a_service():
    """A pod cannot block access to itself: its own Service's ClusterIP DNATed back to it (hairpin) was judged by
    its own policies, and denied under default-deny, while its own address was allowed."""
    for case in ("default-deny-ingress", "default-deny-egress", "default-deny-both"):
        lab = load(model("npu", BY_NAME[case]["policies"])).lab
        ps = policy_set(lab)
        xa, xb = ps.pod("x-a"), ps.pod("x-b")
        loopback = ps.flow(Peer(xa.ip, xa), Peer(xa.ip, xa), "TCP", 80)
        assert loopback.allowed and loopback.describe() == "x/x-a reaches itself over loopback: never judged"
        hairpin = ps.flow(Peer(xa.ip, xa), Peer(xa.ip, xa), "TCP", 80, via_service=True)
        assert hairpin.allowed, (case, hairpin.describe())
        assert hairpin.describe() == "x/x-a reaches itself through a Service (hairpin): never judged"
        assert hairpin.egress.allowed and hairpin.ingress.allowed and not hairpin.egress.isolating
        # another pod through the same kind of Service is judged as ever
        assert not ps.flow(Peer(xb.ip, xb), Peer(xa.ip, xa), "TCP", 80, via_service=True).allowed, case


def test_nodes_own_pods_always_allowed_other_nodes_are_addresses():
    from netlab.model.netpol import lab_peer
    lab = load(model("npu", CASES[0]["policies"])).lab
    ps = policy_set(lab)
    xa = ps.pod("x-a")  # on n1
    dst = Peer(xa.ip, xa)
    assert ps.flow(lab_peer(lab, ps, "n1"), dst, "TCP", 80).allowed
    far = ps.flow(lab_peer(lab, ps, "n2"), dst, "TCP", 80)
    assert not far.allowed and far.ingress.isolating == ("x/deny-all-ingress",)
