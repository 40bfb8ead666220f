"""Which pod a Service's distribution is counted from under NetworkPolicies (probe/services.py).

It was the first pod that is not an endpoint, whatever the policies said of it: a client whose egress they deny
left the distribution unchecked although another pod could count it, and the Service's NodePort probes lost their
echo (no client address checked) for the rest of the plan.
"""

from __future__ import annotations

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import services as svcs
from netlab.probe import service_targets

DNS_ONLY = {"name": "client-dns-only", "spec": {
    "podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
    "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}}


def plan_with(pods: list, policies: list) -> service_targets.ServicePlan:
    return svcs.build(resolve(Topology.model_validate({
        "name": "dc", "nodes": [{"name": "n1"}, {"name": "n2"}],
        "pods": [{"name": "web-1", "node": "n1", "labels": {"app": "web"}},
                 {"name": "web-2", "node": "n2", "labels": {"app": "web"}}, *pods],
        "services": [{"name": "web", "type": "NodePort", "selector": {"app": "web"},
                      "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}],
        "networkPolicies": policies})), ("tcp",))


def test_the_first_pod_the_policies_let_reach_every_endpoint_counts_it():
    plan = plan_with([{"name": "client", "node": "n2", "labels": {"app": "client"}}, {"name": "other", "node": "n1"}],
                     [DNS_ONLY])
    (dist,) = [d for d in plan.distributions if d.probe.svc.service.endswith("web")]
    assert dist.probe.source.name == "other"  # client, the first, may only ask the DNS
    assert not [n for n in plan.notes if "distribution not checked" in n], plan.notes


def test_with_no_such_pod_it_is_not_counted_and_the_nodeports_keep_their_echo():
    plan = plan_with([{"name": "client", "node": "n2", "labels": {"app": "client"}}],
                     [{**DNS_ONLY, "spec": {**DNS_ONLY["spec"], "podSelector": {}}},  # default's pods: DNS only
                      {"name": "deny-out", "namespace": "kube-system",  # kube-dns: nothing out
                       "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}])
    assert not [d for d in plan.distributions if d.probe.svc.service.endswith("web")]
    assert ("svc/web: distribution not checked: the policies let no pod that is not one of its endpoints "
            "(client, kube-dns) reach every endpoint") in plan.notes
    nodeports = [p for p in plan.probes if p.svc is not None and p.svc.kind == "NodePort" and p.svc.service_port == 80]
    assert nodeports and all(p.echo for p in nodeports)  # the endpoints' echo servers still say the client address
