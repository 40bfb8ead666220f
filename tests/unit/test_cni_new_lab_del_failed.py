"""A new lab whose pod's CNI ADD fails and whose DEL fails too (fake plugins, fake kernel).

The ADD's DEL failed, the lab is rolled back: its rollback runs DEL again, then its nodes go, where alone its plugins
run, and its state with them: no later up or down runs DEL (``down`` says "not up"). The line said "the next up or
down runs DEL again" and nothing of the rollback's own DEL, whose failure left host-local's lease in the conflist's
own dataDir. Now it says the rollback runs DEL again, and the rollback's failure with what stays, to remove by hand.
"""

from __future__ import annotations

import pytest

from cni_fakes import cni_topo, cni_world, lab_of, up
from test_cni_reattach import Plugins

from netlab.errors import ApplyFailed
from netlab.kernel.fake import FakeKernel
from netlab.realize import state as state_mod

TOPO = cni_topo("fknw") + "  - {name: a, node: n1, ip: 10.244.0.2}\n"


class Once(Plugins):
    """Plugins whose ``once`` calls fail the first time only."""

    def __init__(self):
        super().__init__()
        self.once: set[tuple[str, str, str]] = set()

    def __call__(self, log, **kw):
        key = (kw["pod"], kw["plugin_path"].rsplit("/", 1)[-1], kw["command"])
        if key not in self.once:
            return super().__call__(log, **kw)
        self.once.discard(key)
        self.fail.add(key)
        try:
            return super().__call__(log, **kw)
        finally:
            self.fail.discard(key)


@pytest.fixture
def world(tmp_path, monkeypatch):
    plugins = Once()
    conflist = {"cniVersion": "1.0.0", "name": "net", "plugins": [
        {"type": "chain", "capabilities": {"ipRanges": True},
         "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases")}}]}
    with cni_world(tmp_path, monkeypatch, TOPO, plugins, conflist=conflist):
        yield lab_of(tmp_path), plugins, tmp_path


@pytest.mark.parametrize("leased", [True, False])
def test_a_new_labs_failed_add_and_del_say_the_rollbacks_del_and_what_stays(world, leased):
    """The lease is said to stay only when its file is there: an ADD refused before host-local leased anything (its
    range unreadable, its DEL refused too) left none, and the line named the planned address's file all the same."""
    lab, plugins, tmp_path = world
    plugins.fail |= {("a", "chain", "ADD"), ("a", "chain", "DEL")}
    if leased:  # as host-local leaves it: a file named by the address in <dataDir>/<network>
        (tmp_path / "leases" / "net").mkdir(parents=True)
        (tmp_path / "leases" / "net" / "10.244.0.2").write_text("cid\neth0")
    with pytest.raises(ApplyFailed) as exc:
        up(lab, FakeKernel())
    said = str(exc.value)
    assert said.startswith("pod a: CNI plugin chain ADD: failed (exit 1): no; then its DEL failed too: CNI plugin "
                           "chain DEL: failed (exit 1): no (the rollback runs DEL again); rolled back"), said
    assert "the next up or down" not in said  # the lab is gone: no down finds it
    tail = "; CNI DEL of pod a: CNI plugin chain DEL: failed (exit 1): no; the lab goes with its nodes"
    assert said.endswith(f"{tail}, but host-local's lease of 10.244.0.2 in {tmp_path}/leases/net stays (remove it by "
                         "hand)" if leased else f"{tail} and state directory, and what its plugins kept goes with "
                         "them"), said
    assert [c for p, c, _ in plugins.of("a") if p == "chain"] == ["ADD", "DEL", "DEL"]  # the ADD's, the rollback's
    assert state_mod.load_state(lab.name) is None


def test_a_new_labs_failed_add_whose_rollback_del_passes_says_no_more(world):
    lab, plugins, _ = world
    plugins.fail.add(("a", "chain", "ADD"))
    plugins.once.add(("a", "chain", "DEL"))  # the DEL after the ADD fails, the rollback's passes
    with pytest.raises(ApplyFailed) as exc:
        up(lab, FakeKernel())
    said = str(exc.value)
    assert "(the rollback runs DEL again); rolled back" in said and "CNI DEL of pod a" not in said, said
    assert [c for p, c, _ in plugins.of("a") if p == "chain"] == ["ADD", "DEL", "DEL"]
