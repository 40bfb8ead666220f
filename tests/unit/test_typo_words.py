"""A mistyped scenario or kind, and kubectl's namespace options, said in one line with what was meant (QA docs58 6):
`break vxlan-arp-mising` and `quiz answer pod-cidr-route-mising` said no "did you mean" where netlab's other
lines do (a mistyped command, a topology's field), `get pdos` suggested nothing, and `get pods -A` / `-n default`
were click's bare "No such option". No root: each is refused before the lab is read."""

from __future__ import annotations

import pytest
from cli_inprocess import run_cli


@pytest.mark.parametrize("words, meant", [(["break", "vxlan-arp-mising"], "vxlan-arp-missing"),
                                          (["quiz", "answer", "pod-cidr-route-mising"], "pod-cidr-route-missing")])
def test_a_mistyped_scenario_names_the_closest_one(words, meant):
    proc = run_cli(*words)
    assert (proc.returncode, proc.stdout) == (2, ""), proc
    assert proc.stderr == (f"netlab: no break scenario {words[-1]!r} (did you mean {meant!r}?); `netlab break --list` "
                           "lists them\n")


def test_a_scenario_like_none_is_said_as_before():
    proc = run_cli("break", "zzzz")
    assert proc.returncode == 2 and proc.stderr == "netlab: no break scenario 'zzzz'; `netlab break --list` lists them\n"


def test_get_of_a_mistyped_kind_names_the_closest_one():
    proc = run_cli("get", "pdos")
    assert proc.returncode == 2 and "'pdos' is not one of" in proc.stderr
    assert proc.stderr.rstrip().endswith("Did you mean 'pods'?"), proc.stderr


@pytest.mark.parametrize("option", [["-A"], ["--all-namespaces"]])
def test_get_all_namespaces_says_every_namespace_is_listed(option):
    proc = run_cli("get", "pods", *option)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == ("netlab: get lists every Kubernetes namespace already, as kubectl get -A does: "
                           f"drop {option[0]}\n")  # the flag as typed


@pytest.mark.parametrize("option", [["-n", "default"], ["--namespace", "default"]])
def test_get_namespace_says_how_to_name_a_namespaces_objects(option, monkeypatch):
    monkeypatch.delenv("NETLAB_STATE_DIR", raising=False)
    proc = run_cli("get", "svc", *option)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (f"netlab: get takes no {option[0]}: it lists every Kubernetes namespace; name one's "
                           f"objects as NAMESPACE/NAME (`sudo netlab get pods default/NAME`), or drop {option[0]}\n")
