"""The watcher's repairs (a part of api/watch.Watcher, which holds these attributes and the other parts' methods):
a round's comparison with the plan and its repair by the same `up` a user would run (a failed one retried after
its back-off, one a plain up refuses said once), the apply of an edited topology file once the lab's lock is held,
and the words of what each did."""

from __future__ import annotations

import re
from typing import Callable, Sequence, TypeVar

from netlab.api import watch_repair
from netlab.api.watch_children import Children
from netlab.api.watch_file import FileWrites, changes
from netlab.api.watch_lines import dedupe, did_words, failed_key, saw_did, saw_words, summary
from netlab.api.watch_restart import served_lab
from netlab.cni import lifecycle
from netlab.cni.changed import AGAIN, drift_pod
from netlab.errors import LabBusy, NetlabError, TopologyError
from netlab.feature import Feature, Unmendable, split_check_fix
from netlab.kernel import events as kevents
from netlab.lab import up as lab_up
from netlab.lab.restart import Backoff
from netlab.model.lab import Lab
from netlab.realize.lab_lock import lab_lock_holder, lab_lock_stamp
from netlab.realize.state import LabState, load_state

T = TypeVar("T")


class Converging:
    """Last among api/watch.Watcher's bases: the methods below that only raise are the other parts' (Watcher's
    own, RestartPolicy's, Listening's, OtherCommands'), which come before it."""

    path: str | None
    lab_name: str
    log: Callable[[str], None]
    clock: Callable[[], float]
    stop: bool
    repairs: Backoff
    kids: Children
    writes: FileWrites
    file_id: watch_repair.FileId
    retry_at: float | None
    pending: list[str]
    deferred: list[str]
    failed: list[str]
    lock_stamp: tuple[int, int, int] | None
    refused: tuple[str, ...] | None
    holds: dict[str, float]  # pod -> when its re-attach's hold ends (its chain failed the CHECK of its fresh ADD)
    listener: kevents.Listener | None

    def features(self, checked: bool = False) -> list[Feature]:
        raise NotImplementedError

    def _apply(self, work: Callable[[], T]) -> T:
        raise NotImplementedError

    def _file_id(self) -> watch_repair.FileId:
        raise NotImplementedError

    def _live_state(self) -> LabState | None:
        raise NotImplementedError

    def _follow(self, state: LabState) -> None:
        raise NotImplementedError

    def _say_taken_down(self) -> None:
        raise NotImplementedError

    def _follows(self, state: LabState) -> bool:
        raise NotImplementedError

    def _replaced(self, state: LabState) -> bool:
        raise NotImplementedError

    def _held(self, lab: Lab, state: LabState) -> tuple[list[str], list[str], float | None]:
        raise NotImplementedError

    def _relisten(self, lab: Lab, made: Sequence[str], own: Sequence[str] = (),
                  heard: Sequence[kevents.Event] = ()) -> list[str]:
        raise NotImplementedError

    def failed_starts(self, lab: Lab, state: LabState) -> list[str]:
        raise NotImplementedError

    def _converge(self, state: LabState, saw: list[str]) -> float | None:
        """Compare with the plan and repair; returns when the next held container may restart. The containers are
        judged against the lab as up serves it (workload/terminal.py served): a headless Service's SRV records on
        the cluster DNS's command leave out its Completed/Error pods there, as up and status leave them out."""
        lab = served_lab(state)
        t0 = self.clock()
        self.holds = {pod: end for pod, end in self.holds.items() if end > t0}
        # A pod whose chain fails as right after its own fresh ADD: nothing up mends (said once, by the repair that
        # found it); one that fails otherwise while its re-attach is held back: repaired once its hold is over.
        drift = [line for line in watch_repair.drift(state)
                 if not isinstance(line, Unmendable) and drift_pod(line) not in self.holds]
        restart, held_lines, next_due = self._held(lab, state)
        for line in held_lines:
            self.log(line)
        if not drift and not restart:
            self.retry_at = self.refused = None
            return next_due
        refused = watch_repair.refused(state, drift)  # a plain up refuses the lab: its repair would fail each round
        if refused is not None:
            self.retry_at = None
            if lab_lock_holder(self.lab_name) is not None or lab_lock_stamp(self.lab_name) != self.lock_stamp:
                self.pending = dedupe(saw + self.pending)  # another command's work half done: looked at once it is
                return next_due  # done (the repair's lock waits for it; this line takes none)
            if self.refused != (seen := tuple(dedupe(drift + restart))):  # said once, and again when it changes
                self.refused = seen
                self.log(saw_did(f"{saw_words(saw)} ({'; '.join(seen[:3])}{' ...' if len(seen) > 3 else ''})",
                                 [], refused))
            return next_due
        self.refused = None
        # What the plan comparison found, when the notification alone does not say it.
        found = [line for line in dedupe(drift + restart)
                 if not any(line.startswith(x) or x.startswith(line.split(" exited")[0] + " exited") for x in saw)]
        found_words = f" ({'; '.join(found[:3])}{' ...' if len(found) > 3 else ''})" if found else ""
        if self.retry_at is not None and self.clock() < self.retry_at:
            self.deferred = dedupe(self.deferred + saw)  # a failed repair waits for its back-off
            return next_due
        read, want = state, lab  # read again by the repair once it holds the lab: another command may change it
        waited: list[str] = []  # whom the repair waited for, said in its line
        # What the kernel reported until the repair read the lab (read then, in the repair's thread, while this one
        # waits for it): changes the repair mends, said by its line. Read after it with its echo, one was taken for
        # the echo, and the next round, finding the lab as planned, said nothing (a bridge port set learning as a
        # repair of a neighbour began was mended by it, and said by no line)
        heard: list[kevents.Event] = []

        def hear() -> None:
            if self.listener is not None:
                heard.extend(self.listener.drain())

        try:
            with lifecycle.held_back(self.lab_name, self.holds):  # those pods alone: the rest is repaired now
                state, lab, repaired = self._apply(lambda: watch_repair.repair(
                    read, want, self._follows, bool(restart), self.features(checked=True), waited, hear))
        except lab_up.LabGone:
            self._say_taken_down()
            self.stop = True
            return None
        except NetlabError as exc:
            now = self._live_state()  # replaced while the repair waited for the lab's lock: refused, as it should
            if now is not None and self._replaced(now):
                return None
            saw = dedupe(saw + summary(heard))  # said by this line, and by its retry's
            self.repairs.restarted("repair", self.clock())
            wait = self.repairs.wait("repair", self.clock())
            self.retry_at = self.clock() + wait
            self.deferred = saw
            self.log(saw_did(f"{saw_words(saw)}{found_words}", waited, f"repair failed: {exc}; retry in {wait:.1f}s"))
            return next_due
        self.retry_at = None
        self.repairs.forget("repair")
        if repaired is None:  # another command changed the lab meanwhile, and left nothing to repair
            self._follow(state)
            return next_due
        done = repaired
        took = self.clock() - t0
        state = load_state(self.lab_name) or state
        lab = served_lab(state)  # as repaired: a pod that has just terminated is out of its Services
        self.kids.track(lab, state)
        # a deletion this repair answered is said with it; its own (a moved pod's old namespace) is not
        saw = saw + self._relisten(lab, done.created_netns, done.remade_netns, heard=heard)
        unmended = unmended_lines(done)
        did = f"{self._did(done, 'nothing to change', saw + found, hide=unmended)} in {took:.2f}s"
        did += self._hold_stuck(unmended)
        self.log(saw_did(f"{saw_words(saw)}{found_words}", waited, did))
        _, held_lines, next_due = self._held(lab, state)
        for line in held_lines:
            self.log(line)
        return next_due

    def _hold_stuck(self, unmended: list[str]) -> str:
        """An apply's words for the pods whose CNI chain fails the CHECK of their own fresh ADD, which that apply
        re-attached (``unmended``: what it left that no later up mends; an earlier apply's, AGAIN, is no new
        failure): each pod's re-attach for another failure now backs off, as a failed repair of that pod alone (the
        watcher re-ADDed such pods every resync, forever); '' when there is none. The watcher's first apply's too:
        its hold began only with the next round's repair, which re-attached the pod again at once; worded as a
        round's repair, ``repair failed:``, there too (it said ``failed:`` alone)."""
        stuck = [line for line in unmended if AGAIN not in line]
        if not stuck:
            return ""
        pods = [m.group(1) for line in stuck if (m := re.match(r"pod (\S+): ", line))]
        for pod in pods:
            self.repairs.restarted(f"cni {pod}", self.clock())
            self.holds[pod] = self.clock() + self.repairs.wait(f"cni {pod}", self.clock())
        wait = max((self.holds[pod] for pod in pods), default=self.clock()) - self.clock()
        # what mends a CHECK's failure (up's lines end with it, status says it): said once, after the pods
        split = [split_check_fix(line) for line in stuck]
        fix = "".join(f"; {said}" for said in dict.fromkeys(f for _, f in split if f))  # each plugin's once
        stuck = [line for line, _ in split]
        return (f"; repair failed: {'; '.join(stuck[:3])}{' ...' if len(stuck) > 3 else ''}; retry in {wait:.1f}s"
                f" (of pod{'s' if len(pods) > 1 else ''} {', '.join(pods)} alone, for a failure other than this){fix}")

    def _file_changed(self) -> None:
        """Apply the file as it is once the lab's lock is held (watch_repair.apply_file): read before, the
        reading could be stale by then (another edit, another command's change of the lab)."""
        assert self.path is not None
        reading = watch_repair.Reading(self.path, self.writes.writing)
        before = self.file_id
        try:
            done = self._apply(lambda: watch_repair.apply_file(reading, self.lab_name, self.features()))
        except lab_up.LabGone:
            self._say_taken_down()
            self.stop = True
            return
        except (TopologyError, NetlabError) as exc:
            self.file_id = reading.file_id if reading.file_id is not None else self._file_id()
            self.writes.watch(self.path)  # the folders its include globs look in now
            changed = saw_words(changes(self.path, before, self.file_id))
            if reading.loaded is None and not isinstance(exc, LabBusy):  # the file did not load
                if reading.halfway or self.writes.writing():  # a save began after the look: read it once done
                    self.file_id = None
                    return
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.log(saw_did(changed, reading.waited, f"nothing, it is not valid ({first})"))
            else:
                self.log(saw_did(changed, reading.waited, f"apply failed: {exc}"))
            return
        if reading.halfway:  # nothing applied: the file is read again once that save is done (its close event)
            self.file_id = None
            return
        self.file_id = reading.file_id
        self.writes.watch(self.path)  # the folders its include globs look in now
        changed = saw_words(changes(self.path, before, self.file_id))
        loaded = reading.loaded
        assert loaded is not None
        if done is None:
            self.log(saw_did(f"{self.path} now names lab {loaded.lab.name}", reading.waited, f"nothing (this watcher "
                          f"keeps lab {self.lab_name}: stop it and start one for the new name)"))
            return
        state = load_state(self.lab_name)
        answered = []
        if state is not None:
            running = served_lab(state)
            self.kids.track(running, state)
            answered = self._relisten(running, done.created_netns, done.remade_netns)  # a move's deletion: its own
        self.log(saw_did(saw_words([changed, *answered]), reading.waited, self._did(done, "nothing to change")))
        if state is not None:  # what it could not start is tried again at once, as the kubelet's first retry
            self.pending = dedupe(self.pending + self.failed_starts(running, state))

    def _did(self, done: lab_up.UpResult, nothing: str, said: Sequence[str] = (), hide: Sequence[str] = ()) -> str:
        """:func:`watch_lines.did_words`, a container that still cannot start said once, not by every repair
        after (but by the restart that tried it again: its line saw ``container POD/C failed to start``)."""
        tried = {m.group(1) for line in said if (m := re.fullmatch(r"container (\S+) failed to start", line))}
        told = [line for line in self.failed if failed_key(line) not in tried]
        self.failed = list(done.failed)
        return did_words(done, nothing, said, [*told, *hide])  # hide: said by the caller


def unmended_lines(done: lab_up.UpResult) -> list[str]:
    """What an apply left as it was that no later up mends (not a container's start, which failed_starts tries
    again): a CNI chain whose CHECK fails the pod's own fresh ADD."""
    return [line for line in done.failed if failed_key(line) == line]
