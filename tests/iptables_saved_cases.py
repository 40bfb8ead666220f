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

# tcp/udp/sctp and multiport options written another way than iptables-save prints them (iptables v1.8.9, nft and
# legacy backends alike): each match's options in its save function's order (--sport, --dport, then tcp's
# --tcp-option and --tcp-flags, sctp's --chunk-types), by their short names (--source-port, --destination-port;
# multiport's --source-ports, --destination-ports and the abbreviations getopt takes for them), --syn as the flags
# it stands for, flags in the kernel's bit order (FIN,SYN,RST,PSH,ACK,URG; ALL spelled out), ports as numbers
# (07 -> 7, 010 -> 8), a range of one port as that port, an open range closed (:99 -> 0:99), the whole range
# (0:65535) and a flag test of no flags (NONE NONE) left out. Not here, as the backends print them differently:
# an inverted whole range or flag test of no flags (iptables-nft drops the match, legacy prints it), two matches
# of the same protocol (iptables-nft merges them).
PORT_OPTIONS = [
    ("-A C -p tcp --dport 80 --sport 1000 -j ACCEPT",
     "-A C -p tcp -m tcp --sport 1000 --dport 80 -j ACCEPT"),
    ("-A C -p tcp -m tcp --destination-port 80 --source-port 1000:2000 -j ACCEPT",
     "-A C -p tcp -m tcp --sport 1000:2000 --dport 80 -j ACCEPT"),
    ("-A C -p udp --destination-port 53 -j ACCEPT",
     "-A C -p udp -m udp --dport 53 -j ACCEPT"),
    ("-A C -p udp -m udp ! --destination-port 53 ! --source-port 5 -j ACCEPT",
     "-A C -p udp -m udp ! --sport 5 ! --dport 53 -j ACCEPT"),
    ("-A C -p tcp -m tcp --dport 22 ! --sport 1 -j ACCEPT",
     "-A C -p tcp -m tcp ! --sport 1 --dport 22 -j ACCEPT"),
    ("-A C -p sctp --destination-port 9 --source-port 8:9 --chunk-types any INIT -j ACCEPT",
     "-A C -p sctp -m sctp --sport 8:9 --dport 9 --chunk-types any INIT -j ACCEPT"),
    ("-A C -p sctp --dport 9 --sport 8 -j ACCEPT",
     "-A C -p sctp -m sctp --sport 8 --dport 9 -j ACCEPT"),
    ("-A C -p sctp --dport 0:65535 -j ACCEPT",  # sctp's save prints the whole range (tcp's and udp's leave it out)
     "-A C -p sctp -m sctp --dport 0:65535 -j ACCEPT"),
    # port values
    ("-A C -p tcp -m tcp --dport 80:80 -j ACCEPT",
     "-A C -p tcp -m tcp --dport 80 -j ACCEPT"),
    ("-A C -p tcp --dport 80: --sport :80 -j ACCEPT",
     "-A C -p tcp -m tcp --sport 0:80 --dport 80:65535 -j ACCEPT"),
    ("-A C -p udp -m udp --dport :99 -j ACCEPT",
     "-A C -p udp -m udp --dport 0:99 -j ACCEPT"),
    ("-A C -p udp -m udp --dport 1:65535 --sport 0:65535 -j ACCEPT",
     "-A C -p udp -m udp --dport 1:65535 -j ACCEPT"),
    ("-A C -p tcp --sport 0:65535 --dport 5 -j ACCEPT",
     "-A C -p tcp -m tcp --dport 5 -j ACCEPT"),
    ("-A C -p tcp ! --dport 5:5 -j ACCEPT",
     "-A C -p tcp -m tcp ! --dport 5 -j ACCEPT"),
    ("-A C -p tcp --sport 07 -j ACCEPT",
     "-A C -p tcp -m tcp --sport 7 -j ACCEPT"),
    ("-A C -p tcp --sport 010 --dport 0x10 -j ACCEPT",  # strtoul, base 0: octal, hexadecimal
     "-A C -p tcp -m tcp --sport 8 --dport 16 -j ACCEPT"),
    ("-A C -p udp --sport 0 -j ACCEPT",
     "-A C -p udp -m udp --sport 0 -j ACCEPT"),
    ("-A C -p tcp --dport 0:0 -j ACCEPT",
     "-A C -p tcp -m tcp --dport 0 -j ACCEPT"),
    # tcp flags and options
    ("-A C -p tcp --syn --dport 22 --sport 5 -j ACCEPT",
     "-A C -p tcp -m tcp --sport 5 --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT"),
    ("-A C -p tcp --dport 22 --syn -j ACCEPT",
     "-A C -p tcp -m tcp --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT"),
    ("-A C -p tcp ! --syn -j ACCEPT",
     "-A C -p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT"),
    ("-A C -p tcp --syn --sport 0:65535 -j ACCEPT",
     "-A C -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT"),
    ("-A C -p tcp --tcp-flags SYN,ACK SYN --dport 22 -j ACCEPT",
     "-A C -p tcp -m tcp --dport 22 --tcp-flags SYN,ACK SYN -j ACCEPT"),
    ("-A C -p tcp -m tcp --dport 22 --tcp-flags SYN,RST,ACK,FIN SYN --sport 1 -j ACCEPT",
     "-A C -p tcp -m tcp --sport 1 --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT"),
    ("-A C -p tcp --tcp-option 2 --dport 22 --sport 1 -j ACCEPT",
     "-A C -p tcp -m tcp --sport 1 --dport 22 --tcp-option 2 -j ACCEPT"),
    ("-A C -p tcp --tcp-flags ALL NONE -j ACCEPT",
     "-A C -p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j ACCEPT"),
    ("-A C -p tcp --tcp-flags ACK,SYN,FIN ALL --tcp-option 3 --dport 1 -j ACCEPT",
     "-A C -p tcp -m tcp --dport 1 --tcp-option 3 --tcp-flags FIN,SYN,ACK FIN,SYN,RST,PSH,ACK,URG -j ACCEPT"),
    ("-A C -p tcp ! --tcp-flags SYN,ACK SYN ! --tcp-option 4 -j ACCEPT",
     "-A C -p tcp -m tcp ! --tcp-option 4 ! --tcp-flags SYN,ACK SYN -j ACCEPT"),
    ("-A C -p tcp --tcp-flags URG,PSH,RST URG -j ACCEPT",
     "-A C -p tcp -m tcp --tcp-flags RST,PSH,URG URG -j ACCEPT"),
    ("-A C -p tcp --tcp-flags syn,ack ack -j ACCEPT",
     "-A C -p tcp -m tcp --tcp-flags SYN,ACK ACK -j ACCEPT"),
    ("-A C -p tcp --tcp-flags SYN,SYN SYN -j ACCEPT",
     "-A C -p tcp -m tcp --tcp-flags SYN SYN -j ACCEPT"),
    ("-A C -p tcp --dport 22 ! --tcp-option 1 --tcp-flags SYN SYN -j ACCEPT",
     "-A C -p tcp -m tcp --dport 22 ! --tcp-option 1 --tcp-flags SYN SYN -j ACCEPT"),
    ("-A C -p tcp --dport 0:65535 --tcp-flags NONE NONE -j ACCEPT",
     "-A C -p tcp -m tcp -j ACCEPT"),
    # multiport
    ("-A C -p tcp -m multiport --destination-ports 1,2 -j ACCEPT",
     "-A C -p tcp -m multiport --dports 1,2 -j ACCEPT"),
    ("-A C -p tcp -m multiport --source-ports 1,2 -j ACCEPT",
     "-A C -p tcp -m multiport --sports 1,2 -j ACCEPT"),
    ("-A C -p tcp -m multiport ! --destination-ports 1:3,7 -j ACCEPT",
     "-A C -p tcp -m multiport ! --dports 1:3,7 -j ACCEPT"),
    ("-A C -p tcp -m multiport --ports 1,2 -j ACCEPT",
     "-A C -p tcp -m multiport --ports 1,2 -j ACCEPT"),
    ("-A C -p tcp -m multiport --destination-port 5 -j ACCEPT",
     "-A C -p tcp -m multiport --dports 5 -j ACCEPT"),
    ("-A C -p tcp -m multiport --dport 5 -j ACCEPT",
     "-A C -p tcp -m multiport --dports 5 -j ACCEPT"),
    ("-A C -p tcp -m multiport --sport 1:2 -j ACCEPT",
     "-A C -p tcp -m multiport --sports 1:2 -j ACCEPT"),
    ("-A C -p tcp -m multiport --port 1 -j ACCEPT",
     "-A C -p tcp -m multiport --ports 1 -j ACCEPT"),
    ("-A C -p tcp -m multiport --dports 007,0010:0012 -j ACCEPT",
     "-A C -p tcp -m multiport --dports 7,8:10 -j ACCEPT"),
    ("-A C -p tcp --source-port 5 -m multiport --destination-ports 1,2 -j ACCEPT",
     "-A C -p tcp -m tcp --sport 5 -m multiport --dports 1,2 -j ACCEPT"),
    ("-A C -p tcp -m multiport --dports 1,2 -m tcp --source-port 5 -j ACCEPT",
     "-A C -p tcp -m multiport --dports 1,2 -m tcp --sport 5 -j ACCEPT"),
    ("-A C -p udp -m multiport --source-port 1,2 -m udp --destination-port 3 -j ACCEPT",
     "-A C -p udp -m multiport --sports 1,2 -m udp --dport 3 -j ACCEPT"),
    ("-A C -p tcp -m multiport --dports 5,6 -m tcp --dport 5 -j ACCEPT",
     "-A C -p tcp -m multiport --dports 5,6 -m tcp --dport 5 -j ACCEPT"),
]
