"""kube-proxy's partial sync of iptables rules (realize/netfilter.trusted_change) without root.

It looks only at the chains that can differ (plan/iptables.differing_chains walks
two canonical rule tuples side by side; chain_lines finds a chain by bisection).
Whatever the change, it must give exactly what the whole comparison gives:
``compute_change(res, trusted_table(previous), previous)``.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from netlab.plan.iptables import BUILTIN_CHAINS, builtin_end, canonical_order, chain_lines, chain_of, differing_chains
from netlab.plan.resources import NatRules
from netlab.realize.netfilter import compute_change, trusted_change, trusted_table

# Names where one is the start of another (A, AB; KUBE-SEP-1, KUBE-SEP-10, KUBE-SEP-1-X): bisection by
# the "-A NAME " prefix must not take one chain's lines for the other's.
NAMES = ["A", "AB", "B", "KUBE-SEP-1", "KUBE-SEP-10", "KUBE-SEP-1-X", "KUBE-SVC-Q", "Z_9"]
TARGETS = NAMES + ["RETURN", "MASQUERADE", "ACCEPT"]

# A table: each chain of the lab with its rules (a rule: a comment number and a target), and the
# built-in chains' jumps to the lab's chains.
rule = st.tuples(st.integers(0, 3), st.sampled_from(TARGETS))
tables = st.fixed_dictionaries({
    "chains": st.dictionaries(st.sampled_from(NAMES), st.lists(rule, max_size=4), max_size=len(NAMES)),
    "jumps": st.lists(st.tuples(st.sampled_from(BUILTIN_CHAINS), st.sampled_from(NAMES)), max_size=4),
})


def nat_rules(table: dict) -> NatRules:
    lines = [f"-A {chain} -m comment --comment c{n} -j {target}"
             for chain, rules in table["chains"].items() for n, target in rules]
    lines += [f"-A {builtin} -j {chain}" for builtin, chain in table["jumps"] if chain in table["chains"]]
    return NatRules(netns="nlps-n1", table="nat", chains=tuple(sorted(table["chains"])), payload="",
                    rules=canonical_order(lines))


def by_chain(rules: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in rules:
        out.setdefault(chain_of(line), []).append(line)
    return out


@settings(max_examples=600, deadline=None)
@given(tables, tables)
def test_the_partial_sync_is_the_whole_comparison(old, new):
    previous, res = nat_rules(old), nat_rules(new)
    assert trusted_change(res, previous) == compute_change(res, trusted_table(previous), previous, read=False)


@settings(max_examples=600, deadline=None)
@given(tables, tables)
def test_differing_chains_are_those_whose_lines_differ(old, new):
    a, b = by_chain(nat_rules(old).rules), by_chain(nat_rules(new).rules)
    assert differing_chains(nat_rules(old).rules, nat_rules(new).rules) == {
        c for c in set(a) | set(b) if a.get(c) != b.get(c)}


@settings(max_examples=300, deadline=None)
@given(tables)
def test_a_chains_lines_are_found_by_bisection(table):
    rules = nat_rules(table).rules
    lo = builtin_end(rules)
    assert all(chain_of(line) in BUILTIN_CHAINS for line in rules[:lo])
    grouped = by_chain(rules)
    for name in NAMES:
        assert list(chain_lines(rules, name, lo)) == grouped.get(name, [])


def test_one_endpoint_gone_rewrites_its_service_and_deletes_its_chain():
    """The case kube-proxy's partial sync is for, spelled out: the Service's chain is written again with
    the endpoints left, the gone endpoint's chain deleted, nothing else touched."""
    old = {"chains": {"KUBE-SERVICES": [(0, "KUBE-SVC-Q")], "KUBE-SVC-Q": [(1, "KUBE-SEP-1"), (2, "KUBE-SEP-10")],
                      "KUBE-SEP-1": [(0, "RETURN")], "KUBE-SEP-10": [(0, "RETURN")]},
           "jumps": [("PREROUTING", "KUBE-SERVICES")]}
    new = {"chains": {"KUBE-SERVICES": [(0, "KUBE-SVC-Q")], "KUBE-SVC-Q": [(2, "KUBE-SEP-10")],
                      "KUBE-SEP-10": [(0, "RETURN")]},
           "jumps": [("PREROUTING", "KUBE-SERVICES")]}
    ch = trusted_change(nat_rules(new), nat_rules(old))
    assert (ch.written, ch.deleted, ch.jumps) == (["KUBE-SVC-Q"], ["KUBE-SEP-1"], 0)
    assert ch.payload.splitlines() == ["*nat", ":KUBE-SVC-Q - [0:0]", ":KUBE-SEP-1 - [0:0]",
                                       "-A KUBE-SVC-Q -m comment --comment c2 -j KUBE-SEP-10", "-X KUBE-SEP-1",
                                       "COMMIT"]
