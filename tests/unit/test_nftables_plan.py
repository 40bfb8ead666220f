"""kube-proxy's nftables mode without root: the plan, the kernel's view in the plan's words, partial sync, trace.

The kernel's view is golden/kube_proxy/nft_kernel_view.json: what ``nft -j list table ip kube-proxy``
printed for that topology's node n1 (tests/integration/test_nftables_mode.py checks the same against a
live kernel). kube-proxy's own expected output is compared in test_kube_proxy_golden.py.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology, parse_yaml, validate_source
from netlab.plan import nft_table, nftables, services
from netlab.plan.build import build_plan
from netlab.plan.resources import NftRules
from netlab.realize import nft_sync, nftables as realize
from netlab.realize import state as state_mod, state_dir
from netlab.trace import kubeproxy_nft
from netlab.trace.flow import Flow
from netlab.trace.kernel import nft_table_of
from netlab.trace.labmap import LabMap

GOLDEN = Path(__file__).parent / "golden" / "kube_proxy"
VIEW = GOLDEN / "nft_kernel_view.yaml"


@pytest.fixture(scope="module")
def lab():
    return resolve(load_topology(str(VIEW)))


def table_of(lab, node: str = "n1"):
    n = next(x for x in lab.nodes if x.name == node)
    return nftables.kube_proxy_table(lab, n, services.service_ports(lab))


def port(lab, name: str, port_name: str | None = None):
    return next(sp for sp in services.service_ports(lab) if sp.svc.name == name and sp.port.name == port_name)


def kernel_view() -> dict:
    return json.loads((GOLDEN / "nft_kernel_view.json").read_text())


# --- the plan ------------------------------------------------------------------------------------

def test_names_are_kube_proxys_hash_and_readable_part(lab):
    web = port(lab, "web", "http")
    assert nftables.hash_and_truncate("ns1/svc1/tcp/p80") == "ULMVA6XW-ns1/svc1/tcp/p80"  # proxier_test.go's
    assert nftables.service_chain(web).startswith("service-") and nftables.service_chain(web).endswith(
        "-default/web/tcp/http")
    ip, p = web.endpoints[0]
    assert nftables.endpoint_chain(web, ip, p).endswith(f"-default/web/tcp/http__{ip}/{p}")
    assert nftables.affinity_set(web, ip, p).startswith("affinity-")


def test_affinity_nodeport_and_no_endpoints_in_kube_proxys_words(lab):
    t = table_of(lab)
    web = port(lab, "web", "http")
    svc, ext = nftables.service_chain(web), nftables.external_chain(web)
    (ip1, p1), (ip2, p2) = web.endpoints
    aff1 = nftables.affinity_set(web, ip1, p1)
    ep1 = nftables.endpoint_chain(web, ip1, p1)
    assert t.sets[aff1].spec() == "{ type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }"
    rules = t.rules[svc]
    assert rules[0] == f"ip daddr {web.cluster_ip} ip saddr != 10.244.0.0/16 jump mark-for-masquerade"
    assert rules[1] == f"ip saddr @{aff1} goto {ep1}"  # affinity first, then the random choice
    assert rules[-1].startswith("numgen random mod 2 vmap { 0 : goto endpoint-") and " , 1 : goto " in rules[-1]
    assert t.rules[ep1] == [f"ip saddr {ip1} jump mark-for-masquerade", f"update @{aff1} {{ ip saddr }}",
                            f"meta l4proto tcp dnat to {ip1}:{p1}"]
    assert t.rules[ext] == ["jump mark-for-masquerade", f"goto {svc}"]
    assert f"tcp . {web.node_port} : goto {ext}" in t.elements["service-nodeports"]
    empty = port(lab, "empty")
    assert f'{empty.cluster_ip} . tcp . 80 comment "default/empty" : goto reject-chain' in \
        t.elements["no-endpoint-services"]
    assert f'tcp . {empty.node_port} comment "default/empty" : goto reject-chain' in t.elements["no-endpoint-nodeports"]
    assert not [c for c in t.chains if "/default/empty/" in c]  # no chains for a Service without endpoints
    assert t.elements["nodeport-ips"] == [str(lab.nodes[0].ip)]  # each node's own address
    assert table_of(lab, "n2").elements["nodeport-ips"] == [str(lab.nodes[1].ip)]


def test_a_lab_in_nftables_mode_plans_the_table_and_only_flannels_iptables(lab):
    plan = build_plan(lab)
    nft = plan.of_kind("nft")
    assert [r.netns for r in nft] == [n.netns for n in lab.nodes]
    rules = [line for r in plan.of_kind("nat") for line in r.rules]  # type: ignore[attr-defined]
    assert rules and not [line for line in rules if "KUBE-" in line]
    assert any("FLANNEL-POSTRTG" in line for line in rules) and any("FLANNEL-FWD" in line for line in rules)
    r = nft[0]
    assert r.payload.splitlines()[1:3] == ["add table ip kube-proxy", "delete table ip kube-proxy"]
    assert r.key == ("nft", r.netns, "ip", "kube-proxy")


def test_listed_rule_is_how_the_kernel_gives_a_rule_back():
    assert nft_table.listed_rule('ip daddr { 10.96.0.0/12 } drop comment "x"') == 'ip daddr 10.96.0.0/12 drop comment "x"'
    assert nft_table.listed_rule("numgen random mod 2 vmap { 0 : goto a , 1 : goto b }") == \
        "numgen random mod 2 vmap { 0 : goto a, 1 : goto b }"
    assert nft_table.listed_rule("update @aff { ip saddr }") == "update @aff { ip saddr }"


def test_the_transaction_adds_anonymous_sets_first_and_each_chains_rules_in_order(lab):
    """Table.transaction: rules holding an anonymous set (the numgen vmaps) early in the transaction, where
    the kernel's walk of it per set is short; every chain's rules still in the chain's order."""
    t = table_of(lab)
    rules = [line.split(" ", 4)[4] for line in t.transaction() if line.startswith("add rule ")]
    chains = [r.split(" ", 1)[0] for r in rules]
    holding = {c for c, rs in t.rules.items() if any(" { " in r for r in rs)}
    assert any("vmap {" in r for c in holding for r in t.rules[c]) and set(t.rules) - holding
    first_other = next(i for i, c in enumerate(chains) if c not in holding)
    assert all(c not in holding for c in chains[first_other:])
    for chain, want in t.rules.items():
        assert [r.split(" ", 1)[1] for r in rules if r.split(" ", 1)[0] == chain] == want


