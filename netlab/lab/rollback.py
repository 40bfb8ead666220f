"""Taking a failed or interrupted `up` back (the half of :mod:`netlab.lab.up` that runs when it fails).

A fresh lab goes entirely. A running lab loses only what this run did: the journal's ops are undone, last
first; the namespaces the run made are deleted; the state is put back as the lab's last good run left it;
and what the kernel dropped with an address the run took away (its routes, neighbour and FDB entries) is
added again, but only what the namespace held when the run first read it: a rollback is not a repair.
A pod the run had begun to make anew, whose old namespace it had deleted, is made again from the state put back
(lab/remake.py), with its old address and its containers. What cannot come back (a pod or node the run had begun
to remove, a pod the kernel refused to make again) is named in the error.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any

from netlab import signals
from netlab.workload import reconfigure
from netlab.errors import netlab_command
from netlab.feature import Feature, put_back, roll_back, stop_made
from netlab.impair.stray import put_back_alone
from netlab.kernel import testhooks
from netlab.kernel.base import Kernel
from netlab.lab.journal import Journal, put_back_dropped
from netlab.lab.ownership import kernel_links
from netlab.lab.remake import make_again
from netlab.lab.teardown import delete_namespaces, stop_features, teardown
from netlab.model.lab import Lab
from netlab.plan.hand_qdisc import HandQdisc
from netlab.realize.attachments import attached_lab
from netlab.realize.converging import KEY as CONVERGING
from netlab.realize.state import ADDRESSES, LabState
from netlab.workload.terminal import terminal_pods


class Interrupted(signals.Kept):
    """SIGINT/SIGTERM/SIGHUP arrived while changing the kernel (raised once the change is rolled back).

    A KeyboardInterrupt, not an Exception: to a program calling netlab (a test runner, a loop with ``except
    Exception``) it is the Ctrl-C it was, which stops it, not one failure among others. The CLI says its line
    and exits with its exit_code, as for a NetlabError: 128 + the signal's number, as a shell reports a
    program the signal ended (130 for SIGINT, 143 for SIGTERM: what `timeout`, systemd and CI runners send; 129 SIGHUP).
    Kept: up's handler keeps the signal in the run's journal, whose next step raises it again if a finalizer
    swallowed this one (:meth:`Rollback._signals_interrupt`). A Lab method hands it to a Python caller as the
    caller's disposition of the signal says: its handler's, or, uncaught, the signal's own end (api/interrupted.py).
    """

    exit_code = 128 + signal.SIGINT

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = 128 + signum


class Rollback:
    """What a run of `up` records so that it can be taken back, and the taking back (`_Up` is one)."""

    lab: Lab
    kernel: Kernel
    features: list[Feature]
    journal: Journal
    early: dict[str, Any]  # the features' work begun early (Feature.start_early), aborted first
    created: list[str]  # the namespaces this run made
    had: set[str]  # the namespaces the state named made before the run (a pod's deleted by hand: made again)
    moved: list[tuple[str, str]]  # (netns, why) of the pods made anew
    moved_away: list[str]  # old namespaces of pods made anew, deleted (or about to be); after a rollback, not back
    running_before: dict[str, Any]  # what ran in those pods before the run, by feature (feature.running_of)
    not_started: list[str]  # what of the pods a rollback made again could not start (their containers)
    intended: list[str]  # the namespaces this run named in the state before making them
    removing: list[str]  # namespaces the run began to remove
    not_restored: list[str]  # what the kernel dropped and a rollback could not add again
    not_undone: tuple[str, ...] = ()  # the run's changes whose take-back the kernel refused, in words
    half_done: list[str]  # what the features' start left half done and a rollback could not bring back
    kept_before: dict[str, Any]  # each feature's before_run handle (a running lab's run): what put_back compares with
    not_put_back: list[str]  # what the features changed for the run's topology and could not put back
    logs_gone: tuple[str, ...] = ()  # the containers ("pod/c") whose logs from before the run a restart of it took
    alone: tuple[str, ...] = ()  # of a hand's root qdisc the run deleted, what did not come back (in words)
    left: list[str]  # what the rollback's own stops said (a CNI DEL that failed, what its plugins leave)
    held_before: dict[str, set[tuple]]  # keys of what each namespace held when the run first read it
    before: tuple[Any, str | None, str, Any]  # the state's topology, source, phase, addresses before the run
    again: str = ""  # the `up` that puts back what the rollback could not (:meth:`_up_again`)

    def _up_again(self, state: LabState | None) -> str:
        """The `up` that puts back what a rollback of the running lab of ``state`` could not: `up --lab L`, or
        `up -t FILE --reconfigure` when its pods keep a conflist edited since (a plain `up` refuses it then:
        workload.reconfigure.up_again)."""
        try:
            self.again = reconfigure.up_again(state) if state is not None else ""
        except Exception:  # the words only (an unreadable state or conflist is said where it is read)
            self.again = ""
        return self.again or netlab_command(f"up --lab {self.lab.name}")

    def _not_back(self) -> str:
        """What a rollback could not bring back: the namespaces the run had begun to remove (a pod or node
        the topology no longer has) are gone, or their containers stopped; so are the old namespaces of pods
        it made anew that the rollback could not make again; and what the kernel dropped that could not be added
        again."""
        out, again = "", self.again or netlab_command(f"up --lab {self.lab.name}")
        if self.removing:
            names = ", ".join(n.removeprefix(self.lab.name + "-") for n in self.removing)
            them = "them" if len(self.removing) > 1 else "it"
            out = f", but for {names}, which it had begun to remove (`{again}` makes {them} again)"
        if self.moved_away:  # a pod made anew: its old namespace went first, and the kernel refused it again
            names = ", ".join(n.removeprefix(self.lab.name + "-") for n in self.moved_away)
            out += (f"{',' if not out else ' and'} but for pod {names}, which it had begun to make anew: its old "
                    f"namespace is gone (`{again}` makes it again, with its old address)")
        if self.not_started:
            out += (f"{',' if not out else ' and'} but for {'; '.join(self.not_started)}, in the pods it made again "
                    f"(`{again}` starts them)")
        if self.half_done:  # a CNI pod whose re-attach the run had begun: detached
            out += f"{',' if not out else ' and'} but for {'; '.join(self.half_done)}"
        if self.not_undone:  # the run's change stays: the lab's plan put back asks otherwise
            out += (f"{',' if not out else ' and'} but for {'; '.join(self.not_undone)}, which the kernel would not "
                    f"take back (`{again}` repairs it)")
        if self.not_restored:
            out += (f"{',' if not out else ' and'} but for {'; '.join(self.not_restored)}, which the kernel "
                    f"dropped and could not be added again (`{again}` repairs it)")
        if self.not_put_back:  # a container's command as before that could not start again, a file not written
            out += (f"{',' if not out else ' and'} but for {'; '.join(self.not_put_back)}, as it put back what the "
                    f"run had changed (`{again}` repairs it)")
        if self.alone:  # a hand's classes and filters: no `up` makes them (they are no plan's)
            out += f"{',' if not out else ' and'} but for {'; '.join(self.alone)}"
        if self.logs_gone:  # what they printed before the run: no `up` brings it back
            many = len(self.logs_gone) > 1
            out += (f"{',' if not out else ' and'} but for the logs container{'s' if many else ''} "
                    f"{', '.join(self.logs_gone)} had before the run, which went when the run restarted "
                    f"{'them' if many else 'it'}")
        return out

    def _left(self) -> str:
        """What the rollback's stops said, after the rest: a pod's CNI DEL that failed again and what its plugins
        leave (a new lab's rollback runs the pods' DEL, then its nodes go: no later DEL can run, the words say what
        stays and that it is removed by hand; a running lab keeps the pod's record for the next up or down)."""
        return "".join(f"; {line}" for line in self.left)

    def _signals_interrupt(self) -> contextlib.AbstractContextManager[None]:
        """SIGTERM behaves like SIGINT while changing the kernel: unwind and roll back. The journal keeps the
        signal too, so that its next step raises it again if a finalizer swallowed the first raise."""
        def stop(signum: int, frame: object) -> None:
            self.journal.stopped.append(signum)
            raise_interrupted(signum, frame)

        return signals.handled(stop)

    def _rollback(self, state: LabState, fresh: bool, tag: str) -> None:
        """Undo a failed run: a fresh lab goes entirely; a running one loses only what this run did."""
        with signals.handled(signal.SIG_IGN):  # a second Ctrl-C waits for the rollback
            for feature in self.features:
                if feature.name in self.early:
                    feature.abort_early(self.early.pop(feature.name))
            if fresh:
                self.journal.applied.clear()
                # Everything goes: the sockets the run holds to its namespaces first, whose descriptors the tags'
                # reads need at the open-files limit (they are opened again if asked for)
                self.kernel.close()
                self.left += teardown(self.kernel, self.features, state, tag, said=True).problems
                return
            hand = [op.res for op in self.journal.applied if op.verb == "del" and isinstance(op.res, HandQdisc)
                    and op.netns not in self.created]
            refused = self.journal.undo(skip_netns=set(self.created))
            # a hand's root qdisc the kernel would not take again: put_back_alone says it, with what hung under it
            self.not_undone = tuple(words for op, words in refused if not isinstance(op.res, HandQdisc))
            self.alone = tuple(put_back_alone(self.kernel, hand)) if hand else ()
            touched = self.journal.touched - set(self.created)
            # A namespace made again for a pod the lab had (its sandbox deleted by hand): only what runs in it goes,
            # not what the pod had before the run (its containers in the old sandbox, records, logs). A pod moved
            # had all of it stopped by the run itself: what the run made of it goes whole.
            again = [n for n in self.created if n in self.had and n not in {name for name, _ in self.moved}]
            self.left += stop_features(self.features, state, [n for n in self.created if n not in again])
            for feature in self.features:
                stop_made(feature, state, again)
            for feature in self.features:  # what a start left half done in the namespaces the run did not make
                self.half_done += roll_back(feature, state)
            delete_namespaces(self.kernel, self.created)
            for name in self.created:
                state.netns.pop(name, None)
                kernel_links(state).pop(name, None)
            for name in self.moved_away:  # deleted before the failure (unless the failure came first): made below
                if not self.kernel.netns_mounted(name):
                    state.netns.pop(name, None)
            for name in self.intended:  # named ahead, never made (the run stopped before it): no namespace
                if state.netns.get(name) == "intent" and not self.kernel.netns_mounted(name):
                    state.netns.pop(name, None)
            state.topology, state.source, state.phase, addresses = self.before  # as its last good run left it
            state.extra.pop(CONVERGING, None)  # the run is over: not a converge killed halfway
            if addresses is None:
                state.extra.pop(ADDRESSES, None)
            else:
                state.extra[ADDRESSES] = addresses
            self.not_restored = put_back_dropped(self.kernel, state, touched, self.held_before)
            self.not_put_back = self._put_back(state)
            state.save(best_effort=True)  # a full disk must not stop a rollback
            if self.moved_away:  # the pods it had begun to make anew, as the last good run had them
                self.moved_away, self.not_started = make_again(self.kernel, self.features, state, tag,
                                                               self.moved_away, self.running_before)

    def _put_back(self, state: LabState) -> list[str]:
        """What the features' start changed for the run's topology (a container's command, the cluster DNS's
        records, a pod's file), put back as the topology the state holds again asks (Feature.put_back), in the
        namespaces the rollback neither deleted nor makes again; what could not be, one line each. Every save of
        the state meanwhile is best effort, as the rollback's own (a full disk must not stop it)."""
        if not any(getattr(f, "put_back", None) for f in self.features):
            return []
        skip = set(self.created) | set(self.removing) | set(self.moved_away) | {n for n, _ in self.moved}
        try:
            lab = attached_lab(state.resolved(), state)
            lab = lab.with_terminal(terminal_pods(lab, state))
        except Exception as exc:  # a saved topology that no longer resolves: nothing to compare with
            return [f"what the run changed of the lab's containers and files (the topology put back: {exc})"]
        out: list[str] = []
        was, state.tearing_down = state.tearing_down, True
        try:
            with testhooks.quiet():  # the run's fault point, passed again, is not the rollback's
                for feature in self.features:
                    try:
                        out += put_back(feature, lab, state, self.lab, self.kept_before.get(feature.name), skip)
                    except Exception as exc:  # one feature's failure is said; the others still put back theirs
                        out.append(f"what the run changed of {feature.name} ({type(exc).__name__}: {exc})")
        finally:
            state.tearing_down = was
        # a feature's handle that names containers whose logs went (workload/put_back.py: Before.gone)
        self.logs_gone = tuple(cid for feature in self.features
                               for cid in getattr(self.kept_before.get(feature.name), "gone", None) or ())
        return out


def raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}; rolled back", signum)
