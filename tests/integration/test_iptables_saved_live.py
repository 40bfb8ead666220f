"""The lines tests/iptables_saved_cases.py says iptables-save prints are what it prints (root): each rule is
restored (iptables-restore --noflush) in a throwaway namespace, both backends, and read back; saved_rule gives the
same line (tests/unit/test_saved_rule_implicit_match.py holds it to them without root)."""

from __future__ import annotations

import pytest

from iptables_saved_cases import IMPLICIT_MATCH_AFTER_ANOTHER
from netlab.plan.iptables_save import saved_rule
from test_netfilter import BACKENDS, netns, restore, save  # noqa: F401 - netns: the throwaway namespace's fixture

pytestmark = pytest.mark.root


@pytest.mark.parametrize("backend", BACKENDS)
def test_iptables_save_prints_the_protocols_match_where_its_first_option_stands(netns, backend):  # noqa: F811
    chains = [f"C{i}" for i in range(len(IMPLICIT_MATCH_AFTER_ANOTHER))]
    rules = [written.replace("-A C ", f"-A {c} ", 1) for c, (written, _) in zip(chains, IMPLICIT_MATCH_AFTER_ANOTHER)]
    restore(netns, "*filter\n" + "".join(f":{c} - [0:0]\n" for c in chains) + "\n".join(rules) + "\nCOMMIT\n", backend)
    lines = save(netns, "filter", backend).splitlines()
    for c, rule, (_, printed) in zip(chains, rules, IMPLICIT_MATCH_AFTER_ANOTHER):
        want = printed.replace("-A C ", f"-A {c} ", 1)
        assert [line for line in lines if line.startswith(f"-A {c} ")] == [want], lines
        assert saved_rule(rule) == want
