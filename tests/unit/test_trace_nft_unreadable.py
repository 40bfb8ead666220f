"""kube-proxy's table (nftables mode) that ``trace`` could not read: nft failed, printed no JSON, or the namespace
could not be entered. Before, trace took it for no table at all and said nothing: a packet the node did not DNAT
was explained by where it got lost afterwards (the gateway's "no route to 10.96.0.20"), as if the node had no
kube-proxy rules. Now the dnat row says the table could not be read, with nft's one line, and the trace's notes
say it for each node. An iptables-mode node's kube-proxy table is not read at all (it has none). The real nft
failing: tests/integration/test_trace_nft_unreadable_live.py."""

from __future__ import annotations

import json

import pytest

from netlab.kernel import nft
from netlab.trace import kubeproxy_nft, tables
from test_trace_missing_rules import services_lab, to_web, traced

ERROR = "nft -j list table ip kube-proxy failed: Error: Could not process rule: Operation not permitted"


def test_a_node_whose_table_could_not_be_read_says_so_on_its_dnat_row_and_in_the_verdict():
    _, m, k = services_lab(nft=True)
    k.nft_table = lambda ns: None
    k.nft_problem = lambda ns: ERROR if ns == "svc-node-1" else None
    w, v = traced(m, k, to_web())
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.kind) == ("svc-node-1", "dnat")
    assert lost.decision == "no DNAT for 10.244.0.3:40000 → 10.96.0.20:80 tcp: table ip kube-proxy could not be read"
    assert v.reason.startswith("node-1 did not DNAT this packet for Service default/web:http (it has no conntrack "
                               f"entry with a DNAT), and its table ip kube-proxy could not be read ({ERROR}): trace "
                               "cannot say which of kube-proxy's rules is missing there; without a DNAT 10.96.0.20 is an address no "
                               "interface owns, and the packet follows node-1's routes as it is"), v.reason
    assert lost.facts["nft_error"] == ERROR and lost.facts["unreadable_table"] == "ip kube-proxy"
    assert "ip netns exec svc-node-1 nft list table ip kube-proxy" in lost.commands


def test_the_notes_name_each_node_whose_table_could_not_be_read():
    _, m, _ = services_lab(nft=True)
    assert kubeproxy_nft.unread_notes(m, {"svc-node-1": ERROR, "svc-client": "other"}) == [
        f"node-1's table ip kube-proxy could not be read ({ERROR}): what this trace says of kube-proxy's rules there "
        "is not checked against the kernel"]


@pytest.mark.parametrize("fails, said", [
    (nft.NftError(f"svc-node-1: {ERROR}\nmore"), ERROR),
    (nft.NftError("svc-node-1: nft -j printed something that is not JSON"), "nft -j printed something that is not JSON"),
    (PermissionError(1, "Operation not permitted"), "nft -j list table ip kube-proxy: Operation not permitted"),
])
def test_a_table_that_cannot_be_read_is_none_with_nfts_one_line_not_a_missing_table(monkeypatch, fails, said):
    def list_table(netns, family, table):
        raise fails

    monkeypatch.setattr(tables.nft, "list_table", list_table)
    k = tables.KernelTables()
    k.count_nat_before([], nft=["svc-node-1"])
    assert k.nft_table("svc-node-1") is None and k.nft_problem("svc-node-1") == said


def test_a_table_not_there_is_a_missing_table_not_an_unreadable_one(monkeypatch):
    monkeypatch.setattr(tables.nft, "list_table", lambda netns, family, table: None)
    k = tables.KernelTables()
    assert not k.nft_table("svc-node-1").exists and k.nft_problem("svc-node-1") is None


def test_kube_proxys_nft_table_is_read_only_on_the_nodes_in_nftables_mode(monkeypatch):
    read: list[str] = []
    monkeypatch.setattr(tables, "read_nat_table", lambda ns, before=None, table="nat": None)
    monkeypatch.setattr(tables.nft, "list_table", lambda netns, family, table: read.append(netns) or json.loads(
        '{"nftables": []}'))
    k = tables.KernelTables()
    k.count_nat_before(["ipt-node", "nft-node"], {}, nft=("nft-node",))
    k.snapshot_nat(["ipt-node", "nft-node"], {}, nft=("nft-node",))
    assert read == ["nft-node", "nft-node"]


def test_a_table_read_after_a_failed_read_is_no_longer_said_unreadable(monkeypatch):
    """The read before the packet failed, the one after it worked: the notes said the table could not be read
    (the first failure was kept for good), which was no longer true (review1 9)."""
    answers = [nft.NftError(f"svc-node-1: {ERROR}"), {"nftables": []}]

    def list_table(netns, family, table):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(tables.nft, "list_table", list_table)
    monkeypatch.setattr(tables, "read_nat_table", lambda ns, before=None, table="nat": None)
    k = tables.KernelTables()
    k.count_nat_before(["svc-node-1"], {}, nft=["svc-node-1"])
    assert k.nft_problem("svc-node-1") == ERROR
    k.snapshot_nat(["svc-node-1"], {}, nft=["svc-node-1"])
    assert k.nft_table("svc-node-1") is not None and k.nft_problem("svc-node-1") is None