# --- the kernel's view ---------------------------------------------------------------------------

def test_the_kernels_json_lists_as_the_plan_does(lab):
    res = next(r for r in build_plan(lab).of_kind("nft") if r.netns.endswith("-n1"))
    assert realize.listing(kernel_view()) == res.listing
    assert realize.drift(res, kernel_view()) == []


def test_drift_names_what_is_missing_and_extra_in_kube_proxys_words(lab):
    res = next(r for r in build_plan(lab).of_kind("nft") if r.netns.endswith("-n1"))
    view = kernel_view()
    objs = view["nftables"]
    svcmap = next(o["map"] for o in objs if o.get("map", {}).get("name") == "service-ips")
    gone = svcmap["elem"].pop(0)
    objs.append({"rule": {"family": "ip", "table": "kube-proxy", "chain": "services",
                          "expr": [{"counter": {"packets": 3, "bytes": 180}}, {"drop": None}]}})
    out = realize.drift(res, view)
    assert out[0].startswith("missing element service-ips ") and gone[0]["concat"][0] in out[0]
    assert out[1:] == ["extra rule 3 of chain services: counter drop"]
    assert realize.drift(res, None) == ["table ip kube-proxy is missing"]
    # An expression netlab never writes is printed as its JSON: it can only differ from the plan.
    objs[-1]["rule"]["expr"] = [{"queue": {"num": 1}}]
    assert any('{"queue": {"num": 1}}' in line for line in realize.drift(res, view))


