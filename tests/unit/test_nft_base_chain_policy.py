"""What kube-proxy's table holds beyond its chains, rules and elements: a base chain's policy, the table's flags.

kube-proxy makes its base chains with no policy (accept) and its table with no flags
(pkg/proxy/nftables/proxier_test.go, baseRules). A ``policy drop`` set by hand on a hooked chain, or a dormant
table, stops every packet of that hook, or every Service: status says so, and up puts it back in place (a
policy) or makes the table again (its flags). The kernel's JSON is nft_kernel_view.json, as in
test_nftables_plan.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.realize import nft_sync, nftables as realize

GOLDEN = Path(__file__).parent / "golden" / "kube_proxy"


@pytest.fixture(scope="module")
def planned():
    lab = resolve(load_topology(str(GOLDEN / "nft_kernel_view.yaml")))
    return next(r for r in build_plan(lab).of_kind("nft") if r.netns.endswith("-n1"))


def view(**policies: str) -> dict:
    data = json.loads((GOLDEN / "nft_kernel_view.json").read_text())
    for o in data["nftables"]:
        if o.get("chain", {}).get("name") in policies:
            o["chain"]["policy"] = policies[o["chain"]["name"]]
    return data


def test_a_base_chains_policy_drop_is_drift_in_iptables_modes_words(planned):
    assert realize.drift(planned, view(**{"filter-forward": "accept"})) == []
    assert realize.drift(planned, view(**{"filter-forward": "drop"})) == \
        ["policy of chain filter-forward is drop, want accept"]
    out = realize.drift(planned, view(**{"filter-output": "drop", "nat-prerouting": "drop"}))
    assert out == ["policy of chain filter-output is drop, want accept",
                   "policy of chain nat-prerouting is drop, want accept"]


def test_up_puts_the_policy_back_in_place_keeping_the_table(planned):
    """Not the whole table again: the affinity sets keep their clients. ``policy accept`` is said, as the plan
    lists none; the chain keeps its rules (it is not one that left the plan)."""
    have = realize.listing(view(**{"filter-forward": "drop"}))
    assert nft_sync.listing_delta("ip", "kube-proxy", have, planned.listing) == \
        "add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; policy accept ; }\n"
    counted = tuple(sorted(have + ("rule filter-forward 0002 counter",)))
    delta = nft_sync.listing_delta("ip", "kube-proxy", counted, planned.listing).splitlines()
    assert delta[0] == \
        "add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; policy accept ; }"
    assert delta[1] == "flush chain ip kube-proxy filter-forward" and len(delta) == 2 + 2  # its two jumps again
    # A rollback makes the drifted table again as it was, policy and all.
    assert "add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; policy drop ; }" in \
        nft_sync.replay_payload("ip", "kube-proxy", have).splitlines()
    # Another priority too: the whole table again, as for any other base chain definition.
    moved = tuple(line.replace("priority 0 policy drop", "priority 10 policy drop") for line in have)
    assert nft_sync.is_replay(nft_sync.listing_delta("ip", "kube-proxy", moved, planned.listing), "ip", "kube-proxy")


@pytest.mark.parametrize("flags, said", [("dormant", "dormant"), ("Lester Gooch #5", "dormant"),
                                         (["dormant", "persist"], "dormant,persist")])
def test_a_dormant_table_is_drift_and_up_makes_it_again(planned, flags, said):
    """nft 1.0.6 prints a lone table flag as freed memory (its release name, here): it can only be dormant."""
    data = view()
    next(o for o in data["nftables"] if "table" in o)["table"]["flags"] = flags
    assert realize.drift(planned, data) == [f"table ip kube-proxy has flags {said}, want none"]
    assert nft_sync.is_replay(nft_sync.listing_delta("ip", "kube-proxy", realize.listing(data), planned.listing),
                              "ip", "kube-proxy")
