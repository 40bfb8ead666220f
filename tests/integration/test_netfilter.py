"""netlab.realize.netfilter against real iptables, in scratch namespaces (root).

Each test makes its own namespace (``nlsvc-<random>-n1``) and removes it
afterwards; nothing runs in the host's namespace.
"""

from __future__ import annotations

import shlex
import uuid
from pathlib import Path

import pytest

from helpers import many_services_topology
from netlab.errors import ApplyFailed
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import services
from netlab.plan.iptables import ZERO_FIRST_CHAINS, kube_probability
from netlab.plan.iptables_save import saved_probability, saved_rule
from netlab.plan.resources import NatRules
from netlab.realize import netfilter
from netlab.kernel.netns import create_netns, make_tag, remove_netns, run_in_netns

pytestmark = pytest.mark.root

TOPO = Path(__file__).parent.parent / "unit" / "golden" / "services_topology.yaml"
BACKENDS = ["nft", "legacy"]


@pytest.fixture
def netns():
    name = f"nlsvc-{uuid.uuid4().hex[:6]}-n1"
    create_netns(name, make_tag("nlsvc-test", name))
    try:
        yield name
    finally:
        remove_netns(name)


def lab_from(text: str | None = None, tmp_path: Path | None = None):
    if text is None:
        return resolve(load_topology(str(TOPO)))
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return resolve(load_topology(str(path)))


def node_rules(lab, table: str, netns: str) -> NatRules:
    res = [r for r in services.resources(lab) if r.kind == "nat" and r.table == table][0]
    return NatRules(netns=netns, table=res.table, chains=res.chains, payload=res.payload, rules=res.rules)


def save(netns: str, table: str, backend: str) -> str:
    tool = netfilter.tools(backend)[0]
    return run_in_netns(netns, [tool, "-t", table]).stdout.decode()


def restore(netns: str, text: str, backend: str) -> None:
    tool = netfilter.tools(backend)[1]
    run_in_netns(netns, [tool, "--noflush"], input=text.encode())


SENTINEL_NAT = """*nat
:SENTINEL - [0:0]
:KUBE-SVC-LOOKALIKE00000 - [0:0]
-A PREROUTING -s 198.51.100.7/32 -j SENTINEL
-A POSTROUTING -d 198.51.100.8/32 -j RETURN
-A SENTINEL -p udp -m udp --dport 9 -j RETURN
-A KUBE-SVC-LOOKALIKE00000 -j RETURN
COMMIT
"""
SENTINEL_LINES = [
    "-A PREROUTING -s 198.51.100.7/32 -j SENTINEL",
    "-A POSTROUTING -d 198.51.100.8/32 -j RETURN",
    "-A SENTINEL -p udp -m udp --dport 9 -j RETURN",
    "-A KUBE-SVC-LOOKALIKE00000 -j RETURN",
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("table", ["nat", "filter"])
def test_apply_shows_exactly_the_plan(netns, backend, table):
    lab = lab_from()
    res = node_rules(lab, table, netns)
    ch = netfilter.apply_rules(res, backend=backend)
    assert ch.changed and set(ch.written) == set(res.chains)
    assert netfilter.observe_rules(netns, table, res.chains, backend=backend) == res.rules
    # iptables-save itself holds every planned rule verbatim, and nothing else.
    lines = [l for l in save(netns, table, backend).splitlines() if l.startswith("-A ")]
    assert sorted(lines) == sorted(res.rules)
    # Re-apply: nothing to do, nothing run.
    again = netfilter.apply_rules(res, backend=backend)
    assert not again.changed
    assert netfilter.observe_rules(netns, table, res.chains, backend=backend) == res.rules


@pytest.mark.parametrize("backend", BACKENDS)
def test_sentinels_survive_apply_rerender_and_remove(netns, backend, tmp_path):
    restore(netns, SENTINEL_NAT, backend)
    lab = lab_from()
    res = node_rules(lab, "nat", netns)
    netfilter.apply_rules(res, backend=backend)
    text = save(netns, "nat", backend)
    for line in SENTINEL_LINES:
        assert line in text.splitlines()
    # The lab's jumps sit on top of PREROUTING/POSTROUTING, the sentinels after them.
    pre = [l for l in text.splitlines() if l.startswith("-A PREROUTING")]
    assert pre == ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                   "-A PREROUTING -s 198.51.100.7/32 -j SENTINEL"]
    assert netfilter.observe_rules(netns, "nat", res.chains, backend=backend) == res.rules

    # Re-render with one endpoint fewer: only the changed chains are rewritten.
    lab2 = lab_from(TOPO.read_text().replace("labels: {app: web}  # endpoint-b", "labels: {}"),
                    tmp_path=tmp_path)
    res2 = node_rules(lab2, "nat", netns)
    ch = netfilter.apply_rules(res2, previous=res, backend=backend)
    assert ch.deleted, "the removed endpoint's KUBE-SEP chains are deleted"
    assert set(ch.written) < set(res2.chains)
    assert netfilter.observe_rules(netns, "nat", res2.chains, backend=backend) == res2.rules
    text = save(netns, "nat", backend)
    for line in SENTINEL_LINES:
        assert line in text.splitlines()
    for chain in ch.deleted:
        assert f":{chain} " not in text

    # Down of the lab rules: the lab's chains and jumps go, the sentinels stay.
    netfilter.remove_rules(res2, backend=backend)
    lines = [l for l in save(netns, "nat", backend).splitlines() if l.startswith("-A ")]
    assert sorted(lines) == sorted(SENTINEL_LINES)
    assert netfilter.observe_rules(netns, "nat", res2.chains, backend=backend) == ()


