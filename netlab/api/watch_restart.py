"""Which of a watched lab's exited containers ``netlab up --watch`` restarts now, and what it says of the rest.

A container whose process is gone is restarted as its pod's ``restartPolicy``
allows (workload/policy.py) once the kubelet's back-off (lab/restart.py) has
passed; the exit status OnFailure reads is of that very run (api/watch_children.py
keeps it, or the lab's echo server). A container stopped, changed or running
outside its pod is replaced at once, whatever the policy. The watcher (api/watch.py)
runs the loop; this is its part that decides, and the containers feature that asks it.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from netlab.api.watch_children import Children, Run, run_of
from netlab.api.watch_lines import state_words
from netlab.feature import Feature, ModuleFeature, StartResult
from netlab.lab.restart import Backoff
from netlab.model.lab import Lab, PodInfo
from netlab.model.topology import Container
from netlab.errors import NetlabError
from netlab.realize.state import LabState, load_state
from netlab.workload import lifecycle as workload
from netlab.workload import crashloop, policy, tasks
from netlab.workload.terminal import served


def served_lab(state: LabState) -> Lab:
    """The lab ``state`` records as ``up`` and ``status`` serve it: its terminal pods (Completed, Error) out of
    every Service's endpoints, so the cluster DNS's dnsmasq command (its headless SRV records) is the one up
    starts. The watcher judges its containers against this one: against the plain lab, that command differed
    from the running one's as long as a terminal pod sat in a headless Service's selector (QA q10 1)."""
    return served(state.resolved(), state)


class Checked:
    """A feature whose preflight already passed in this process (a repair's: the first apply ran it)."""

    def __init__(self, feature: Feature):
        self.feature = feature
        self.name = feature.name

    def preflight(self, lab: Lab) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.feature, name)


