"""The watcher's sockets after another command changed the lab (api/watch.Watcher._follow): it listens anew in
every namespace (one made again under its old name is another), and a change made by hand as it does so is
read by the next round, at once, not by the periodic check up to ``resync`` seconds later."""

from __future__ import annotations

from netlab.api.watch import Watcher
from netlab.kernel import events
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source

TEXT = "name: w\nnodes: [{name: n}]\npods:\n  - {name: a, node: n}\n  - {name: b, node: n}\n"
NAMES = ["w-underlay", "w-n", "w-a", "w-b"]  # every namespace of the lab


class _Kernel:
    """Notifications go to every socket open in the namespace at that moment, as rtnetlink sends them."""

    def __init__(self):
        self.open: list[_Sockets] = []

    def send(self, event):
        for sockets in self.open:
            sockets.queued.append(event)


class _Sockets:
    """A listener's sockets in the lab's namespaces; ``made`` runs as they are being opened (before they listen)."""

    def __init__(self, kernel, namespaces, made=lambda: None):
        self.kernel, self.namespaces, self.queued = kernel, sorted(namespaces), []
        made()
        kernel.open.append(self)

    def drain(self):
        out, self.queued = self.queued, []
        return out

    def close(self):
        self.kernel.open.remove(self)


def _watcher(monkeypatch, kernel, made):
    import types

    import netlab.api.watch_listen as listen_mod

    lab = resolve(validate_source(parse_yaml(TEXT, "t.yaml")))
    monkeypatch.setattr(listen_mod.kevents, "Listener", lambda ns: _Sockets(kernel, ns, made))
    monkeypatch.setattr(listen_mod.nsmod, "is_netns_mount", lambda name: True)
    w = Watcher(None, "w", lambda line: None)
    monkeypatch.setattr(w.kids, "track", lambda lab_, state_: None)
    w.listener = _Sockets(kernel, NAMES)
    return w, types.SimpleNamespace(resolved=lambda: lab, extra={})


def test_a_change_queued_on_the_old_sockets_as_the_watcher_follows_another_command_is_read_by_the_next_round(
        monkeypatch):
    """A route deleted in pod a after the round's last read, before _follow listens anew: its notification sits on
    the old sockets, and was thrown away with them (found by the periodic check only)."""
    kernel = _Kernel()
    w, state = _watcher(monkeypatch, kernel, lambda: None)
    kernel.send(events.Event("w-a", "route 10.0.0.0/24 deleted"))
    w._follow(state)
    assert w.pending == ["route 10.0.0.0/24 deleted in w-a"]
    assert kernel.open == [w.listener]  # the old sockets closed, the new ones listen


def test_a_change_made_while_the_new_sockets_open_is_queued_on_the_old_ones_and_read(monkeypatch):
    """The old sockets are read and closed once the new ones listen: a change as they open is on the old ones."""
    kernel = _Kernel()
    w, state = _watcher(monkeypatch, kernel, lambda: kernel.send(events.Event("w-b", "route 10.0.1.0/24 deleted")))
    w._follow(state)
    assert w.pending == ["route 10.0.1.0/24 deleted in w-b"]
    assert kernel.open == [w.listener]
