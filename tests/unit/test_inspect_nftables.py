"""``netlab inspect``'s nftables section without root: kube-proxy's table (nftables mode) as inspect shows it.

The kernel's answer is golden/kube_proxy/nft_kernel_view.json (what ``nft -j list table ip kube-proxy``
printed on a real node, see test_nftables_plan.py) with a counter and a client of an affinity set added
as the kernel would list them; nft's text is a stand-in. The same section on a live lab is checked in
tests/integration/test_inspect_nftables.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from netlab.api import jsonio
from netlab.api import results as R
from netlab.cli.inspect_text import render_inspect
from netlab.errors import EnvironmentNotReady, netlab_command
from netlab.kernel import iptables, nft
from netlab.plan import nftables as plan_nft
from netlab.trace import inspect as tinspect
from netlab.trace.sections import NFT_TABLES, SECTIONS

GOLDEN = Path(__file__).parent / "golden" / "kube_proxy" / "nft_kernel_view.json"
TEXT = "table ip kube-proxy {\n\tchain services {\n\t\tcounter packets 3 bytes 180\n\t}\n}\n"


def kernel_view(counter: bool = True) -> dict:
    view = json.loads(GOLDEN.read_text())
    objs = view["nftables"]
    if counter:  # what `nft insert rule ip kube-proxy services counter` leaves, after 3 packets
        at = next(i for i, o in enumerate(objs) if o.get("rule", {}).get("chain") == "services")
        objs.insert(at, {"rule": {"family": "ip", "table": "kube-proxy", "chain": "services", "handle": 90,
                                  "expr": [{"counter": {"packets": 3, "bytes": 180}}]}})
    aff = next(o["set"] for o in objs if o.get("set", {}).get("name", "").startswith("affinity-"))
    aff["elem"] = [{"elem": {"val": "10.244.0.3", "expires": 10790}}]  # a client the update statement added
    return view


def view(counter: bool = True) -> dict:
    return tinspect.nft_table_view("ip", "kube-proxy", kernel_view(counter), TEXT)


def test_the_section_reads_the_table_netlab_writes():
    assert SECTIONS["nftables"] == "nftables"
    assert NFT_TABLES == ((plan_nft.FAMILY, plan_nft.TABLE),)  # kube-proxy's, the only nf_tables table of a lab


def test_chains_rules_counters_and_sets_in_kube_proxys_words():
    v = view()
    assert v["listing"] == TEXT.rstrip("\n").splitlines()  # nft's own text, line by line
    chains = {c["name"]: c for c in v["chains"]}
    objs = kernel_view()["nftables"]
    assert list(chains) == [o["chain"]["name"] for o in objs if "chain" in o]  # every chain, the kernel's order
    assert chains["nat-prerouting"] == {"name": "nat-prerouting", "type": "nat", "hook": "prerouting",
                                        "priority": -100, "policy": "accept",
                                        "rules": [{"rule": "jump services", "packets": None, "bytes": None}]}
    services = chains["services"]
    assert services["hook"] is None and services["type"] is None
    assert services["rules"][0] == {"rule": "counter", "packets": 3, "bytes": 180}
    assert services["rules"][1] == {"rule": "ip daddr . meta l4proto . th dport vmap @service-ips",
                                    "packets": None, "bytes": None}  # kube-proxy writes no counters
    sets = {s["name"]: s for s in v["sets"]}
    svc = sets["service-ips"]
    assert svc["kind"] == "map" and svc["type"] == "ipv4_addr . inet_proto . inet_service : verdict"
    assert svc["elements"] and all(" : goto service-" in e or " : goto external-" in e for e in svc["elements"])
    assert sets["cluster-ips"]["kind"] == "set" and sets["cluster-ips"]["type"] == "ipv4_addr"
    aff = next(s for name, s in sets.items() if name.startswith("affinity-"))
    assert aff["elements"] == ["10.244.0.3"] and aff["timeout"] == 10800  # the client, as trace reads it


def test_the_api_class_has_exactly_the_sections_fields_and_round_trips():
    v = view()
    assert {f.name for f in dataclasses.fields(R.NftTableInfo)} == set(v)
    data = {"lab": "x", "name": "n1", "netns": "x-n1", "what": "node n1", "nftables": {"ip kube-proxy": v}}
    out = jsonio.from_json(R.Inspection, data)
    assert shown(out) == json.loads(json.dumps(data))  # the same JSON, field for field
    table = out.nftables["ip kube-proxy"]
    assert isinstance(table, R.NftTableInfo) and table.listing == tuple(v["listing"])
    assert table.chain("services")["rules"][0]["packets"] == 3 and table.chain("nope") is None
    assert table.elements("nodeport-ips") and table.elements("nope") == ()
    empty = jsonio.from_json(R.Inspection, {**data, "nftables": {}})  # iptables mode, a pod
    assert shown(empty)["nftables"] == {}
    unasked = {k: v for k, v in data.items() if k != "nftables"}
    assert jsonio.from_json(R.Inspection, unasked).nftables is None and shown(jsonio.from_json(R.Inspection, unasked)) \
        == unasked  # not asked for: None, and left out of the JSON


def shown(inspection: R.Inspection) -> dict:
    """What ``netlab inspect -o json`` prints for it: sections not asked for (None) left out."""
    return {k: v for k, v in jsonio.to_json(inspection).items() if v is not None}


@pytest.fixture
def door(monkeypatch):
    """kernel/nft.py's two readers, answering from memory: {netns: (json, text)}; a missing netns has no table."""
    tables: dict[str, tuple[dict, str]] = {}
    asked: list[tuple[str, str, str, str]] = []

    def list_table(netns, family, table):
        asked.append(("json", netns, family, table))
        return tables[netns][0] if netns in tables else None

    def list_table_text(netns, family, table):
        asked.append(("text", netns, family, table))
        return tables[netns][1] if netns in tables else None

    monkeypatch.setattr(nft, "list_table", list_table)
    monkeypatch.setattr(nft, "list_table_text", list_table_text)
    return tables, asked


