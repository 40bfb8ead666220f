"""Rules written with ``-p tcp``/``-p udp``/``-p sctp`` and a port option after another match, and the line
``iptables-save`` prints for each (iptables v1.8.9, nft and legacy backends alike): iptables adds the protocol's
match itself where its first option stands, after the matches before it. tests/unit/test_saved_rule_implicit_match.py
holds plan/iptables_save.saved_rule to them (no root); tests/integration/test_iptables_saved_live.py restores them in
a throwaway namespace and reads them back (root), so they stay what iptables prints."""

from __future__ import annotations

# (written, printed): each in a chain C of the filter table
IMPLICIT_MATCH_AFTER_ANOTHER = [
    ('-A C -p tcp -m comment --comment "a b" --dport 80 -j ACCEPT',
     '-A C -p tcp -m comment --comment "a b" -m tcp --dport 80 -j ACCEPT'),
    ("-A C -p tcp -m mark --mark 0x4000/0x4000 --dport 443 -j ACCEPT",
     "-A C -p tcp -m mark --mark 0x4000/0x4000 -m tcp --dport 443 -j ACCEPT"),
    ("-A C -p tcp -m addrtype --dst-type LOCAL --dport 8080 -j ACCEPT",
     "-A C -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -j ACCEPT"),
    ("-A C -p udp -m mark --mark 1 --sport 7 ! --dport 9 -j ACCEPT",
     "-A C -p udp -m mark --mark 0x1 -m udp --sport 7 ! --dport 9 -j ACCEPT"),
    ("-A C -p sctp -m comment --comment s --dport 9 -j ACCEPT",
     "-A C -p sctp -m comment --comment s -m sctp --dport 9 -j ACCEPT"),
    ("-A C -p tcp -m comment --comment x ! --dport 80 -j ACCEPT",
     "-A C -p tcp -m comment --comment x -m tcp ! --dport 80 -j ACCEPT"),
    # -p after the match: the protocol is printed first, its match still where the port option stands
    ("-A C -m comment --comment x -p tcp --dport 80 -j ACCEPT",
     "-A C -p tcp -m comment --comment x -m tcp --dport 80 -j ACCEPT"),
    # the protocol's match given before: a later port option is its, wherever it stands
    ("-A C -p tcp -m tcp --sport 1 -m comment --comment x --dport 80 -j ACCEPT",
     "-A C -p tcp -m tcp --sport 1 --dport 80 -m comment --comment x -j ACCEPT"),
    # directly after -p, as before (portmap's form)
    ("-A C -p udp --dport 53 -m comment --comment x -j ACCEPT",
     "-A C -p udp -m udp --dport 53 -m comment --comment x -j ACCEPT"),
]
