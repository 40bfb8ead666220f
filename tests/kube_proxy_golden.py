"""kube-proxy's own golden payloads (kubernetes pkg/proxy/iptables/proxier_test.go), ported: see
tests/unit/test_kube_proxy_golden.py. Shared with the root fidelity test, which tables the result."""

from __future__ import annotations

from pathlib import Path

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import services
from netlab.plan.iptables import chain_of

GOLDEN = Path(__file__).parent / "unit" / "golden" / "kube_proxy"
FAKE_PROXIER_MARK = "0x4000"  # NewFakeProxier's masqueradeMark


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


def port_nat(case: str, namespace: str = "ns1") -> str:
    """netlab's nat payload for the case's topology, as the fake proxier would render it, sorted alike.

    A lab with Services also gets netlab's cluster DNS (kube-system/kube-dns), which the upstream
    test's fake proxier does not have: only the test's own Service goes into the comparison.
    """
    lab = resolve(load_topology(str(GOLDEN / f"{case}.yaml")))
    sps = [sp for sp in services.service_ports(lab) if sp.svc.namespace == namespace]
    rs = services.kube_nat(lab, sps, masq_mark=FAKE_PROXIER_MARK, random_fully=False, node=lab.nodes[0].name)
    return sort_iptables_rules(rs.payload(""))


# --- nftables mode (kubernetes pkg/proxy/nftables/helpers_test.go) ------------------------

NFT_OBJECT_ORDER = {"table": 10, "chain": 9, "rule": 8, "set": 7, "map": 6, "element": 5}


def sort_nftables_transaction(tx: str) -> str:
    """kube-proxy's sortNFTablesTransaction: no blank or # lines; by object kind, then name;
    rules keep their order, other lines of one object sort by their text."""
    lines = [line for line in tx.split("\n") if line and not line.startswith("#")]

    def before(li: str, lj: str) -> bool:
        wi, wj = li.split(" "), lj.split(" ")
        if len(wi) < 5 or len(wj) < 5:
            return False
        if wi[1] != wj[1]:
            return NFT_OBJECT_ORDER.get(wi[1], 0) >= NFT_OBJECT_ORDER.get(wj[1], 0)
        if wi[4] != wj[4]:
            return wi[4] < wj[4]
        if wi[1] == "rule":
            return False
        return li < lj

    # sort.SliceStable with a less function: a stable insertion order, as Go's does it
    out: list[str] = []
    for line in lines:
        i = len(out)
        while i > 0 and before(line, out[i - 1]):
            i -= 1
        out.insert(i, line)
    return "\n".join(out)


def port_nft(case: str, namespaces: tuple[str, ...]) -> str:
    """netlab's nftables transaction for the case's node, as the fake proxier would write it, sorted alike."""
    from netlab.plan import nftables

    lab = resolve(load_topology(str(GOLDEN / f"{case}.yaml")))
    sps = [sp for sp in services.service_ports(lab) if sp.svc.namespace in namespaces]
    table = nftables.kube_proxy_table(lab, lab.nodes[0], sps, mark=FAKE_PROXIER_MARK)
    return sort_nftables_transaction("\n".join(table.transaction()))
