"""The lines tests/iptables_saved_cases.py says iptables-save prints are what it prints (root): each rule is
restored (iptables-restore --noflush) in a throwaway namespace, both backends, and read back; saved_rule gives the
same line (tests/unit/test_saved_rule_implicit_match.py and test_saved_rule_port_options.py hold it to them without
root)."""

from __future__ import annotations

import pytest

from iptables_saved_cases import IMPLICIT_MATCH_AFTER_ANOTHER, PORT_OPTIONS
from netlab.plan.iptables_save import saved_rule
from test_netfilter import BACKENDS, netns, restore, save  # noqa: F401 - netns: the throwaway namespace's fixture

pytestmark = pytest.mark.root


def printed_back(namespace: str, backend: str, cases: list[tuple[str, str]]) -> None:
    """Each written rule, in a chain of its own, comes back from iptables-save as the printed line, and saved_rule
    turns the written rule into that line."""
    chains = [f"C{i}" for i in range(len(cases))]
    rules = [written.replace("-A C ", f"-A {c} ", 1) for c, (written, _) in zip(chains, cases)]
    restore(namespace, "*filter\n" + "".join(f":{c} - [0:0]\n" for c in chains) + "\n".join(rules) + "\nCOMMIT\n", backend)
    lines = save(namespace, "filter", backend).splitlines()
    wants = [printed.replace("-A C ", f"-A {c} ", 1) for c, (_, printed) in zip(chains, cases)]
    assert [[line for line in lines if line.startswith(f"-A {c} ")] for c in chains] == [[w] for w in wants]
    assert [saved_rule(rule) for rule in rules] == wants


@pytest.mark.parametrize("backend", BACKENDS)
def test_iptables_save_prints_the_protocols_match_where_its_first_option_stands(netns, backend):  # noqa: F811
    printed_back(netns, backend, IMPLICIT_MATCH_AFTER_ANOTHER)


@pytest.mark.parametrize("backend", BACKENDS)
def test_iptables_save_prints_port_options_in_their_matchs_order_and_short_names(netns, backend):  # noqa: F811
    printed_back(netns, backend, PORT_OPTIONS)
