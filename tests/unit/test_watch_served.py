"""The watcher judges a lab's containers against the lab as `up` and `status` serve it (workload/terminal.py served):
a headless Service selecting a Completed/Error pod has its SRV records on the cluster DNS's dnsmasq command without
that pod there. Judged against the plain lab, the running dnsmasq's command "changed" at every check: the watcher
logged "a periodic check (container kube-dns/dnsmasq its command changed); did: nothing to change" every 10 s
(QA q10 1). No root: the state is a fake, the kernel comparison stood in for."""

from __future__ import annotations

import types

import netlab.api.watch_repair as watch_repair
import netlab.api.watch_restart as wr
from netlab.api.watch import Watcher
from netlab.realize.state import LabState
from netlab.workload import exits, terminal
from netlab.workload.containers import container_argv
from netlab.workload.lifecycle import RECORD_VERSION
from netlab.workload.tasks import COMMAND_CHANGED, EXITED

from test_terminal_endpoints import DONE, TOPO, lab_of, state_of


def test_a_terminal_pod_of_a_headless_service_changes_no_command_the_watcher_sees(monkeypatch):
    monkeypatch.setattr(exits, "exit_codes", lambda name, recs: {})
    records = state_of(lab_of(), {"done1": {}, "fail1": {}})  # both Never pods' containers exited
    state = LabState(lab="tm", topology=TOPO, extra=records.extra)
    served = terminal.served(state.resolved(), state)
    assert served.terminal == DONE
    dns = next(p for p in served.pods if p.name == "kube-dns")
    argv = container_argv(dns, dns.containers[0])  # what up started it with: no SRV record of done1 nor fail1
    plain = next(p for p in state.resolved().pods if p.name == "kube-dns")
    assert argv != container_argv(plain, plain.containers[0])  # the plain lab's: with them
    state.extra["workload"]["version"] = RECORD_VERSION
    state.extra["workload"]["pods"]["kube-dns"] = {"containers": {dns.containers[0].name: {"pid": 7, "argv": argv}}}

    def why_replace(crec, want, netns):  # the others run; done1's and fail1's exited (said by the first line)
        if crec is None:
            return None
        return COMMAND_CHANGED if crec.get("argv") != want else EXITED if crec["pid"] == GONE_RUN[0] else None

    monkeypatch.setattr(wr.workload, "why_replace", why_replace)
    monkeypatch.setattr(watch_repair, "drift", lambda state: [])
    lines: list[str] = []
    w = Watcher(None, "tm", log=lines.append, clock=lambda: 100.0)
    w.kids = types.SimpleNamespace(reaped_now=lambda: None, reap_untracked=lambda key, crec: None,
                                   code=lambda key, crec: "", exit_code=lambda key, crec: 0,
                                   ask_lab=lambda *a: 0, exited_at=lambda key, crec: 100.0)
    w.waiting = types.SimpleNamespace(hold=lambda waiting: None, restarted=lambda key: None)
    applied: list[object] = []
    monkeypatch.setattr(w, "_apply", lambda fn: applied.append(fn) or (_ for _ in ()).throw(AssertionError("apply")))
    w.said = {f"{p}/main": (GONE_RUN, "restartPolicy Never") for p in DONE}  # said by the watcher's first line
    monkeypatch.setattr(wr.tasks, "alive", lambda crec: crec.get("pid") != GONE_RUN[0])
    assert w._converge(state, []) is None
    assert applied == [] and lines == []


GONE_RUN = (4194303, 1)
