"""trace when a node holds netlab's NetworkPolicy rules, none missing and none added, in another order (root, one
real lab for the module, repaired with `netlab up` after each case; QA q36 1). The rules are put in another order
with one `iptables-restore --noflush` (the chain flushed and written again), as a hand's `iptables -D` and `-A`
leave them; status says "rules of filter chain ... in another order" and `up` repairs it.

trace said, for a-web's chain with its REJECT before the jump to allow-web-from-b's chain (b-cli refused), "yet
the node's policy rules on the way are netlab's: look at its filter table", with no fix in its text; and for
FORWARD's jump to NETPOL-FORWARD moved below kube-proxy's and Flannel's rules (a-cli, denied, connects), "holds
rules netlab did not write on the way", listing netlab's own kube-proxy rules.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import netlab, reject_counts
from test_trace_policy_drift_live import _connect, _ip, _lab_up, _rules, _trace, _web_chain
from test_trace_policy_drift_live import repaired  # noqa: F401 - the fixture: the lab as planned before and after

pytestmark = pytest.mark.root

JUMP = '-A FORWARD -m comment --comment "netlab network policies" -j NETPOL-FORWARD'


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from _lab_up(tmp_path_factory, "po")


def _rewrite(netns: str, chain: str, lines: list[str]) -> None:
    """Chain ``chain`` of the filter table flushed and holding ``lines``, in one iptables-restore --noflush."""
    payload = f"*filter\n-F {chain}\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"
    subprocess.run(["ip", "netns", "exec", netns, "iptables-restore", "--noflush"], input=payload, text=True,
                   capture_output=True, check=True, timeout=20)
    assert [line for line in _rules(netns) if line.startswith(f"-A {chain} ")] == lines


def _moved_last(netns: str, chain: str, rule: str) -> None:
    have = [line for line in _rules(netns) if line.startswith(f"-A {chain} ")]
    assert rule in have and have[-1] != rule, have
    _rewrite(netns, chain, [line for line in have if line != rule] + [rule])


def _status_order(lab: str, chain: str) -> str:
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status.stdout
    [line] = [line for line in status.stdout.splitlines() if f"rules of filter chain {chain} in another order" in line]
    return line


def _denied_flow_through_in_another_order(lab: str, n1: str, said: str) -> tuple[str, str]:
    """a-cli's flow, denied, connects (Flannel's ACCEPT lets it through: no REJECT counts it); trace's JSON and text
    name FORWARD's rules in another order (status's line ``said``) with up as the fix. Returns the JSON's policy
    text and trace's text."""
    before = reject_counts(n1)
    assert _connect(f"{lab}-a-cli", _ip(lab, "a-web")) == "ok"  # Flannel's ACCEPT lets the denied flow through
    proc = _trace(lab, "a-cli", "-o", "json")
    d = json.loads(proc.stdout)
    assert reject_counts(n1) == before
    assert proc.returncode == 1 and d["delivered"], proc.stdout
    [e] = d["policy"]
    assert (e["allowed"], e["stopped"], e["missing"], e["extra"], e["fix"]) == (False, False, [], [], d["repair"]), e
    [order] = e["order"]
    assert order.startswith("rules of filter chain FORWARD in another order: rule 1 is -A FORWARD ") and \
        order.endswith(f"want {JUMP}") and order in said, (order, said)
    assert e["text"].endswith(f"but NOT STOPPED: node n1's filter table holds netlab's rules on the way, but "
                              f"{order}, so no REJECT there counted it (`netlab status` lists it)"), e["text"]
    text = _trace(lab, "a-cli").stdout
    assert f"policy: {e['text']}\n  fix: {d['repair']}\n" in text, text
    return e["text"], text


def test_a_policy_jump_below_the_reject_is_named_in_another_order_with_up_as_the_fix(repaired):  # noqa: F811
    lab, n1 = repaired, f"{repaired}-n1"
    chain = _web_chain(lab)
    [jump] = [line for line in _rules(n1) if line.startswith(f"-A {chain} ") and "policy a/allow-web-from-b" in line]
    _moved_last(n1, chain, jump)
    said = _status_order(lab, chain)
    before = reject_counts(n1)
    assert _connect(f"{lab}-b-cli", _ip(lab, "a-web")) == "refused"  # the REJECT comes first now
    assert reject_counts(n1)[chain] == before[chain] + 1
    proc = _trace(lab, "b-cli", "-o", "json")
    d = json.loads(proc.stdout)
    assert proc.returncode == 1 and not d["delivered"], proc.stdout
    [e] = d["policy"]
    assert (e["allowed"], e["counted"], e["chain"], e["missing"], e["extra"]) == (True, True, chain, [], []), e
    [order] = e["order"]
    assert order.startswith(f"rules of filter chain {chain} in another order: rule 2 is -A {chain} ") and \
        order.endswith(f"want {jump}") and order in said, (order, said)
    assert e["text"].endswith(f"counted it; node n1's filter table holds netlab's rules on the way, but {order} "
                              "(`netlab status` lists it)"), e["text"]
    assert e["fix"] == d["repair"] and d["lost"]["fix"] == d["repair"], d["lost"]
    text = _trace(lab, "b-cli").stdout
    assert f"{order} (`netlab status` lists it); the REJECT answered it at once with a TCP reset in pod a/a-web's " \
        f"name: the client is refused, it does not time out\n  fix: {d['repair']}\n" in text, text
    assert "rules on the way are netlab's:" not in text, text
    netlab("up", "--lab", lab)
    assert _connect(f"{lab}-b-cli", _ip(lab, "a-web")) == "ok"


def test_the_hooks_jump_below_kube_proxys_rules_is_named_in_another_order_not_as_others_rules(repaired):  # noqa: F811
    lab, n1 = repaired, f"{repaired}-n1"
    _moved_last(n1, "FORWARD", JUMP)
    policy, _ = _denied_flow_through_in_another_order(lab, n1, _status_order(lab, "FORWARD"))
    assert "did not write" not in policy
    netlab("up", "--lab", lab)
    assert _connect(f"{lab}-a-cli", _ip(lab, "a-web")) == "refused"


FOREIGN = "-A FORWARD -s 192.0.2.1/32 -j ACCEPT"


def test_the_hooks_jump_below_kube_proxys_rules_is_named_beside_a_rule_off_the_way(repaired):  # noqa: F811
    """QA q37 1: the same, and one rule of someone's after the moved jump, which a-cli's packet never meets: trace
    said "though the policy rules on the way are netlab's: look at the node's filter table", no fix, no order."""
    lab, n1 = repaired, f"{repaired}-n1"
    _moved_last(n1, "FORWARD", JUMP)
    have = [line for line in _rules(n1) if line.startswith("-A FORWARD ")]
    _rewrite(n1, "FORWARD", have + [FOREIGN])
    said = _status_order(lab, "FORWARD")
    assert f"extra rule: {FOREIGN}" in netlab("status", "--lab", lab, check=False).stdout
    _, text = _denied_flow_through_in_another_order(lab, n1, said)
    assert "look at the node's filter table" not in text, text
    netlab("up", "--lab", lab)
    assert FOREIGN not in _rules(n1)
    assert _connect(f"{lab}-a-cli", _ip(lab, "a-web")) == "refused"