def test_inspect_reads_kube_proxys_table_through_the_nft_door(door):
    tables, asked = door
    tables["x-n1"] = (kernel_view(), TEXT)
    data = tinspect.inspect("x-n1", None, ["nftables"])  # nothing else is read: no netlink, no iptables
    assert set(data) == {"netns", "what", "nftables"} and list(data["nftables"]) == ["ip kube-proxy"]
    assert data["nftables"]["ip kube-proxy"] == view()
    assert asked == [("json", "x-n1", "ip", "kube-proxy"), ("text", "x-n1", "ip", "kube-proxy")]
    assert tinspect.inspect("x-a", None, ["nftables"])["nftables"] == {}  # a pod; a node in iptables mode
    assert asked[-1] == ("json", "x-a", "ip", "kube-proxy")  # no table: its text is not asked for


@pytest.mark.parametrize("error", [nft.NftError("x-n1: nft -j list table ip kube-proxy failed: no permission"),
                                   EnvironmentNotReady("nft is not installed"), OSError(24, "Too many open files")])
def test_a_table_nft_cannot_read_is_reported_and_inspect_goes_on(monkeypatch, error):
    def broken(netns, family, table):
        raise error
    monkeypatch.setattr(nft, "list_table", broken)
    data = tinspect.inspect("x-n1", None, ["nftables"])
    assert data["nftables"] == {} and data["unreadable"] == {"nftables": str(error)}
    lines = section_of(render_inspect(base(nftables={}, unreadable=data["unreadable"])), "nftables")
    assert lines[1:] == [f"  (cannot read: {error})"]  # not the 'no table here' line of an iptables-mode node


def test_iptables_that_cannot_be_read_is_reported_too(monkeypatch):
    def broken(netns, counters=False):
        raise iptables.IptablesError("x-n1: iptables-save failed: Permission denied")
    monkeypatch.setattr(iptables, "save", broken)
    data = tinspect.inspect("x-n1", None, ["iptables"])
    assert data == {"netns": "x-n1", "what": "x-n1", "iptables": {},
                    "unreadable": {"iptables": "x-n1: iptables-save failed: Permission denied"}}
    lines = section_of(render_inspect(base(iptables={}, unreadable=data["unreadable"])), "iptables")
    assert lines[1:] == ["  (cannot read: x-n1: iptables-save failed: Permission denied)"]
    assert R.Inspection(lab="x", name="n1", netns="x-n1", what="node",
                        unreadable=data["unreadable"]).unreadable == data["unreadable"]


def base(**sections) -> dict:
    return {"lab": "x", "name": "node-1", "netns": "x-node-1", "what": "node node-1", **sections}


def section_of(text: str, heading: str) -> list[str]:
    """A section's heading line and its lines, up to the blank line that ends it."""
    return text.split(f"\n{heading}", 1)[1].split("\n\n", 1)[0].splitlines()


def test_the_text_is_nfts_listing_under_the_command_that_prints_it():
    text = render_inspect(base(nftables={"ip kube-proxy": view()}))
    lines = section_of(text, "nftables")
    assert lines[0] == " (the lab's tables, as nft lists them)   $ ip netns exec x-node-1 nft list table ip kube-proxy"
    assert lines[1:] == [f"  {line}" for line in TEXT.rstrip("\n").splitlines()]  # as nft prints it, tabs and all


def test_without_counters_the_text_says_how_to_count():
    lines = section_of(render_inspect(base(nftables={"ip kube-proxy": view(counter=False)})), "nftables")
    assert lines[-1].startswith("  (kube-proxy writes no counters in nftables mode; to count what enters a chain: "
                                "ip netns exec x-node-1 nft insert rule ip kube-proxy service-")
    chain = lines[-1].split(" insert rule ip kube-proxy ")[1].split()[0]
    assert chain in {c["name"] for c in view()["chains"]} and "/" in chain  # a Service's own chain
    assert lines[-1].endswith(f" counter, and `{netlab_command('up --lab x')}` takes it out)")  # this lab's up, named


def test_without_a_table_the_section_is_one_line():
    text = render_inspect(base(nftables={}))
    assert section_of(text, "nftables") == [
        " (the lab's tables, as nft lists them)   $ ip netns exec x-node-1 nft list table ip kube-proxy",
        "  (no table ip kube-proxy here: kube-proxy writes it on the nodes of a lab in nftables mode; in iptables "
        "mode its rules are in the iptables section)"]
    assert "nftables" not in render_inspect(base(routes=[]))  # not asked for: no section