@pytest.mark.parametrize("backend", BACKENDS)
def test_kube_proxys_partial_sync_trusts_the_last_restore_and_writes_only_what_changed(netns, backend, tmp_path):
    """verify=False (realize/netfilter.trusted_change): nothing is read; the chains whose rules differ from
    the last restore are written and the gone endpoint's chains deleted, and the kernel then holds exactly
    the new plan, as the verified path would leave it."""
    res = node_rules(lab_from(), "nat", netns)
    netfilter.apply_rules(res, backend=backend)
    lab2 = lab_from(TOPO.read_text().replace("labels: {app: web}  # endpoint-b", "labels: {}"), tmp_path=tmp_path)
    res2 = node_rules(lab2, "nat", netns)
    verified = netfilter.compute_change(res2, netfilter.parse_save(save(netns, "nat", backend), "nat"), res)
    ch = netfilter.apply_rules(res2, previous=res, backend=backend, verify=False)
    assert (ch.written, ch.deleted, ch.payload) == (verified.written, verified.deleted, verified.payload)
    assert ch.deleted and set(ch.written) < set(res2.chains)
    assert netfilter.observe_rules(netns, "nat", res2.chains, backend=backend) == res2.rules
    assert not netfilter.apply_rules(res2, previous=res2, backend=backend, verify=False).changed


@pytest.mark.parametrize("backend", BACKENDS)
def test_drift_is_seen_and_repaired(netns, backend):
    lab = lab_from()
    res = node_rules(lab, "nat", netns)
    netfilter.apply_rules(res, backend=backend)
    dnat = next(l for l in res.rules if "-j DNAT" in l)
    tool = "iptables-legacy" if backend == "legacy" else "iptables-nft"
    run_in_netns(netns, [f"/usr/sbin/{tool}", "-t", "nat", "-D", *shlex.split(dnat)[1:]])
    # A duplicated jump, as a second careless "-A PREROUTING" would make.
    run_in_netns(netns, [f"/usr/sbin/{tool}", "-t", "nat", "-A", "PREROUTING", "-j", "KUBE-SERVICES"])
    seen = netfilter.observe_rules(netns, "nat", res.chains, backend=backend)
    assert seen != res.rules
    problems = netfilter.diff_rules(res.rules, seen)
    assert f"missing: {dnat}" in problems
    ch = netfilter.apply_rules(res, backend=backend)
    assert ch.written == [dnat.split()[1]]
    assert ch.jumps  # the duplicate jump was removed
    assert netfilter.observe_rules(netns, "nat", res.chains, backend=backend) == res.rules


