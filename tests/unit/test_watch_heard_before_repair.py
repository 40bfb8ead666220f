"""A change the watcher's repair mends is said by the repair's line, never taken for its echo (a fake kernel whose
notifications a fake listener queues as the real kernel would).

The watcher reads what the kernel reported after a repair with the repair's echo, and keeps it for the next round,
which says nothing when the lab is as planned (it was the echo). A change made after the round compared the lab
with the plan and before the repair read the lab was mended by that repair, but its notification came with the
echo: the next round found the lab as planned and said nothing, so no line said it (CI,
tests/integration/test_watch.py::test_a_bridge_port_state_set_by_hand_is_healed_at_once: the port set learning as
a repair of the VTEP's neighbour began, not said within 5 s). Now the repair hears what the kernel reported until
it read the lab, before it changes anything: those changes are its line's."""

from __future__ import annotations

import re
import types

from netlab.api import watch_listen, watch_repair
from netlab.api.topology import load
from netlab.api.watch import Watcher
from netlab.features import default_features
from netlab.kernel import events, rtnl
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.plan.resources import Neigh
from netlab.realize.state import load_state

LAB = "fkhr"
TOPO = f"""name: {LAB}
nodes:
  - {{name: n1}}
  - {{name: n2}}
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n2}}
"""
NODE = f"{LAB}-n1"
VTEP = "10.244.1.0"  # n2's flannel.1: PERMANENT in n1


class Listener:
    """The lab's notification sockets: what the kernel reported, queued until the watcher reads it."""

    def __init__(self, namespaces: list[str]):
        self.namespaces = sorted(namespaces)
        self.queued: list[events.Event] = []
        self.permanent: dict = {}

    def drain(self) -> list[events.Event]:
        out, self.queued = self.queued, []
        return out

    def close(self) -> None:
        pass


def test_a_change_made_as_a_repair_begins_is_said_by_the_repair_that_mends_it(state_root, tmp_path, monkeypatch):
    path = tmp_path / "t.yaml"
    path.write_text(TOPO)
    kernel = FakeKernel()
    kernel.close = lambda: None  # type: ignore[method-assign]
    loaded = load(str(path))
    features = [f for f in default_features() if f.name != "workload"]  # what the watcher's comparison judges
    lab_up.up(loaded.lab, kernel, features, loaded.source)
    listener = Listener(loaded.lab.netns_names())
    applied = kernel.apply

    def apply(ops, order=()):  # the kernel's own word on each change: a neighbour replaced is reported changed
        applied(ops, order)
        listener.queued += [events.Event(op.netns, f"neighbour {op.res.dst} changed") for op in ops
                            if isinstance(op.res, Neigh)]

    kernel.apply = apply  # type: ignore[method-assign]
    monkeypatch.setattr(watch_repair, "LiveKernel", lambda: kernel)
    monkeypatch.setattr(watch_listen, "SETTLE", 0)
    monkeypatch.setattr(Watcher, "features", lambda self, checked=False: features)
    monkeypatch.setattr(Watcher, "_held", lambda self, lab_, state_: ([], [], None))
    node = kernel.ns[NODE]
    (port,) = [x.name for x in node.links.values() if x.master == "cni0" and x.peer == (f"{LAB}-a", "eth0")]
    compared = watch_repair.drift

    def drift(state):
        # The round compares the lab with the plan (the neighbour demoted); then, before its repair reads the lab,
        # a hand sets pod a's bridge port learning (`bridge link set dev PORT state learning`)
        found = compared(state)
        node.links[port].port_state = "learning"
        listener.queued.append(events.Event(NODE, f"bridge port {port} learning"))
        return found

    monkeypatch.setattr(watch_repair, "drift", drift)
    lines: list[str] = []
    w = Watcher(str(path), LAB, lines.append)
    w.kids = types.SimpleNamespace(track=lambda *a: None)
    w.listener = listener  # type: ignore[assignment]
    # `ip neigh replace VTEP ... nud reachable` in n1: the watcher read the notification, and this round checks it
    mac, _ = node.neighs[("flannel.1", VTEP)]
    node.neighs[("flannel.1", VTEP)] = (mac, rtnl.NUD_REACHABLE)
    w._converge(load_state(LAB), [f"neighbour {VTEP} changed in {NODE}"])
    said = re.compile(r"saw: (?:[^;]*; )*?" + re.escape(f"bridge port {port} learning in {NODE}"))
    [line] = lines  # the repair's, which mended both
    assert said.search(line), line
    assert f"did: set port_state of link {port} in {NODE}" in line and f"replace neighbour {VTEP}" in line, line
    assert node.links[port].port_state == "forwarding" and node.neighs[("flannel.1", VTEP)][1] == rtnl.NUD_PERMANENT
    # What came after the repair read the lab, its echo, is checked once more by the next round: the lab is as
    # planned, nothing to say
    assert w.pending == [f"neighbour {VTEP} changed in {NODE}"], w.pending
    monkeypatch.setattr(watch_repair, "drift", compared)  # no hand any more
    w._converge(load_state(LAB), w.pending)
    assert len(lines) == 1, lines