def test_a_rule_put_at_the_head_of_a_chain_is_one_extra_rule_and_a_reorder_says_so(lab):
    """Rules are compared chain by chain as sequences: a counter inserted at the head of masquerading
    (as inspect suggests, to count what enters a chain) is that one rule, not every rule of the chain
    missing at one position and extra at the next."""
    res = next(r for r in build_plan(lab).of_kind("nft") if r.netns.endswith("-n1"))
    view = kernel_view()
    objs = view["nftables"]
    first = next(i for i, o in enumerate(objs) if o.get("rule", {}).get("chain") == "masquerading")
    objs.insert(first, {"rule": {"family": "ip", "table": "kube-proxy", "chain": "masquerading",
                                 "expr": [{"counter": {"packets": 0, "bytes": 0}}]}})
    assert realize.drift(res, view) == ["extra rule 1 of chain masquerading: counter"]
    view = kernel_view()
    objs = view["nftables"]
    at = [i for i, o in enumerate(objs) if o.get("rule", {}).get("chain") == "masquerading"]
    objs[at[0]], objs[at[1]] = objs[at[1]], objs[at[0]]
    assert realize.drift(res, view) == ["extra rules of chain masquerading in another order"]


def test_dynamic_set_elements_are_the_kernels_and_not_compared(lab):
    res = next(r for r in build_plan(lab).of_kind("nft") if r.netns.endswith("-n1"))
    view = kernel_view()
    aff = next(o["set"] for o in view["nftables"] if o.get("set", {}).get("name", "").startswith("affinity-"))
    aff["elem"] = [{"elem": {"val": "10.244.0.3", "timeout": 10800, "expires": 10790}}]
    assert realize.drift(res, view) == []


# --- partial sync -------------------------------------------------------------------------------

def _lab(text: str):
    return resolve(validate_source(parse_yaml(text, "t.yaml")))


def test_partial_sync_touches_only_what_changed(lab):
    old = table_of(lab)
    text = VIEW.read_text().replace("{name: b, node: n2, labels: {app: web}}", "{name: b, node: n2}")
    changed = _lab(text)
    new = nftables.kube_proxy_table(changed, changed.nodes[0], services.service_ports(changed))
    delta = nft_sync.delta_payload(old, new)
    assert delta is not None
    lines = delta.splitlines()
    web = port(lab, "web", "http")
    (ip1, p1), (ip2, p2) = web.endpoints
    gone_chain = nftables.endpoint_chain(web, ip2, p2)
    gone_set = nftables.affinity_set(web, ip2, p2)
    svc = nftables.service_chain(web)
    assert lines[0] == f"flush chain ip kube-proxy {svc}"
    assert f"add rule ip kube-proxy {svc} numgen random mod 1 vmap {{ 0 : goto " \
           f"{nftables.endpoint_chain(web, ip1, p1)} }}" in lines
    # Last, once nothing names them any more: the stale chain is emptied (a later sync deletes it, as
    # kube-proxy does), the stale set deleted.
    assert lines[-2:] == [f"flush chain ip kube-proxy {gone_chain}", f"delete set ip kube-proxy {gone_set}"]
    assert not [line for line in lines if line.startswith("delete chain")]
    assert not [line for line in lines if "service-ips" in line]  # the Service's entry did not change
    assert nft_sync.delta_payload(new, new) is None


def test_partial_sync_of_a_service_that_lost_its_endpoints_swaps_its_map_elements(lab):
    old = table_of(lab)
    text = VIEW.read_text().replace("labels: {app: db}", "labels: {app: gone}")
    changed = _lab(text)
    new = nftables.kube_proxy_table(changed, changed.nodes[0], services.service_ports(changed))
    lines = nft_sync.delta_payload(old, new).splitlines()
    db = port(lab, "db", "pg")
    assert f"delete element ip kube-proxy service-ips {{ {db.cluster_ip} . tcp . 5432 }}" in lines
    assert (f'add element ip kube-proxy no-endpoint-services {{ {db.cluster_ip} . tcp . 5432 comment "default/db:pg" '
            ": goto reject-chain }") in lines
    stale = [nftables.service_chain(db)] + [nftables.endpoint_chain(db, ip, p) for ip, p in db.endpoints]
    flushes = [i for i, line in enumerate(lines) if line.startswith("flush chain") and line.split()[-1] in stale]
    elements = [i for i, line in enumerate(lines) if "element" in line]
    # The map elements that named the Service's chain go first; then its chains are emptied, not deleted.
    assert len(flushes) == len(stale) and min(flushes) > max(elements)
    assert not [line for line in lines if line.startswith("delete chain")]


