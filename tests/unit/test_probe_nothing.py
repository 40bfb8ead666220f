"""A probe run that would check nothing is a usage error, not "0/0 probes as expected" and exit 0 (no root)."""

from __future__ import annotations

import pytest

from netlab.errors import EXIT_INVALID_INPUT, UsageError
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import runner
from netlab.probe.matrix import build_matrix, nothing_to_probe

# Two pods whose only container is a command of the user's serving 8080/TCP: no echo server, so no UDP port
# the prober may judge (a silent server of its own proves nothing), and nothing listens on UDP at all.
OWN = {"name": "own", "nodes": [{"name": "n1"}, {"name": "n2"}],
       "pods": [{"name": f"p{i}", "node": f"n{i}",
                 "containers": [{"name": "srv", "command": ["sleep", "infinity"],
                                 "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]} for i in (1, 2)]}


def lab(data=OWN):
    return resolve(Topology.model_validate(data))


def test_the_reason_names_the_protocols_and_why_none_of_them_is_probed():
    own = lab()
    assert not build_matrix(own, ["udp"]) and build_matrix(own, ["tcp"])
    assert nothing_to_probe(own, ["udp"]) == (
        "nothing to probe in lab own with --proto udp: no pod serves a UDP port netlab's echo server listens on "
        "(UDP is probed only there and at the cluster DNS: another server's silence proves nothing)")
    no_pods = lab({"name": "empty", "nodes": [{"name": "n1"}], "pods": []})
    assert nothing_to_probe(no_pods, ["icmp", "tcp"]) == "nothing to probe in lab empty with --proto icmp,tcp: " \
                                                         "lab empty has no pods"


def test_run_refuses_before_it_sends_anything(monkeypatch):
    """`probe --proto udp` on such a lab said "0 probes ... 0/0 probes as expected", exit 0."""
    monkeypatch.setattr(runner, "is_netns_mount", lambda path: True)

    def never(*args, **kwargs):
        raise AssertionError("nothing is to be sent")
    monkeypatch.setattr(runner, "_send", never)
    with pytest.raises(UsageError) as err:
        runner.run(lab(), protos=("udp",), services=False)
    assert err.value.exit_code == EXIT_INVALID_INPUT == 2
    assert str(err.value).startswith("nothing to probe in lab own with --proto udp: no pod serves a UDP port ")


def test_in_python_the_reason_names_the_protos_argument():
    """QA pt63 7: lab.probe(protos=["udp"]) of such a lab said `--proto udp`, the CLI's option."""
    from netlab.errors import python_words

    with python_words():
        assert nothing_to_probe(lab(), ["udp"]).startswith("nothing to probe in lab own with protos=['udp']: no pod ")
        no_pods = lab({"name": "empty", "nodes": [{"name": "n1"}], "pods": []})
        assert nothing_to_probe(no_pods, ["icmp", "tcp"]) == ("nothing to probe in lab empty with protos=['icmp', "
                                                              "'tcp']: lab empty has no pods")
