"""With a user's conflist, a node whose last pod went keeps its plugins' bridge (and the pods' gateway address on
it): the bridge plugin never deletes it (cn61, lf61d's follow-up). get nodes and graph named no gateway there, as
on a node that never had a pod, for nothing recorded which nodes had one. The lab's state records the devices its
plugins keep on each node (cni/attach.note_devices, before each ADD); the running lab's nodes with such a device
are its nodes with the plugins' side, a pod or not. A node that never had a pod has none, as before."""

from __future__ import annotations

from pathlib import Path

from cni_fakes import cni_topo, cni_world, lab_of, up
from netlab import graph
from netlab.api import views
from netlab.feature import ModuleFeature
from netlab.cni import lifecycle
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import state as state_mod
from test_cni_reattach import Plugins

CONFLIST = {"cniVersion": "1.0.0", "name": "net", "plugins": [
    {"type": "chain", "bridge": "lfbbr0", "isGateway": True, "capabilities": {"ipRanges": True}}]}
PODS = "  - {name: a, node: n1, ip: 10.244.0.2}\n"


def _gateways(lab_name: str) -> tuple[dict[str, str | None], dict[str, str]]:
    lab = state_mod.load_state(lab_name).resolved()
    boxes = {b.id: b.label for g in graph.build(lab).groups for b in g.boxes}
    sides = {n: next(v for k, v in boxes.items() if "cni0" in k and f"_{n}_" in k) for n in ("n1", "n2", "n3")}
    return {n.name: n.cni0 for n in views.nodes(lab)}, sides


def test_a_node_whose_last_pod_went_keeps_its_plugins_gateway_in_get_nodes_and_graph(tmp_path, monkeypatch):
    monkeypatch.setattr(views, "_created", lambda netns: None)
    monkeypatch.setattr(views, "_missing", lambda *a: None)
    with cni_world(tmp_path, monkeypatch, cni_topo("fkpl", nodes=3) + PODS + "  - {name: b, node: n2}\n",
                   Plugins(), conflist=CONFLIST):
        k = FakeKernel()
        up(lab_of(tmp_path), k)
        Path(tmp_path / "t.yaml").write_text(cni_topo("fkpl", nodes=3) + PODS)  # b taken out: its DEL runs
        up(lab_of(tmp_path), k)
        cni0, sides = _gateways("fkpl")
        assert cni0 == {"n1": "10.244.0.1/24", "n2": "10.244.1.1/24", "n3": None}, cni0  # n3 never had a pod
        assert sides["n2"].startswith("made by the CNI plugins") and sides["n3"].startswith("nothing yet"), sides
        teardown.down("fkpl", k, [ModuleFeature(lifecycle)])
