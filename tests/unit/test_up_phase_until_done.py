"""A fresh lab's state says phase ``creating`` until its `up` has finished, and ``up`` after (the fake kernel, fake CNI
plugins). It said ``up`` once the namespaces and their network were made, before the features started (the CNI
plugins' ADDs, the containers): an `up` killed there (SIGKILL at ``cni-adding``: the pods' records written, no plugin
run) left a lab in phase up that nobody was making, so `netlab list` named no killed up for it, as it does for an
up killed before; status said its drift alone. A kill leaves the state as it is on disk at that point: read there.
The real kill, `list` and `status`: tests/integration/test_killed_run_commands.py."""

from __future__ import annotations

from cni_fakes import one_pod_lab, up
from netlab.cni import lifecycle
from netlab.kernel.fake import FakeKernel
from netlab.lab.journal import Journal
from netlab.realize.state import load_state

lab = one_pod_lab("fkph")


def test_a_fresh_labs_state_says_creating_at_every_point_an_up_may_be_killed_and_up_once_it_finished(
        lab, monkeypatch):
    seen: list[tuple[str, str | None]] = []

    def on_disk(where: str) -> None:
        state = load_state(lab.name)
        seen.append((where, None if state is None else state.phase))

    monkeypatch.setattr(lifecycle.testhooks, "fault_point", on_disk)  # NETLAB_FAULT_POINT's named points
    hook = Journal._hook

    def counted(self, what):  # NETLAB_FAULT_AT's: each step or op, before its change
        on_disk(f"step {what}")
        return hook(self, what)

    monkeypatch.setattr(Journal, "_hook", counted)
    up(lab, FakeKernel())
    assert "cni-adding" in [where for where, _ in seen]
    # its last write, once all is done, is the first to say up: a kill at any point before leaves phase creating
    assert seen[-1] == ("state-renamed", "up"), seen[-4:]
    assert [(where, phase) for where, phase in seen[:-1] if phase not in (None, "creating")] == []
    assert load_state(lab.name).phase == "up"