def test_failure_is_one_clear_line_and_changes_nothing(netns):
    bad = NatRules(netns=netns, table="nat", chains=("KUBE-SERVICES",), payload="",
                   rules=("-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j NO-SUCH-CHAIN",))
    with pytest.raises(ApplyFailed) as err:
        netfilter.apply_rules(bad)
    msg = str(err.value)
    assert netns in msg and "iptables-restore (nat) failed" in msg and "\n" not in msg
    assert "KUBE-SERVICES" not in save(netns, "nat", "")


def test_missing_namespace_is_apply_failed():
    res = NatRules(netns=f"nlsvc-{uuid.uuid4().hex[:6]}-gone", table="nat", chains=(), payload="", rules=())
    with pytest.raises(ApplyFailed):
        netfilter.apply_rules(res)



@pytest.mark.parametrize("backend", BACKENDS)
def test_probabilities_come_back_as_saved_probability_says(netns, backend):
    """kube-proxy writes 1/n as %0.10f; the kernel keeps a fraction of 2^31; iptables-save prints %.11f of it."""
    ns = range(2, 41)
    body = "\n".join(f"-A NETLAB-P -m statistic --mode random --probability {kube_probability(n)} -j RETURN"
                     for n in ns)
    restore(netns, f"*nat\n:NETLAB-P - [0:0]\n{body}\nCOMMIT\n", backend)
    lines = [l for l in save(netns, "nat", backend).splitlines() if l.startswith("-A NETLAB-P ")]
    assert lines == [saved_rule(f"-A NETLAB-P -m statistic --mode random --probability {kube_probability(n)} "
                                "-j RETURN") for n in ns]
    assert [l.split()[-3] for l in lines] == [saved_probability(kube_probability(n)) for n in ns]


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_chains_into_an_empty_table_start_with_zero_and_hold_the_plan(netns, backend, tmp_path):
    """plan/iptables.py's ZERO_FIRST: the restore starts with -Z, and the kernel holds exactly the plan."""
    res = node_rules(lab_from(many_services_topology("many", ZERO_FIRST_CHAINS // 2), tmp_path), "nat", netns)
    assert len(res.chains) >= ZERO_FIRST_CHAINS
    ch = netfilter.apply_rules(res, backend=backend)
    assert "\n-Z\n" in ch.payload and set(ch.written) == set(res.chains)
    lines = [l for l in save(netns, "nat", backend).splitlines() if l.startswith("-A ")]
    assert sorted(lines) == sorted(res.rules)


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_chains_into_a_table_holding_a_rule_leave_its_counters(netns, backend, tmp_path):
    """No -Z where the table holds a rule: someone's counters stay as they were."""
    tool = netfilter.tools(backend)[1]
    run_in_netns(netns, [tool, "--noflush", "--counters"],
                 input=b"*nat\n:SENTINEL - [0:0]\n[5:300] -A SENTINEL -j RETURN\nCOMMIT\n")
    res = node_rules(lab_from(many_services_topology("many", ZERO_FIRST_CHAINS // 2), tmp_path), "nat", netns)
    ch = netfilter.apply_rules(res, backend=backend)
    assert ch.written and "-Z" not in ch.payload.splitlines()
    counted = run_in_netns(netns, [netfilter.tools(backend)[0], "-c", "-t", "nat"]).stdout.decode()
    assert "[5:300] -A SENTINEL -j RETURN" in counted.splitlines()
    assert netfilter.observe_rules(netns, "nat", res.chains, backend=backend) == res.rules
