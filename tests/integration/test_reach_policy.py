"""``lab.reach`` under NetworkPolicies, through the library on a real lab (root, one small lab).

``reach`` expected a reply whatever the policies said: a flow a policy denies came back ``expected:
"reachable"``, ``as_expected: False``, blaming "a rule on the way or in its own firewall", not the policy. It now
expects what ``probe`` expects for the same flow (the same function) and names the policy; real packets agree.
"""

from __future__ import annotations

import pytest

from helpers import REACH_DENIED, REACH_POLICY_TOPOLOGY


pytestmark = [pytest.mark.root, pytest.mark.netlab(REACH_POLICY_TOPOLOGY, scope="module")]


def test_reach_of_a_flow_a_policy_denies_is_as_expected_and_names_the_policy(netlab_lab):
    denied = netlab_lab.reach("dev1", "api", proto="tcp", port=8080)
    assert not denied.reachable and denied.outcome == "refused"  # the policy's REJECT, a TCP reset
    assert (denied.expected, denied.as_expected, denied.reason) == ("unreachable", True, REACH_DENIED), denied.problems
    assert denied.problems == ()
    allowed = netlab_lab.reach("fe", "api", proto="tcp", port=8080)
    assert allowed.reachable and allowed.answered_by == "api" and allowed.as_expected
    assert allowed.reason.startswith("policy: allowed by policy prod/api-from-fe, ingress rule 1")
    # Through the Service: judged at its endpoint, after the DNAT, as probe judges it.
    svc = netlab_lab.reach("dev1", "svc/prod/api", proto="tcp", port=80)  # another namespace's
    assert not svc.reachable and svc.as_expected and svc.reason == "service; " + REACH_DENIED, svc.problems
    # probe's expectation for the same flows is reach's, word for word.
    report = netlab_lab.probe(protos=("tcp",))
    assert report.ok, report.failures
    by_key = {(p.source, p.destination, p.port, p.service.name if p.service else None): p for p in report.probes}
    for r, key in ((denied, ("dev1", "api", 8080, None)), (allowed, ("fe", "api", 8080, None))):
        assert (by_key[key].expected, by_key[key].reason) == (r.expected, r.reason), key
    [via] = [p for k, p in by_key.items() if k[0] == "dev1" and k[3] is not None and k[3].endswith("api")]
    assert (via.expected, via.reason) == (svc.expected, svc.reason)