class RestartPolicy:
    """The watcher's restart decisions (a part of api/watch.Watcher, which holds these attributes)."""

    lab_name: str
    clock: Callable[[], float]
    kids: Children  # the containers' processes, and how each exited
    restarts: Backoff
    said: dict[str, tuple[Any, str]]  # pod/container -> (its run, what was logged of that run being held)
    waiting: crashloop.Record  # the containers held back by their back-off, for `get pods` (CrashLoopBackOff)

    def hold(self, pod: PodInfo, c: Container, crec: dict[str, Any], why: str, commit: bool = True) -> str | None:
        """Why an exited container stays down now (None: restart it)."""
        key = f"{pod.name}/{c.name}"

        def exit_code() -> int | None:
            code = self.kids.exit_code(key, crec)  # of this very run, never an earlier one's
            if code is None and c.command:  # it exited unseen by this watcher: the lab's echo server may know
                code = self.kids.ask_lab(self.lab_name, key, crec)
            return code

        if why == tasks.COMMAND_CHANGED and commit:
            # A new pod's container: the kubelet keys its back-off by the pod and the container's spec, so the
            # old command's crash loop is not the new one's (its first exit restarts it at once).
            self.restarts.forget(key)
        alive = tasks.alive(crec)
        kept = policy.held(pod.spec.restart_policy, why, alive, exit_code)
        if kept and why == tasks.SANDBOX_REMADE and commit:
            # The repair stops it in its dead sandbox and its line says so: its exit, read next, is this
            # watcher's own doing, not news to say again ("exited; did: nothing (restartPolicy Never)")
            self.said[key] = ((crec.get("pid"), crec.get("start")), kept.split(":")[0])
        if kept or not policy.gone(why, alive):
            return kept  # held; or stopped, changed, running elsewhere: replaced at once, whatever the policy
        exited = self.kids.exited_at(key, crec)  # the kubelet's FinishedAt: the back-off counts from the exit
        wait = self.restarts.wait(key, self.clock(), exited)
        if wait > 0:
            return f"back-off {wait:.1f}s"
        if commit:
            self.restarts.restarted(key, self.clock(), exited)
            self.waiting.restarted(key)  # no longer in CrashLoopBackOff (recorded after the apply)
        return None

    def failed_starts(self, lab: Lab, state: LabState) -> list[str]:
        """The containers an apply could not start that may be tried again now, as the next round's words: the
        kubelet's first retry is at once (back-off 0 s, then 10, 20, 40 s ...). No process of theirs exits to wake
        the loop, so after an apply that left nothing else to read (a changed command, the first apply) they waited
        for the periodic check (up to ``--resync`` s). Nothing is committed here: the round's repair restarts them."""
        out = []
        for pod, c, crec in workload.containers(lab, state):
            if not crec:
                continue
            why = workload.why_replace(crec, workload.container_argv(pod, c), pod.netns)
            if why == tasks.FAILED_START and self.hold(pod, c, crec, why, commit=False) is None:
                out.append(f"container {pod.name}/{c.name} {state_words(why, False)}")
        return out

    def _held(self, lab: Lab, state: LabState) -> tuple[list[str], list[str], float | None]:
        """(containers to restart now, lines about held ones not said yet, when the next back-off ends)."""
        now_due, held, next_due = self.held_parts(lab, state)
        return now_due, [f"saw: {what}; did: nothing ({reason})" for what, reason in held], next_due

    def exited_before(self) -> dict[str, Run]:
        """The containers of the running lab that had exited when the watcher started (its first apply not
        begun): pod/container -> that run."""
        try:
            state = load_state(self.lab_name)
            lab = served_lab(state) if state is not None else None
        except NetlabError:  # the first apply says it
            return {}
        if state is None or lab is None:
            return {}
        return {f"{pod.name}/{c.name}": run_of(crec) for pod, c, crec in workload.containers(lab, state)
                if crec and workload.why_replace(crec, workload.container_argv(pod, c), pod.netns) == policy.EXITED}

    def held_before(self, lab: Lab, state: LabState, before: dict[str, Run]) -> str:
        """The watcher's first line's words for the containers ``before`` names that its first apply left held
        (a Never pod that exited minutes ago, an OnFailure one that completed): said there, once, with the exit
        code, then not by a later round's line as news, nor by its pidfd (a zombie init has not reaped yet)."""
        parts = self.held_parts(lab, state, before)[1]
        self.kids.untrack([what.split(" ")[1] for what, _ in parts])
        return f" ({'; '.join(f'{what}, held: {why}' for what, why in parts)})" if parts else ""

    def held_parts(self, lab: Lab, state: LabState, before: dict[str, Run] | None = None
                   ) -> tuple[list[str], list[tuple[str, str]], float | None]:
        """:meth:`_held`'s, each held container not said yet as (what it did, why it is held); ``before``: only
        those whose run is the one named there, held for good (:meth:`held_before`), nothing else touched."""
        now_due, lines, next_due = [], [], None
        waiting: dict[str, tuple[float, float]] = {}  # pod/container -> (when its back-off ends, the delay)
        first = before is not None
        if not first:
            self.kids.reaped_now()  # exits not read yet (during a repair): their status first
        for pod, c, crec in workload.containers(lab, state):
            if first and (before or {}).get(f"{pod.name}/{c.name}", False) != run_of(crec or {}):
                continue
            if not first:
                self.kids.reap_untracked(f"{pod.name}/{c.name}", crec or {})
            why = workload.why_replace(crec, workload.container_argv(pod, c), pod.netns)
            key = f"{pod.name}/{c.name}"
            if why is None:
                self.said.pop(key, None)
                continue
            reason = self.hold(pod, c, crec or {}, why, commit=False) if crec else None
            what = state_words(why, tasks.alive(crec or {}))  # an exit's code is said; a stopped one has none
            code = self.kids.code(key, crec or {}) if what == "exited" else ""  # this run's, said only if known
            if what == "exited" and c.command and crec and self.kids.exit_code(key, crec) is None:
                self.kids.ask_lab(self.lab_name, key, crec)  # exited unseen (before the watcher): the echo server's
                code = self.kids.code(key, crec)
            if reason is None:
                now_due.append(f"container {key} {what}{code}")
                continue
            if reason.startswith("back-off") and first:
                continue
            if reason.startswith("back-off"):
                wait = self.restarts.wait(key, self.clock(), self.kids.exited_at(key, crec or {}))
                due = self.clock() + wait
                next_due = due if next_due is None else min(next_due, due)
                waiting[key] = (time.time() + wait, self.restarts.delay(key) or 0.0)
                reason = f"back-off: restart in {wait:.1f}s"
            # Once per run's exit: a container that exits at once after each restart is never seen running
            # (why None) in between, yet each of its exits is a new one, said before its restart
            said = ((crec or {}).get("pid"), (crec or {}).get("start")), reason.split(":")[0]
            if self.said.get(key) != said:
                self.said[key] = said
                lines.append((f"container {key} {what}{code}", reason))
        if not first:  # (the back-offs skipped: the record of those in CrashLoopBackOff stays as it is)
            self.waiting.hold(waiting)
        return now_due, lines, next_due


class HeldWorkload(ModuleFeature):
    """The containers feature, restarting exited containers only as restartPolicy and back-off allow."""

    def __init__(self, watcher: RestartPolicy):
        super().__init__(workload)
        self.watcher = watcher

    def start(self, lab: Lab, state: LabState, early: Any = None) -> StartResult:
        kwargs = {"early": early} if early is not None else {}
        return workload.start(lab, state, hold=self.watcher.hold, **kwargs)
