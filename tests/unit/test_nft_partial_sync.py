"""kube-proxy's partial sync in nftables mode (realize/nft_sync.listing_delta) without root.

It looks only at the lines in which two sorted listings differ, and finds a
chain written again by bisection. Whatever the change, it must write exactly
what comparing the two listings whole writes: ``whole`` below, the definition
it replaced, parses both listings (with the module's own parser) and compares every
set, chain, rule and element.
"""

from __future__ import annotations

from typing import Sequence

from hypothesis import given, settings, strategies as st

from netlab.realize.nft_sync import _key, _parse as parse, _set_line, listing_delta, replay_payload


def whole(family: str, table: str, have: Sequence[str], want: Sequence[str]) -> str | None:
    pre = f"{family} {table}"
    h_sets, h_chains, h_rules, h_elems = parse(have)
    w_sets, w_chains, w_rules, w_elems = parse(want)
    if any(h_sets.get(n, v) != v for n, v in w_sets.items()) or \
            any(h_chains.get(n, v) != v for n, v in w_chains.items()):
        return replay_payload(family, table, want)
    out = [_set_line(pre, n, kind, spec) for n, (kind, spec) in w_sets.items() if n not in h_sets]
    out += [f"add chain {pre} {n}" + (f" {{ {spec} ; }}" if spec else "") for n, spec in w_chains.items()
            if n not in h_chains]
    for name, rules in w_rules.items():
        if h_rules.get(name) == rules:
            continue
        if name in h_chains:
            out.append(f"flush chain {pre} {name}")
        out += [f"add rule {pre} {name} {r}" for r in rules]
    for name in sorted(set(w_elems) | set(h_elems)):
        now, before = w_elems.get(name, []), h_elems.get(name, [])
        if name in w_sets:
            out += [f"delete element {pre} {name} {{ {_key(e)} }}" for e in before if e not in now]
        out += [f"add element {pre} {name} {{ {e} }}" for e in now if e not in before]
    out += [f"flush chain {pre} {name}" for name in h_chains if name not in w_chains and h_rules.get(name)]
    out += [f"delete {kind} {pre} {n}" for n, (kind, _) in h_sets.items() if n not in w_sets]
    return "\n".join(out) + "\n" if out else None


# Names where one is the start of another (a, ab; service-1, service-1/x, service-10).
CHAINS = ["a", "ab", "b", "service-1", "service-1/x", "service-10", "nat-prerouting"]
SETS = ["cluster-ips", "cluster-ips-2", "service-ips", "affinity-1"]
RULES = ["ip daddr @cluster-ips accept", "jump b", "goto service-1", "counter", "dnat to 10.0.0.1:80"]
SPECS = ["", "type nat hook prerouting priority -100"]
ELEMENTS = ["10.96.0.1", "10.96.0.1 . tcp . 80 : goto service-1", "10.96.0.2 comment \"x\"", "10.96.0.3"]

tables = st.fixed_dictionaries({
    "sets": st.dictionaries(st.sampled_from(SETS), st.tuples(st.sampled_from(["set", "map"]),
                                                             st.sampled_from(["type ipv4_addr",
                                                                              "type ipv4_addr timeout 10800s"])),
                            max_size=3),
    "chains": st.dictionaries(st.sampled_from(CHAINS), st.tuples(st.sampled_from(SPECS),
                                                                 st.lists(st.sampled_from(RULES), max_size=3)),
                              max_size=5),
    "elements": st.dictionaries(st.sampled_from(SETS), st.lists(st.sampled_from(ELEMENTS), unique=True, max_size=3)),
})


def listing(table: dict) -> tuple[str, ...]:
    """A valid listing, sorted, as Table.listing() and realize.listing() give it."""
    out = [f"{kind} {name} {spec}" for name, (kind, spec) in table["sets"].items()]
    for name, (spec, rules) in table["chains"].items():
        out.append(f"chain {name}" + (f" {spec}" if spec else ""))
        out += [f"rule {name} {i:04d} {r}" for i, r in enumerate(rules)]
    out += [f"element {name} {e}" for name, elems in table["elements"].items() if name in table["sets"]
            for e in elems]
    return tuple(sorted(out))


@settings(max_examples=800, deadline=None)
@given(tables, tables)
def test_the_partial_sync_writes_what_comparing_whole_listings_writes(old, new):
    have, want = listing(old), listing(new)
    assert listing_delta("ip", "kube-proxy", have, want) == whole("ip", "kube-proxy", have, want)
