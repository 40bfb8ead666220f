"""kube-proxy's nftables table is not read back while nothing but netlab committed in the node (root).

A 2-node lab in nftables mode, its Service with an endpoint on each node. After an `up` that found nothing to
change, the next `up` and `status` read no table (`nft -j list table`, counted by a wrapper in this process and
its forked readers): the nodes are at the generation the last read or transaction left them at
(kernel/nftgen.py). One endpoint removed: `up` writes kube-proxy's partial sync without reading, and the
kernel's own view (`nft -j list table`, read fresh) is the plan's, and connections reach the endpoint left
only. A rule added by hand (one more commit) is read, said as drift and taken away by `up`.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import in_netns, lab_down_here, state_path, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPO = """\
name: {name}
cluster: {{kubeProxyMode: nftables}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: client, node: n1}}
  - {{name: web-1, node: n1, labels: {{app: web}}}}
  - {{name: web-2, node: n2, labels: {{app: {label}}}}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: 10.96.0.20
    ports: [{{port: 80, targetPort: 8080}}]
"""


@pytest.fixture
def reads(monkeypatch, tmp_path):
    """Every `nft -j list table` of kube-proxy's table netlab makes from now on (forked readers too)."""
    from netlab.kernel import nft

    log = tmp_path / "reads"
    log.write_text("")
    real = nft.list_table

    def counted(netns, family, table):
        if table == "kube-proxy":
            with open(log, "a") as fh:
                fh.write(f"{netns}\n")
        return real(netns, family, table)

    monkeypatch.setattr(nft, "list_table", counted)

    def taken() -> list[str]:
        got = log.read_text().split()
        log.write_text("")
        return got
    return taken


def kernel_listing(ns: str) -> tuple[str, ...]:
    """The table as the kernel holds it now, in the plan's words."""
    from netlab.realize.nftables import listing

    return listing(json.loads(in_netns(ns, "nft", "-j", "list", "table", "ip", "kube-proxy", check=True).stdout))


def answers(lab: str, times: int = 6) -> set[str]:
    from netlab import Lab

    got = set()
    for _ in range(times):
        res = Lab(lab).exec("client", ["curl", "-s", "-m", "3", "http://10.96.0.20:80/"])
        assert res.returncode == 0, res
        got.add(json.loads(res.stdout.strip().splitlines()[-1])["pod"])
    return got


def test_up_and_status_read_no_table_nothing_else_changed(tmp_path, reads):
    from netlab import Lab

    name = unique_lab("nw")
    path = write_topology(tmp_path, TOPO.format(name=name, label="web"))
    nodes = [f"{name}-n1", f"{name}-n2"]
    try:
        Lab.up(path)
        Lab.up(path)  # read, as the fresh up's other tables came after its transaction
        assert os.path.exists(state_path(name, "nft-written.json"))
        reads()
        assert Lab(name).status(path).ok and Lab.up(path).last_up.ok
        assert reads() == []  # nothing committed since: nothing read
        assert answers(name) == {"web-1", "web-2"}

        # web-2 leaves the Service: the partial sync, written from what netlab knows, no read
        write_topology(tmp_path, TOPO.format(name=name, label="other"))
        done = Lab.up(path).last_up
        assert done.ok and reads() == []
        os.unlink(state_path(name, "nft-written.json"))  # status reads both tables: the kernel's own, as planned
        assert Lab(name).status(path).ok and sorted(reads()) == nodes
        assert answers(name) == {"web-1"}
        assert Lab.up(path).last_up.ok and sorted(reads()) == nodes  # no file: up reads them, known once more
        assert Lab(name).status(path).ok and reads() == []

        # someone's rule: one more commit in n1; read there (only there), drift, and up takes it away
        in_netns(nodes[0], "nft", "add", "rule", "ip", "kube-proxy", "services", "counter", check=True)
        st = Lab(name).status(path)
        assert not st.ok and any("services" in line for line in st.drift), st.drift
        assert reads() == [nodes[0]]
        assert Lab.up(path).last_up.ok
        assert not any("counter" in line and "services" in line for line in kernel_listing(nodes[0]))
        assert Lab(name).status(path).ok
    finally:
        lab_down_here(name)
