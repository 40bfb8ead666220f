"""One Service example of kube-proxy's own unit tests, ported: the whole nat payload, byte for byte.

kubernetes ``pkg/proxy/iptables/proxier_test.go``, ``TestInternalTrafficPolicyE2E``,
case "internalTrafficPolicy is cluster": ``golden/kube_proxy/*.yaml`` is its
Service and endpoints as a netlab topology, ``*.nat`` the nat table of its
``clusterExpectedIPTables``, verbatim. kube-proxy's ``NewFakeProxier`` uses the
mark ``0x4000`` and an iptables without ``--random-fully`` (a running
kube-proxy writes ``0x00004000`` and, on this machine, ``--random-fully``), and
``assertIPTablesRulesEqual`` compares after ``sortIPTablesRules`` (chains
KUBE-NODEPORTS, KUBE-SERVICES, then by name; each chain's rules in order): the
port renders with the former and compares after the latter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import services
from netlab.plan.iptables import chain_of

GOLDEN = Path(__file__).parent / "golden" / "kube_proxy"
FAKE_PROXIER_MARK = "0x4000"


def sort_iptables_rules(payload: str) -> str:
    """kube-proxy's sortIPTablesRules for one table: its declarations and rules, chains ordered alike."""
    lines = [line for line in payload.splitlines() if line and not line.startswith("#")]
    head, chains, rules = lines[0], [], []
    for line in lines[1:]:
        if line.startswith(":"):
            chains.append(line)
        elif line.startswith("-A "):
            rules.append(line)
    first = ("KUBE-NODEPORTS", "KUBE-SERVICES")

    def key(chain: str) -> tuple:
        return (0, first.index(chain), "") if chain in first else (1, 0, chain)

    chains.sort(key=lambda c: key(c[1:].split()[0]))
    order = [c[1:].split()[0] for c in chains]
    rules.sort(key=lambda r: order.index(chain_of(r)))  # stable: each chain keeps its order
    return "\n".join([head, *chains, *rules, "COMMIT"]) + "\n"


@pytest.mark.parametrize("case", ["internal_traffic_policy_cluster"])
def test_nat_payload_is_kube_proxys_own_golden(case):
    lab = resolve(load_topology(str(GOLDEN / f"{case}.yaml")))
    # A lab with Services also gets netlab's cluster DNS (kube-system/kube-dns), which the upstream
    # test's fake proxier does not have: only the test's own Service goes into the comparison.
    sps = [sp for sp in services.service_ports(lab) if sp.svc.namespace == "ns1"]
    rs = services.kube_nat(lab, sps, masq_mark=FAKE_PROXIER_MARK, random_fully=False)
    assert sort_iptables_rules(rs.payload("")) == (GOLDEN / f"{case}.nat").read_text()


def test_a_running_kube_proxy_writes_its_mark_with_eight_digits():
    """NewProxier: fmt.Sprintf("%#08x", 1<<14) pads eight digits after 0x; iptables-save prints 0x4000."""
    assert services.MASQ_MARK == "0x00004000"
