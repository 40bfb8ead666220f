"""Which of portmap's rules for a hostPort is gone, named precisely, with the rule that puts it back.

With the DNAT deleted inside the pod's CNI-DN-<hash> chain, trace and status said "no rule of the node's nat
CNI-HOSTPORT-DNAT leads to it" though the dispatch's jump was still there (QA). Now: the DNAT missing from the
pod's chain, the dispatch's jump missing to the pod's chain that still DNATs, or a hook's jump; and ``rule``, the
``-A`` that a fix puts back (None when nothing of the pod's is left to say which chain is its). No root.
"""

from __future__ import annotations

from netlab.cni.portmap import missing_dnat, missing_rule, missing_rules
from test_cni_verify_node import PORTMAP, WEB

GONE = "portmap's DNAT of its hostPort 18080/tcp to 10.244.0.5:8080 is gone"
DNAT = "-A CNI-DN-0123 -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10.244.0.5:8080"


def test_the_dnat_deleted_from_the_pods_chain_is_named_with_the_chain_the_dispatch_still_jumps_to():
    lines = [line for line in PORTMAP if line != DNAT]
    assert len(lines) == len(PORTMAP) - 1
    said = (f"{GONE}: the pod's chain CNI-DN-0123, where CNI-HOSTPORT-DNAT sends 18080/tcp, has no `{DNAT}`")
    assert missing_dnat(lines, WEB, "10.244.0.5") == said
    assert missing_rule(lines, WEB, "10.244.0.5") == (said, DNAT)


def test_the_dispatchs_jump_deleted_is_named_with_the_pods_chain_that_still_dnats():
    lines = [line for line in PORTMAP if not line.startswith("-A CNI-HOSTPORT-DNAT")]
    said = (f"{GONE}: no rule of the node's nat CNI-HOSTPORT-DNAT jumps to the pod's chain CNI-DN-0123 for "
            "18080/tcp (its DNAT there is intact)")
    assert missing_dnat(lines, WEB, "10.244.0.5") == said
    assert missing_rule(lines, WEB, "10.244.0.5") == (
        said, "-A CNI-HOSTPORT-DNAT -p tcp -m multiport --dports 18080 -j CNI-DN-0123")


def test_a_hooks_jump_is_put_back_as_portmap_writes_it():
    lines = [line for line in PORTMAP if not line.startswith("-A PREROUTING")]
    assert missing_rule(lines, WEB, "10.244.0.5") == (
        f"{GONE}: the node's nat PREROUTING has no jump to CNI-HOSTPORT-DNAT",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT")


def test_both_gone_names_the_pods_chain_when_known_and_no_one_rule():
    lines = [line for line in PORTMAP if not line.startswith(("-A CNI-HOSTPORT-DNAT", DNAT))]
    assert missing_rule(lines, WEB, "10.244.0.5") == (f"{GONE}: no rule of the node's nat CNI-HOSTPORT-DNAT leads "
                                                      "to it", None)
    assert missing_rules(lines, [WEB], "10.244.0.5", "CNI-DN-0123") == (
        f"{GONE}: no rule of the node's nat CNI-HOSTPORT-DNAT leads to it, and the pod's chain CNI-DN-0123 has no "
        "DNAT to it either", None)
    assert missing_rules(PORTMAP, [WEB], "10.244.0.5", "CNI-DN-0123") is None


def test_a_builtin_pods_dispatch_jump_is_put_back_with_its_comment_as_status_compares_it():
    """A builtin lab's dispatch rule carries portmap's comment (plan/portmap_rules.py): the jump put back without it
    made the port answer, but status said the rule differs (missing with the comment, extra without)."""
    import shlex

    lines = [line for line in PORTMAP if not line.startswith("-A CNI-HOSTPORT-DNAT")]
    said = 'dnat name: "cbr0" id: "c1"'
    rule = missing_rules(lines, [WEB], "10.244.0.5", "CNI-DN-0123", said).rule
    assert rule == ("-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment 'dnat name: \"cbr0\" id: \"c1\"' -m multiport "
                    "--dports 18080 -j CNI-DN-0123")
    assert shlex.split(rule)[7] == said  # one word to the shell, as iptables-save quotes it
