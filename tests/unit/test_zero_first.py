"""A restore that declares many chains into a table holding no rule starts with ``-Z`` (plan/iptables.py's
ZERO_FIRST): iptables-nft then reads the table's chains in one dump instead of keeping every chain the
payload names in a sorted list and asking the kernel for each. Where the table holds a rule, or where it
is only trusted to be as the last restore left it (kube-proxy's partial sync), no ``-Z``: it would zero
counters someone reads."""

from __future__ import annotations

from netlab.kernel import fake_iptables
from netlab.kernel.base import TableText
from netlab.plan.iptables import ZERO_FIRST, ZERO_FIRST_CHAINS, canonical_order
from netlab.plan.resources import NatRules
from netlab.realize.netfilter import Table, compute_change, parse_save, trusted_change
from netlab.realize.netfilter_drift import table_payload


def nat(n: int, netns: str = "nlzf-n1") -> NatRules:
    """n chains of the lab's, each a rule, and a built-in chain's jump to the first."""
    chains = tuple(f"KUBE-SEP-{i:04d}" for i in range(n))
    lines = [f"-A {c} -j RETURN" for c in chains] + [f"-A PREROUTING -j {chains[0]}"]
    return NatRules(netns=netns, table="nat", chains=chains, payload="", rules=canonical_order(lines))


def starts_with_zero(payload: str) -> bool:
    return tuple(payload.splitlines()[1:1 + len(ZERO_FIRST)]) == ZERO_FIRST


def test_many_chains_into_a_new_table_start_with_zero():
    assert starts_with_zero(table_payload(nat(ZERO_FIRST_CHAINS), None))
    assert starts_with_zero(compute_change(nat(ZERO_FIRST_CHAINS), Table()).payload)


def test_few_chains_do_not():
    assert not starts_with_zero(table_payload(nat(ZERO_FIRST_CHAINS - 1), None))
    assert "-Z" not in compute_change(nat(ZERO_FIRST_CHAINS - 1), Table()).payload.splitlines()


def test_a_table_holding_a_rule_is_never_zeroed():
    someone = "*nat\n:PREROUTING ACCEPT [0:0]\n:MINE - [0:0]\n-A MINE -j RETURN\nCOMMIT\n"
    payload = table_payload(nat(ZERO_FIRST_CHAINS * 2), someone)
    assert "-Z" not in payload.splitlines()
    change = compute_change(nat(ZERO_FIRST_CHAINS * 2), parse_save(someone, "nat"))
    assert change.written and "-Z" not in change.payload.splitlines()


def test_a_trusted_table_is_never_zeroed():
    """The partial sync reads nothing: an empty previous plan does not prove an empty table."""
    empty = NatRules(netns="nlzf-n1", table="nat", chains=(), payload="", rules=())
    change = trusted_change(nat(ZERO_FIRST_CHAINS * 2), empty)
    assert change.written and "-Z" not in change.payload.splitlines()


def test_the_fake_kernel_takes_it_and_holds_what_it_would_without():
    payload = table_payload(nat(ZERO_FIRST_CHAINS), None)
    lead = "".join(f"{line}\n" for line in ZERO_FIRST)
    assert lead in payload
    got, want = {}, {}
    fake_iptables.restore(got, TableText("nlzf-n1", "nat", payload, noflush=True))
    fake_iptables.restore(want, TableText("nlzf-n1", "nat", payload.replace(lead, ""), noflush=True))
    assert fake_iptables.save_table("nat", got[""]["nat"]) == fake_iptables.save_table("nat", want[""]["nat"])
    assert len(got[""]["nat"].chains) > ZERO_FIRST_CHAINS
