"""iptables adds the protocol's match (``-m tcp``, ``-m udp``, ``-m sctp``) for a port option of a rule written
without it, where that option stands: ``-p tcp -m comment --comment x --dport 80`` comes back from iptables-save as
``-p tcp -m comment --comment x -m tcp --dport 80``. saved_rule added it only when the port option came right after
``-p``, and gave a later one to the match before it (``-m comment --comment x --dport 80``), so the drift
comparison took such a rule, as iptables-save prints it, for another one. The cases are iptables-save's own output
(tests/iptables_saved_cases.py, read back from a real namespace by tests/integration/test_iptables_saved_live.py)."""

from __future__ import annotations

import pytest

from iptables_saved_cases import IMPLICIT_MATCH_AFTER_ANOTHER
from netlab.plan.iptables_save import saved_rule


@pytest.mark.parametrize("written, printed", IMPLICIT_MATCH_AFTER_ANOTHER)
def test_the_protocols_match_is_added_where_its_first_option_stands(written, printed):
    assert saved_rule(written) == printed
    assert saved_rule(printed) == printed  # iptables-save's own line, read again, is the same rule


def test_an_option_of_a_match_given_before_goes_to_it_and_an_unknown_one_to_the_latest_match():
    # multiport's --dports, then an option of the match after it: that match's, as before
    assert saved_rule("-A C -p tcp -m multiport --dports 1,2 -m comment --comment x -j ACCEPT") == \
        "-A C -p tcp -m multiport --dports 1,2 -m comment --comment x -j ACCEPT"
    assert saved_rule("-A C -m statistic --mode random --probability 0.5 -j X") == \
        "-A C -m statistic --mode random --probability 0.50000000000 -j X"
    with pytest.raises(ValueError, match="outside any match"):
        saved_rule("-A C --dport 80 -j X")  # no -p: no match takes it
