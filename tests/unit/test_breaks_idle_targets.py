"""A break's target that no flow of the lab would meet (QA q8 2 and 3), without root.

ip-forward-off and forward-policy-drop on a node with no pods exited 0 and promised failing flows, yet every probe
passed: such a node forwards nothing the lab's probes send. A node scenario is now refused (exit 2, one line) on a
node where the verdict it predicts for every probe row that may touch the node is "pass", as kube-services-jump-missing
was on a node with no client; the default target skips such nodes. A NodePort it forwards is a flow it meets.
"""

from __future__ import annotations

import copy

import pytest

from netlab.api.topology import load
from netlab.breaks import catalogue, run as break_run
from netlab.errors import UsageError

WEB = {"name": "w", "node": "n2", "labels": {"app": "web"},
       "containers": [{"name": "http", "ports": [{"containerPort": 8080}]}]}
THREE = {"name": "d3", "nodes": [{"name": "n1"}, {"name": "n2"}, {"name": "n3"}],
         "pods": [{"name": "a", "node": "n1"}, WEB],
         "services": [{"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}]}


def _lab(service_type: str = "ClusterIP", mode: str = "iptables"):
    topo = copy.deepcopy(THREE)
    topo["services"][0]["type"] = service_type
    topo["cluster"] = {"kubeProxyMode": mode}
    return load(topo).lab


@pytest.mark.parametrize("name", ["ip-forward-off", "forward-policy-drop"])
def test_a_node_without_pods_is_refused_in_one_line(name):
    lab = _lab()
    s = catalogue.scenario(name)
    with pytest.raises(UsageError) as err:
        break_run.check(name, lab, "n3")
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"{name} breaks what a node sends, forwards or receives"), line
    assert line.endswith("node n3 is not one (nodes that are: n1, n2)"), line
    assert catalogue.why_not(s, lab) is None and catalogue.default_target(s, lab) == "n1"
    assert break_run.check(name, lab, "n2")[1].name == "n2"


def test_every_node_scenario_on_a_podless_node_is_judged_by_the_flows_it_meets():
    """The overlay's faults on the podless node still cut its own flows to its peer's pods (the node is a probe's
    source), so they stay; a NodePort it forwards makes ip-forward-off meet a flow, and forward-policy-drop too in
    nftables mode (kube-proxy's accept there cannot overrule the filter table's DROP), not in iptables mode."""
    fits = {}
    for kind, mode in [("ClusterIP", "iptables"), ("NodePort", "iptables"), ("NodePort", "nftables")]:
        lab = _lab(kind, mode)
        fits[kind, mode] = {s.name for s in catalogue.SCENARIOS if s.target == "node" and not catalogue.why_not(s, lab)
                            and catalogue.target_problem(s, lab, lab.node("n3")) is None}
    overlay = {"vxlan-arp-missing", "vxlan-fdb-wrong-vtep", "pod-mtu-too-big", "rp-filter-strict",
               "pod-cidr-route-missing", "vxlan-wrong-vni"}
    assert fits["ClusterIP", "iptables"] == overlay
    assert fits["NodePort", "iptables"] == overlay | {"ip-forward-off"}
    assert fits["NodePort", "nftables"] == overlay | {"ip-forward-off", "forward-policy-drop"}


JOB = {"name": "job", "node": "n1", "restartPolicy": "Never", "containers": [{"name": "main", "command": ["true"]}]}


def test_conntrack_stale_entry_never_picks_a_terminal_pod_as_its_client():
    """QA q8 3: a Completed pod (restartPolicy Never, `true`) listed first was conntrack-stale-entry's DNS client,
    in break and in the quiz: it never queries again, so the fault showed nowhere. The default client skips the
    lab's terminal pods (lab.terminal, as served() marks them), `--target` of one is refused in one line, and a
    lab whose every client is terminal has no client (why_not, so the quiz skips the scenario)."""
    from netlab.breaks import quiz

    topo = copy.deepcopy(THREE)
    topo["pods"] = [JOB] + topo["pods"]
    lab = load(topo).lab
    s = catalogue.scenario("conntrack-stale-entry")
    assert catalogue.default_target(s, lab) == "job"  # while it runs, it is a client as any
    done = lab.with_terminal(frozenset({"job"}))
    assert catalogue.default_target(s, done) == "a" and catalogue.resolve_target(s, done, None).name == "a"
    with pytest.raises(UsageError) as err:
        break_run.check(s.name, done, "job")
    assert str(err.value) == ("conntrack-stale-entry: pod job is terminal (its containers exited for good): it sends "
                              "no DNS query a stale entry could catch (pods that do: a)")
    seeds = [seed for seed in range(200) if quiz.pick(done, seed) is s]  # the quiz breaks the default target
    assert seeds and s in quiz.candidates(done)
    alone = copy.deepcopy(topo)
    alone["pods"] = [JOB, WEB]
    only_job = load(alone).lab.with_terminal(frozenset({"job"}))
    why = catalogue.why_not(s, only_job)
    assert why is not None and "needs a client pod that is no Service's endpoint (one that runs" in why
    assert s.name not in {c.name for c in quiz.candidates(only_job)}