# --- against the fake kernel ---------------------------------------------------------------------

def test_up_status_and_mode_switch_against_the_fake_kernel(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    text = VIEW.read_text().replace("name: nfkv", "name: nffk")
    nft_lab = _lab(text)
    k = FakeKernel()
    lab_up.up(nft_lab, k, features=(), journal=Journal(k))
    assert lab_status.status(state_mod.load_state("nffk"), k).ok
    assert all(list(k.ns[n.netns].nft) == [("ip", "kube-proxy")] for n in nft_lab.nodes)
    again = lab_up.up(nft_lab, k, features=(), journal=Journal(k))
    assert not again.fixed
    ipt = _lab(text.replace("kubeProxyMode: nftables", "kubeProxyMode: iptables"))
    result = lab_up.up(ipt, k, features=(), journal=Journal(k), reconfigure=True)
    # kube-proxy's table goes, said as such ("restore" said that of a deletion)
    assert [f for f in result.fixed if "nftables" in f] == [f"delete nftables table ip kube-proxy in {n.netns}"
                                                           for n in ipt.nodes]
    assert not any(k.ns[n.netns].nft for n in ipt.nodes)
    assert lab_status.status(state_mod.load_state("nffk"), k).ok


# --- trace ---------------------------------------------------------------------------------------

def test_an_endpoint_gone_empties_its_chain_and_the_next_up_deletes_it_against_the_fake_kernel(tmp_path, monkeypatch):
    """up with an endpoint fewer: its chain stays, emptied, and status is clean; the next up deletes it in a
    transaction of its own, before its sync (kube-proxy's staleChains), and the table is the plan's again."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    text = VIEW.read_text().replace("name: nfkv", "name: nfst")
    before = _lab(text)
    k = FakeKernel()
    lab_up.up(before, k, features=(), journal=Journal(k))
    after = _lab(text.replace("{name: b, node: n2, labels: {app: web}}", "{name: b, node: n2}"))
    web = port(before, "web", "http")
    gone = nftables.endpoint_chain(web, *web.endpoints[1])
    key = ("ip", "kube-proxy")
    node = after.nodes[0].netns
    planned = next(r for r in build_plan(after).of_kind("nft") if r.netns == node)
    first = lab_up.up(after, k, features=(), journal=Journal(k))
    assert f"chain {gone}" in k.ns[node].nft[key].listing and f"chain {gone}" not in planned.listing
    assert not [line for line in first.fixed if "emptied" in line]
    assert lab_status.status(state_mod.load_state("nfst"), k).ok
    second = lab_up.up(after, k, features=(), journal=Journal(k))
    assert [line for line in second.fixed if "an earlier sync emptied" in line]
    assert k.ns[node].nft[key].listing == planned.listing
    third = lab_up.up(after, k, features=(), journal=Journal(k))
    assert not third.changed


def test_trace_names_the_numgen_element_or_the_affinity_set(lab):
    m = LabMap.from_lab(lab, build_plan(lab))
    svc = m.service_for(str(port(lab, "db", "pg").cluster_ip), 5432, "tcp")
    ep = svc.endpoints[0]
    table = nft_table_of(kernel_view())
    c = kubeproxy_nft.choice(table, svc, ep, "10.244.0.3")
    assert c.element == f"0 : goto {ep.sep_chain}" and (c.position, c.of, c.chance) == (1, 1, Fraction(1))
    web = m.service_for(str(port(lab, "web", "http").cluster_ip), 80, "tcp")
    before = kernel_view()
    aff = next(o["set"] for o in before["nftables"] if o.get("set", {}).get("name", "").startswith("affinity-")
               and o["set"]["name"].endswith(web.endpoints[0].ip + "/8080"))
    aff["elem"] = [{"elem": {"val": "10.244.0.3", "timeout": 10800, "expires": 10000}}]
    sticky = kubeproxy_nft.choice(nft_table_of(kernel_view(), nft_table_of(before)), web, web.endpoints[0],
                                  "10.244.0.3")
    assert sticky.affinity and sticky.rule == f"ip saddr @{aff['name']} goto {web.endpoints[0].sep_chain}"
    fresh = kubeproxy_nft.choice(nft_table_of(kernel_view(), nft_table_of(kernel_view())), web, web.endpoints[1],
                                 "10.244.0.3")
    assert not fresh.affinity and fresh.position == 2 and fresh.chance == Fraction(1, 2)


def test_trace_blames_the_first_missing_line_with_its_nft_fix(lab):
    m = LabMap.from_lab(lab, build_plan(lab))
    db = port(lab, "db", "pg")
    svc = m.service_for(str(db.cluster_ip), 5432, "tcp")
    ns = lab.nodes[0].netns
    view = kernel_view()
    svcmap = next(o["map"] for o in view["nftables"] if o.get("map", {}).get("name") == "service-ips")
    svcmap["elem"] = [e for e in svcmap["elem"] if e[0]["concat"][:3] != [str(db.cluster_ip), "tcp", 5432]]
    why = kubeproxy_nft.no_dnat(m, nft_table_of(view), ns, svc, Flow("tcp", "10.244.0.3", str(db.cluster_ip),
                                                                     40000, 5432), "cni0")
    assert why.cause and why.facts["missing_rule"].startswith(f"element service-ips {db.cluster_ip} . tcp . 5432 : ")
    assert "is missing from n1's table ip kube-proxy" in why.problem and "cluster-ips-check rejects it" in why.problem
    assert why.fix == (f"ip netns exec {ns} nft 'add element ip kube-proxy service-ips {{ {db.cluster_ip} . tcp . "
                       f"5432 : goto {svc.svc_chain} }}'")
    # A missing rule: the chain again, whole, in the plan's order, in one nft transaction.
    view = kernel_view()
    view["nftables"] = [o for o in view["nftables"] if not ("rule" in o and o["rule"]["chain"] == svc.svc_chain
                                                            and "vmap" in json.dumps(o["rule"]["expr"]))]
    why = kubeproxy_nft.no_dnat(m, nft_table_of(view), ns, svc, Flow("tcp", "10.244.0.3", str(db.cluster_ip),
                                                                     40000, 5432), "cni0")
    assert why.facts["missing_rule"].startswith(f"rule {svc.svc_chain} 0001 numgen random mod 1 vmap")
    assert f"flush chain ip kube-proxy {svc.svc_chain}; add rule ip kube-proxy {svc.svc_chain} ip daddr" in why.fix


def test_a_rollback_makes_the_old_table_again_from_its_listing(lab):
    """The listing is kube-proxy's own syntax: replayed, it makes the same table (checked live in
    test_nftables_mode.py's repair path; here the transaction it writes)."""
    res = next(r for r in build_plan(lab).of_kind("nft") if r.netns.endswith("-n1"))
    payload = nft_sync.replay_payload("ip", "kube-proxy", realize.listing(kernel_view()))
    lines = payload.splitlines()
    assert lines[:3] == ["add table ip kube-proxy", "delete table ip kube-proxy", "add table ip kube-proxy"]
    assert "add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }" in lines
    aff = next(line for line in lines if line.startswith("add set ip kube-proxy affinity-"))
    assert aff.endswith("{ type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }")
    assert len([line for line in lines if line.startswith("add rule ")]) == \
        len([line for line in res.listing if line.startswith("rule ")])


def test_a_failed_up_puts_the_old_tables_back(tmp_path, monkeypatch):
    """Both nodes' tables drifted; up replaces them and fails at the last one: the first goes back as it was."""
    import copy

    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    nft_lab = _lab(VIEW.read_text().replace("name: nfkv", "name: nfrb"))
    k = FakeKernel()
    lab_up.up(nft_lab, k, features=(), journal=Journal(k))
    key = ("ip", "kube-proxy")
    for node in nft_lab.nodes:
        t = k.ns[node.netns].nft[key]
        k.ns[node.netns].nft[key] = type(t)(t.netns, t.family, t.table, t.text, t.listing[1:])  # one line less
    drifted = {n.netns: k.ns[n.netns].nft[key].listing for n in nft_lab.nodes}
    dry = copy.deepcopy(k)
    journal = Journal(dry)
    lab_up.up(nft_lab, dry, features=(), journal=journal)
    with pytest.raises(Exception, match="injected fault"):
        lab_up.up(nft_lab, k, features=(), journal=Journal(k, fault_at=journal.count))
    assert {n.netns: k.ns[n.netns].nft[key].listing for n in nft_lab.nodes} == drifted


def test_a_drifted_table_gets_only_what_differs(lab):
    """up's repair: kube-proxy's partial sync from what the kernel lists to the plan."""
    res = next(r for r in build_plan(lab).of_kind("nft") if r.netns.endswith("-n1"))
    have = [line for line in res.listing if not line.startswith("element service-ips ")] + \
        ["rule services 0002 counter drop"]
    delta = nft_sync.listing_delta("ip", "kube-proxy", have, res.listing).splitlines()
    elems = [line for line in res.listing if line.startswith("element service-ips ")]
    assert delta == ["flush chain ip kube-proxy services",
                     "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips",
                     "add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap "
                     "@service-nodeports"] + \
        [f"add element ip kube-proxy service-ips {{ {e.split(' ', 2)[2]} }}" for e in elems]
    assert nft_sync.listing_delta("ip", "kube-proxy", res.listing, res.listing) is None
    # A base chain with another priority cannot be changed in place: the whole table again.
    moved = [line.replace("priority -100", "priority -90") if line.startswith("chain nat-prerouting") else line
             for line in res.listing]
    assert nft_sync.listing_delta("ip", "kube-proxy", moved, res.listing).startswith(
        "add table ip kube-proxy\ndelete table ip kube-proxy\n")


def test_a_chain_the_plan_dropped_is_emptied_then_deleted_by_a_later_sync_and_is_no_drift_meanwhile(lab):
    """kube-proxy's staleChains: the sync empties a chain that left the plan; the kernel's table then holds it
    empty, which is not drift; the next up deletes it in a transaction of its own (add first: never fails)."""
    changed = _lab(VIEW.read_text().replace("{name: b, node: n2, labels: {app: web}}", "{name: b, node: n2}"))
    new = nftables.kube_proxy_table(changed, changed.nodes[0], services.service_ports(changed))
    web = port(lab, "web", "http")
    gone = nftables.endpoint_chain(web, *web.endpoints[1])
    planned = NftRules(netns="t-n1", family="ip", table="kube-proxy", payload="x", listing=new.listing())
    after_sync = {"netlab-listing": list(new.listing()) + [f"chain {gone}"]}  # emptied, still there
    assert realize.drift(planned, after_sync) == []
    assert realize.stale_chains(planned, after_sync) == [gone]
    assert nft_sync.listing_delta("ip", "kube-proxy", after_sync["netlab-listing"], new.listing()) is None
    assert nft_sync.delete_chains_payload("ip", "kube-proxy", [gone]) == \
        f"add chain ip kube-proxy {gone}\ndelete chain ip kube-proxy {gone}\n"
    # A chain the plan does not have that holds rules, is a base chain, or has a name nft would need quoted
    # is drift, and never a stale chain.
    for extra in ([f"chain {gone}", f"rule {gone} 0000 counter"], ["chain hooked type nat hook output priority 0"],
                  ["chain bad;name"]):
        seen = {"netlab-listing": list(new.listing()) + extra}
        assert realize.drift(planned, seen) and realize.stale_chains(planned, seen) == []
