"""A converge of a running lab (an `up` of it, its phase up throughout) killed after its write-ahead is said so
(QA lf61 2): its state holds ``extra.converging`` from its first write to its last, with what its topology changes
(realize/converging.py), so that `list` and `status` say the up was killed, what it left unfinished and that
`up --lab L` finishes it (realize/interrupted.stalled); a run that finishes, or is rolled back, leaves none. The
real kill, list and status: tests/integration/test_status_cut_short_live.py."""

from __future__ import annotations

import pytest

from cni_fakes import one_pod_lab, up
from netlab.cni import lifecycle
from netlab.errors import ApplyFailed
from netlab.kernel.fake import FakeKernel
from netlab.lab.journal import Journal
from netlab.realize import converging, interrupted
from netlab.realize.state import load_state

lab = one_pod_lab("fkcv")


def test_a_converges_state_says_converging_at_every_point_it_may_be_killed_and_not_once_it_finished(
        lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)
    assert converging.KEY not in load_state(lab.name).extra  # a fresh lab's up: phase creating says it
    seen: list[tuple[str, object]] = []

    def on_disk(where: str) -> None:
        state = load_state(lab.name)
        seen.append((where, state.extra.get(converging.KEY) if state is not None else None))

    monkeypatch.setattr(lifecycle.testhooks, "fault_point", on_disk)
    hook = Journal._hook

    def counted(self, what):
        on_disk(f"step {what}")
        return hook(self, what)

    monkeypatch.setattr(Journal, "_hook", counted)
    up(lab, k)  # a repair: nothing of the topology changes
    assert seen[-1] == ("state-renamed", None), seen[-3:]
    first = [where for where, _ in seen].index("state-renamed")  # its write-ahead in place
    assert all(record is None for _, record in seen[:first]), seen  # before: the lab as its last run left it
    assert all(record == {"changes": []} for _, record in seen[first:-2]), seen
    assert seen[-2] == ("state-temp-written", {"changes": []})  # its last write not yet in place
    assert load_state(lab.name).phase == "up"


def test_a_converge_that_fails_is_rolled_back_without_the_mark(lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)

    def fail(where: str) -> None:
        if where == "repair-read":  # after its write-ahead, before any change
            assert converging.KEY in load_state(lab.name).extra
            raise ApplyFailed("injected")

    monkeypatch.setattr(lifecycle.testhooks, "fault_point", fail)
    with pytest.raises(ApplyFailed):
        up(lab, k)
    assert converging.KEY not in load_state(lab.name).extra


def test_the_changes_of_an_edit_in_words():
    old = {"name": "x", "pods": [{"name": "a", "node": "n1", "containers": [{"name": "main", "command": ["sleep"]},
                                                                             {"name": "side", "command": ["s"]}]},
                                  {"name": "b", "node": "n1"}, {"name": "c", "namespace": "x", "node": "n1"}],
           "services": [{"name": "web", "ports": [80]}], "network": {"mode": "vxlan"}}
    new = {"name": "x", "pods": [{"name": "a", "node": "n2", "containers": [{"name": "main", "command": ["top"]}]},
                                  {"name": "b", "node": "n1", "labels": {"app": "b"}}, {"name": "d", "node": "n1"}],
           "services": [{"name": "web", "ports": [81]}, {"name": "api"}], "network": {"mode": "bridge"}}
    said = converging.changes(old, new)
    assert said == ["pod a moved to node n2", "container a/main changed",
                    "container a/side taken out (its process may still run)", "pod b's labels changed",
                    "pod d added", "pod x/c removed", "Service web changed", "Service api added", "network changed"]
    assert converging.words(said) == ("pod a moved to node n2; container a/main changed; container a/side taken out "
                                      "(its process may still run); pod b's labels changed; pod d added; and 4 more "
                                      "changes")
    assert converging.changes(old, old) == [] and converging.words([]) == "a repair, no change of the topology"


def test_list_s_line_for_a_converge_killed_and_none_while_one_is_at_work_or_done(lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)
    state = load_state(lab.name)
    assert interrupted.stalled(state) is None
    state.extra[converging.KEY] = {"changes": ["container a/side taken out (its process may still run)"]}
    state.save()
    line = interrupted.stalled(load_state(lab.name))
    assert line is not None and line.startswith(f"lab {lab.name}: the `netlab up` that was changing it")
    assert "(killed), so the lab may not be as its state asks (unfinished: container a/side taken out (its process " \
           "may still run)); `" in line and line.endswith(f"up --lab {lab.name}` finishes it"), line
    monkeypatch.setattr(interrupted, "unheld", lambda lab_name: _held())  # an up at work holds the lock
    assert interrupted.stalled(load_state(lab.name)) is None


class _held:
    def __enter__(self):
        return False

    def __exit__(self, *exc):
        return False
