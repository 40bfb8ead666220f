"""iptables-nft's built-in chains that no planned rule is in (tests/integration/test_base_chains_live.py: the same
on real namespaces, `nft -j list ruleset` of an edited lab against a fresh one).

iptables-nft makes a built-in chain when a rule names it and never deletes one; iptables-save prints every built-in
chain whether it exists or not. A switch of cluster.kubeProxyMode from iptables to nftables left filter INPUT and
OUTPUT, nat PREROUTING and OUTPUT hooked (empty, policy ACCEPT) where a fresh nftables lab has none, and status said
all as planned. Now status says them extra, and up deletes them, and a table left with no chain, in one nft
transaction. The fake kernel keeps which built-in chains exist as nf_tables does."""

from __future__ import annotations

import pytest
from fake_lab import TOPO, status

from netlab.kernel.base import Op, TableText
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state_dir

SERVICE = TOPO.replace("{name: a, node: n1, ip: 10.244.0.2}",
                       "{name: a, node: n1, ip: 10.244.0.2, labels: {app: web}}") + "services: [{name: web, selector: {app: web}, ports: [{port: 80}]}]\n"


def lab_of(tmp_path, mode: str, name: str = "fk"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(SERVICE.replace("name: fk\n", f"name: {name}\ncluster: {{kubeProxyMode: {mode}}}\n"))
    return resolve(load_topology(str(path))), str(path)


def netfilter_of(k: FakeKernel, prefix: str) -> dict[str, tuple]:
    """Each namespace's hooked built-in chains, iptables tables and other nf_tables tables, by its name in the lab."""
    out = {}
    for ns in sorted(k.ns):
        if ns.startswith(prefix + "-"):
            snap = k.snapshot(ns)
            out[ns.removeprefix(prefix + "-")] = (sorted(snap.base_chains), sorted(snap.nft_tables))
    return out


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    return tmp_path


@pytest.mark.parametrize("was, now", [("iptables", "nftables"), ("nftables", "iptables")])
def test_a_switched_kube_proxy_mode_leaves_the_hooks_a_fresh_lab_has(root, was, now):
    k = FakeKernel()
    first, path = lab_of(root, was)
    lab_up.up(first, k, features=(), source=path, journal=Journal(k))
    switched, path = lab_of(root, now)
    done = lab_up.up(switched, k, features=(), source=path, journal=Journal(k))
    assert status(switched, k).ok
    fresh_k = FakeKernel()
    fresh, fresh_path = lab_of(root, now, "fq")
    lab_up.up(fresh, fresh_k, features=(), source=fresh_path, journal=Journal(fresh_k))
    assert netfilter_of(k, "fk") == netfilter_of(fresh_k, "fq")
    if was == "iptables":
        assert ("filter", "INPUT") not in k.snapshot("fk-n1").base_chains
        assert [line for line in done.fixed if "base chains" in line] == [
            f"del iptables-nft base chains nat PREROUTING, nat OUTPUT, filter INPUT, filter OUTPUT in fk-{node}"
            for node in ("n1", "n2")]
    again = lab_up.up(switched, k, features=(), source=path, journal=Journal(k))
    assert not again.fixed


def test_status_says_an_empty_hooked_chain_extra_and_up_deletes_it_and_its_table(root):
    k = FakeKernel()
    lab, path = lab_of(root, "nftables")
    lab_up.up(lab, k, features=(), source=path, journal=Journal(k))
    assert status(lab, k).ok
    # someone's rule in raw PREROUTING, taken out again: the chain and the table stay, empty
    k.apply([Op("restore", TableText("fk-a", "raw", "*raw\n-A PREROUTING -j ACCEPT\nCOMMIT\n", noflush=True))])
    k.apply([Op("restore", TableText("fk-a", "raw", "*raw\n-D PREROUTING -j ACCEPT\nCOMMIT\n", noflush=True))])
    result = status(lab, k)
    assert result.drift == ["extra: iptables-nft base chains raw PREROUTING in fk-a (raw PREROUTING: hooked, empty, "
                            "policy ACCEPT; the plan has no rule in it)"]
    assert result.details[0]["resource"] == {"kind": "iptables-nft", "netns": "fk-a",
                                             "chains": (("raw", "PREROUTING"),), "tables": ("raw",)}
    k.log.clear()
    lab_up.up(lab, k, features=(), source=path, journal=Journal(k))
    assert [op.verb for op in k.log] == ["del"] and "raw" not in k.ns["fk-a"].tables.get("", {})
    assert status(lab, k).ok
