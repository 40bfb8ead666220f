"""Plain-text `up` says every action `-o json` lists. With a namespace made in the same run (a pod added) it kept
only the "made anew" lines: a Service's rules restored, a NetworkPolicy's chains deleted and kube-dns restarted in
the namespaces that were there went unsaid, and the restart was counted as a container started. No root: the
run is replaced by its result."""

from __future__ import annotations

import types

import pytest
from cli_inprocess import run_cli

from helpers import two_node_topology
from netlab.api import results as R

FIXED = ("restore iptables nat in qv1-n1", "qv1-n2: deleted stale filter chains NETPOL-AAAA",
         "restarted container kube-dns/dnsmasq (its command changed)", "started container c/main",
         "wrote /etc/netns/qv1-c/hosts")


@pytest.fixture
def up_with(state_root, monkeypatch, tmp_path):
    monkeypatch.delenv("NETLAB_LAB", raising=False)
    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    path = tmp_path / "qv1.yaml"
    path.write_text(two_node_topology("qv1"))

    def run(fixed: tuple[str, ...], created: tuple[str, ...], fresh: bool = False, removed: tuple[str, ...] = ()):
        def up_loaded(cls, loaded, **kw):
            result = R.UpResult(lab="qv1", changed=True, created_netns=created, removed_netns=removed, fixed=fixed,
                                operations=len(fixed), warnings=(), failed=())
            return types.SimpleNamespace(last_up=result, model=loaded.lab, owned=fresh)

        monkeypatch.setattr("netlab.api.Lab.up_loaded", classmethod(up_loaded))
        return run_cli("up", "-t", str(path))
    return run


def test_up_lists_the_actions_in_existing_namespaces_when_it_also_made_one(up_with):
    res = up_with(FIXED, ("qv1-c",))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("lab qv1 is up (1 namespace created, 1 container started, 1 container restarted, "
                               "1 file written, 2 rule tables rewritten): "), lines[0]
    assert lines[1:6] == [f"  {line}" for line in FIXED], lines


def test_a_fresh_lab_is_said_in_counts_as_before(up_with):
    lines = up_with(FIXED[3:], ("qv1-n1", "qv1-n2", "qv1-c"), fresh=True).stdout.splitlines()
    assert lines[0].startswith("lab qv1 is up (3 namespaces created, 1 container started, 1 file written): ")
    assert not [line for line in lines if line.startswith("  ")], lines


def test_up_names_each_pod_and_node_whose_namespace_it_removed(up_with):
    """QA qo 3: an `up` that removed a pod said "(1 removed)" and nothing named the pod."""
    from netlab.model.lab import resolve
    from netlab.model.load import parse_yaml, validate_source
    from netlab.realize.state import LabState

    text = two_node_topology("qv1").replace("nodes:\n", "nodes:\n  - {name: n3}\n") + (
        "  - {name: shop, node: n3, namespace: sales, containers: [{name: main}, {name: side, command: [sleep, inf]}]}\n")
    state = LabState(lab="qv1", phase="up")  # the lab as it ran before this up
    state.topology = resolve(validate_source(parse_yaml(text, "old.yaml"))).topo.model_dump(
        mode="json", by_alias=True, exclude_none=True)
    state.save()
    lines = up_with(FIXED[:1], (), removed=("qv1-shop", "qv1-n3", "qv1-gone")).stdout.splitlines()
    assert lines[0].startswith("lab qv1 is up (3 namespaces removed, 1 rule table rewritten): ")
    assert lines[1:5] == ["  removed pod sales/shop (network namespace qv1-shop, containers main, side stopped)",
                          "  removed node n3 (network namespace qv1-n3)",
                          "  removed network namespace qv1-gone", f"  {FIXED[0]}"], lines
