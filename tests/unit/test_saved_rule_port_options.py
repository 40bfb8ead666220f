"""iptables-save prints a tcp/udp/sctp or multiport match's options in its own order and words, not as written:
``-p tcp --dport 80 --sport 1000`` comes back as ``-p tcp -m tcp --sport 1000 --dport 80``, ``--destination-port``
as ``--dport``, multiport's ``--destination-ports`` as ``--dports``, ``--syn`` as ``--tcp-flags FIN,SYN,RST,ACK
SYN``. saved_rule kept them as written, so a rule written another way than iptables-save prints it (a plan's, or
one a lab's comparison reads) was a rule missing and another one extra. The cases are iptables-save's own output
(tests/iptables_saved_cases.py, read back from a real namespace by tests/integration/test_iptables_saved_live.py)."""

from __future__ import annotations

import pytest

from iptables_saved_cases import PORT_OPTIONS
from netlab.plan.iptables_save import saved_rule


@pytest.mark.parametrize("written, printed", PORT_OPTIONS)
def test_port_options_are_in_their_matchs_order_and_words(written, printed):
    assert saved_rule(written) == printed
    assert saved_rule(printed) == printed  # iptables-save's own line, read again, is the same rule


def test_what_the_backends_print_differently_is_kept_as_written():
    # an inverted whole range or flag test of nothing: iptables-nft drops the match, legacy prints it empty
    assert saved_rule("-A C -p tcp -m tcp ! --sport 0:65535 -j ACCEPT") == \
        "-A C -p tcp -m tcp ! --sport 0:65535 -j ACCEPT"
    assert saved_rule("-A C -p tcp -m tcp ! --tcp-flags NONE NONE -j ACCEPT") == \
        "-A C -p tcp -m tcp ! --tcp-flags NONE NONE -j ACCEPT"
    # a service name: iptables looks it up in /etc/services, which the plan does not read
    assert saved_rule("-A C -p tcp -m tcp --dport http -j ACCEPT") == "-A C -p tcp -m tcp --dport http -j ACCEPT"
