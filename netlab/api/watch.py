"""``netlab up --watch``: keep a lab converged until Ctrl-C, the articles' controller loop.

Desired state is the file (and what ``netlab impair`` set since), or, for
a running lab picked by name (``up --watch --lab NAME``), its saved topology,
with no file to follow; current state is the kernel. The loop sleeps in ``select`` on:

- the lab's rtnetlink and nf_tables notifications (netlab.kernel.events):
  a change is checked against the plan at once (``status``, ~0.1 s), and
  drift is repaired by the same ``up`` a user would run;
- a pidfd per container, readable when it exits (an echo container's: its own thread's in the lab's echo
  server, readable when the server stops serving it, as `netlab break endpoint-pod-down` does): the pod's
  ``restartPolicy``
  and the kubelet's back-off decide (api/watch_restart.py). The watcher makes
  itself a child subreaper, so the containers it starts are its children
  and their exit status is known; it reaps them. Those a plain ``up``
  started before it are init's: their exit status comes from the kernel's
  taskstats records (netlab.kernel.taskstats), where the kernel has them.
  The containers it holds back are written to the lab's state folder
  (netlab.workload.crashloop), so `get pods` says CrashLoopBackOff as kubectl does;
- the topology file's folder and the folders its ``include:`` globs look in (inotify: api/watch_file.py): a save
  is read once its writer closes the file (or renames another over it), never halfway; and a timer: the file's
  stat, and the included files' (and which files the globs match), is looked at twice a second (a change
  is re-applied; an invalid file is reported and the lab kept as it is), and a
  full ``status`` runs every ``resync`` seconds as the backstop for what
  sends no notification (iptables-legacy rules, a sysctl other than
  forwarding/rp_filter, a deleted namespace, a file).

Each action is one line: what it saw, what it did. A repair that fails
(rolled back by ``up``) is retried after a back-off that doubles, as a
container restart is. The first apply is plain ``up``'s, in the main thread: a
signal then rolls it back as it does plain ``up``'s. Once it watches, SIGINT and SIGTERM wait for the repair
in progress to finish (it runs in a thread of its own, which signals do not interrupt), then the loop ends,
its exited children reaped, and the lab stays up as the last repair left it (exit 0, as a daemon asked to
stop); an edit of the file that no apply took (saved while a repair ran) is said by the last line, not applied;
the loop also ends when the lab is taken down.
One watcher per lab (realize/lab_lock.WatcherLock): a second is refused before it applies anything.
Another command holding the lab's lock (``up`` in another terminal, ``break``) is waited for: what the kernel
says meanwhile is its work half done, not drift, and so is what it woke the watcher with once it let the lab go
(a command that took the lock since the watcher's last look: the lock file's stat, _held_since); a wait of an
apply for the lab's lock is said in that apply's
line (watch_repair). A watcher of a file stops, saying so, once another ``up --reconfigure`` made its lab from
another file: that file no longer describes the lab; a watcher of the built-in default, once its lab is another
topology saved without a file (a dict given to the library with the default lab's name).
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from netlab import signals
from netlab.api import lifecycle, watch_repair
from netlab.api.topology import load, load_running
from netlab.api.watch_file import WRITE_WAIT, FileWrites, changes
from netlab.api.watch_children import Children, become_subreaper, reap_exited_children
from netlab.api.watch_converge import Converging, unmended_lines
from netlab.api.watch_lines import dedupe, saw_words, summary
from netlab.api.watch_listen import SETTLE, Listening
from netlab.api.watch_others import OtherCommands
from netlab.api.watch_restart import Checked, HeldWorkload, RestartPolicy, served_lab
from netlab.cni.changed import AGAIN
from netlab.errors import NetlabError, down_command
from netlab.feature import Feature
from netlab.features import default_features
from netlab.kernel import events as kevents
from netlab.lab.restart import Backoff
from netlab.lab.up import UpResult
from netlab.model.lab import Lab
from netlab.realize.state import LabState, load_state, up_command
from netlab.realize.lab_lock import WatcherLock, lab_lock_stamp
from netlab.services import stale
from netlab.workload import crashloop

FILE_POLL = 0.5  # seconds between looks at the topology file
RESYNC = 10.0  # seconds between full status checks
FIRST_CHECK = "its first check"  # what a line saw that the comparison right after the first apply found

Log = Callable[[str], None]
T = TypeVar("T")


@dataclass
class Watcher(RestartPolicy, Listening, OtherCommands, Converging):
    path: str | None
    lab_name: str
    log: Log
    backoff_base: float = 10.0
    resync: float = RESYNC
    write_wait: float = WRITE_WAIT  # seconds an edit is left unread while its writer keeps the file open
    # Watch the running lab's saved topology (`up --watch --lab NAME`): no file to follow (``path`` None), and
    # what changes it (`up -t FILE`, `netlab impair`) is read from the lab's state each round.
    saved: bool = False
    clock: Callable[[], float] = time.monotonic
    stop: bool = False
    stopped_by: int | None = None  # the signal that set ``stop``
    armed: Callable[[], None] | None = None  # called once the first apply is done: signals then set ``stop``
    taken_down: bool = False  # the loop ended because a `down` took the lab
    replaced: str | None = None  # the loop ended because another `up` made the lab from another file: its last line
    restarts: Backoff = field(init=False)
    repairs: Backoff = field(init=False)

    def __post_init__(self) -> None:
        self.restarts = Backoff(self.backoff_base)
        self.repairs = Backoff(self.backoff_base)
        self.kids = Children(lambda: self.clock(), self.lab_name)  # the containers' processes, and how each exited
        self.said: dict[str, tuple[Any, str]] = {}  # pod/container -> (its run, what was logged of it being held)
        self.listener: kevents.Listener | None = None
        self.file_id: watch_repair.FileId = None
        self.writes = FileWrites(lambda: self.clock(), self.write_wait)  # whether the watched file is being written
        self.retry_at: float | None = None
        self.holds: dict[str, float] = {}  # pods whose re-attach waits (watch_converge.py)
        # Notifications read with a repair's echo, for the next round: a deletion still to repair, and the rest,
        # which that round checks once more: it says nothing when the lab is as planned (it was the echo), and
        # names them when it is not (a change made by hand while the repair ran)
        self.pending: list[str] = []
        # notifications seen while a failed check or repair waits for its back-off: said by the retry's line
        self.deferred: list[str] = []
        self.failed: list[str] = []  # the containers that could not start, as the last apply's line told them
        self.lock_stamp: tuple[int, int, int] | None = None  # the lab's lock file when last looked at (_held_since)
        # What the last round found that a plain up refuses (a conflist edited while its pods run): said once, not
        # by every resync after (watch_repair.refused)
        self.refused: tuple[str, ...] | None = None
        # The containers held back by their back-off, in backoff.json for `get pods` and `status`
        self.waiting = crashloop.Record(self.lab_name, self._still_up, self.log)

    def _still_up(self) -> bool:
        try:
            return self._live_state() is not None
        except (NetlabError, OSError):
            return False

    # --- the loop --------------------------------------------------------------------------

    def features(self, checked: bool = False) -> list[Feature]:
        """The lab's features, containers held by restartPolicy; ``checked``: the machine was checked
        already (the first apply ran the doctor's checks), so repairs skip the features' preflight,
        which tries the kernel in a throwaway namespace (~0.2 s: a repair must take well under 1 s)."""
        # The lab's own features (netlab.features), the containers' held by restartPolicy.
        out: list[Feature] = [HeldWorkload(self) if f.name == "workload" else f for f in default_features()]
        return [Checked(f) for f in out] if checked else out

    def _apply(self, work: Callable[[], T]) -> T:
        """One up (``work``), in a thread of its own, waited for whole: SIGINT/SIGTERM (delivered to the main
        thread) only set ``stop``, so the lab is never left half-repaired; up's own handlers, which
        roll back, are for the main thread only."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["done"] = work()
            except BaseException as exc:  # noqa: BLE001 - raised again in the loop's thread
                box["error"] = exc

        worker = threading.Thread(target=run, name="netlab-watch-apply")
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
        self.waiting.write()  # the containers it restarted are no longer waiting
        if "error" in box:
            raise box["error"]
        done: T = box["done"]
        return done

    def _file_id(self) -> watch_repair.FileId:
        return watch_repair.file_id(self.path)

    def start(self) -> Lab:
        become_subreaper()
        stale.watching(self.lab_name)  # a live flow's un-DNATed entry, deleted at each apply, said once
        self.kids.listen_for_exits()
        if self.path is not None and not self.saved:
            self.writes.watch(self.path)
        self.file_id = self._file_id()  # before the file is read: a change meanwhile is applied by the next look
        before = self.exited_before()  # those still held after the first apply are said by the first line
        loaded = load_running(self.lab_name) if self.saved else load(self.path)
        was = load_state(self.lab_name)  # before the first apply: whether its up said the neighbour warning
        # The first apply is plain up's, in this thread: a signal meanwhile rolls it back as it does plain
        # up's (Interrupted: exit 130 or 143), and nothing is watched. Once it is done the lab is up, and a
        # signal only ends the loop (``armed``: watch() sets its handlers).
        done = lifecycle.up(loaded.lab, source=loaded.source, features=self.features())
        if self.armed is not None:
            self.armed()
        state = load_state(self.lab_name)
        assert state is not None
        running = served_lab(state)  # as up serves it, its Completed/Error pods terminal
        self.kids.track(running, state)
        self._relisten(running, [])  # subscribed in every namespace, then each one's links dumped (link_echo's)
        self.lock_stamp = lab_lock_stamp(self.lab_name)
        # Then the lab compared with the plan: a change since the apply shows there (made before the sockets
        # listened, it sent them nothing; made as they began to, its notification matches the links' dump, which
        # holds it already: no change to link_echo), one after it as a notification; the first round repairs it
        # at once. The carriers the kernel's link watch brings up late are no change to link_echo either. (The
        # watcher waited for them and dropped what it heard until the links stood still, up to 2 s, as its
        # apply's echo: a change made meanwhile waited for the periodic check.)
        if self._drifted(state):
            self.pending.append(FIRST_CHECK)
        # Said once the watcher listens: what happens from now on is seen. Containers held already (a Never pod
        # that exited before) are said here, once, not by a later event's round as if they had exited then.
        held = self.held_before(running, state, before)
        # A pod this apply re-attached whose chain fails the CHECK of that fresh ADD: its hold begins now, as after
        # a repair's (it began with the next round, whose repair re-attached the pod again for another failure)
        stuck = [line for line in unmended_lines(done) if AGAIN not in line]
        whole = "it was up and as its saved topology says" if self.saved else "it was up and as the file says"
        did = self._did(done, whole, hide=stuck) + self._hold_stuck(stuck) + self._neighbours(loaded.lab, was, done)
        if self.saved:
            self.log(f"saw: lab {self.lab_name} from {loaded.origin}, no file to re-read (`netlab up -t FILE` and "
                     f"`netlab impair` change it); did: {did}; watching{held}")
        else:
            self.log(f"saw: lab {self.lab_name} from {loaded.origin}; did: {did}; watching{held}")
        self.pending = dedupe(self.pending + self.failed_starts(running, state))  # tried again at once
        return loaded.lab

    def _neighbours(self, lab: Lab, was: LabState | None, done: UpResult) -> str:
        """The first line's words for up's neighbour-table warning, as plain ``up`` says it (not again when the up
        before said these very words of a lab this size), recorded as said (probe/budget_said): the watcher said
        none, nor recorded one, and the next ``up`` said it as if new."""
        from netlab.probe import budget_said
        from netlab.probe.neighbours import neighbour_budget_warning

        budget = neighbour_budget_warning(lab)
        again = bool(budget) and not done.fresh and was is not None and budget_said.repeated(was.topology, lab, budget)
        budget_said.record(self.lab_name, budget)
        return f"; warning: {budget}" if budget and not again else ""

    def _drifted(self, state: LabState) -> bool:
        """Whether the kernel differs from the plan, or could not be read (a namespace deleted as it was read, a
        full disk ...): the first round, which reads it again, says why."""
        try:
            return bool(watch_repair.drift(state))
        except Exception:  # noqa: BLE001 - as a round's check (run): said by the line of the round that retries it
            return True

    def run(self) -> None:
        """Until ``stop`` is set (by SIGINT/SIGTERM) or the lab is taken down."""
        self.start()
        next_resync = self.clock() + self.resync
        next_file = self.clock() + FILE_POLL
        next_due: float | None = None
        while not self.stop:
            now = self.clock()
            write_due = self.writes.due()
            deadline = min(d for d in (next_resync, next_file, next_due, self.retry_at, write_due) if d is not None)
            assert self.listener is not None
            seen, ready = self.listener.wait(0 if self.pending else deadline - now, self.kids.fds() + self.writes.fds())
            if self.stop:
                break
            since = self._held_since()
            self.kids.read_exits()  # every wake (at least every FILE_POLL): the other exits are dropped
            saw, self.pending = dedupe(self.pending + summary(seen)), []
            for key in self.kids.reaped(ready):
                saw.append(f"container {key} exited{self.kids.code(key)}")
            self.kids.reap_orphans()  # after the containers' own exits: theirs are read by their pidfds
            now = self.clock()
            if set(ready) & set(self.writes.fds()) and self.writes.read():
                next_file = now  # its writer closed it (or renamed another over it): looked at now
            if now >= next_file or (write_due is not None and now >= write_due):
                next_file = now + FILE_POLL
                if self.writes.ready(self.file_id, self._file_id()):  # written whole, or stood still since
                    state = self._live_state()
                    if state is None:
                        self._say_taken_down()
                        break
                    if self._replaced(state):
                        break
                    self._file_changed()
                    continue
            full = now >= next_resync or (self.retry_at is not None and now >= self.retry_at)
            due = next_due is not None and now >= next_due
            if not (saw or full or due):
                continue
            other = self._wait_for_other() or since or self._held_since()  # let go since the wake
            if self.stop:
                break
            if other and self._file_id() != self.file_id:
                # The file changed while another command held the lab: its apply takes the lab's lock, waits for it
                # and says whom it waited for; what woke this round is checked after it
                self.pending = dedupe(saw + self.pending)
                next_file = self.clock()
                continue
            if seen or other:
                time.sleep(SETTLE)
                # with what woke it: the local-table routes an address deleted took come after its notification
                saw += [w for w in summary(seen + self.listener.drain()) if w not in saw]
            if other:  # what came meanwhile was its work: the check below says what it left to do
                saw = [f"{other} changed the lab"]
            for key in self.kids.reaped_now():  # a container that exited while the rest was read
                saw.append(f"container {key} exited{self.kids.code(key)}")
            if due and not saw:
                saw.append("a container's back-off is over")
            state = self._live_state()
            if state is None:
                self._say_taken_down()
                break
            if self._replaced(state):
                break
            if other:
                self._follow(state)
            next_resync = self.clock() + self.resync
            saw, self.deferred = dedupe(self.deferred + saw), []
            try:
                next_due = self._converge(state, saw)
            except Exception as exc:  # noqa: BLE001 - a reader that failed, a full disk ...: logged
                if self._live_state() is None:
                    self._say_taken_down()
                    break
                self.repairs.restarted("repair", self.clock())
                wait = self.repairs.wait("repair", self.clock())
                self.retry_at = self.clock() + wait
                self.deferred = saw
                self.log(f"saw: {saw_words(saw)}; did: nothing, the check failed "
                         f"({type(exc).__name__}: {exc}); retry in {wait:.1f}s")

    def _live_state(self) -> LabState | None:
        """The lab's state; None once it is gone, or while a ``down`` is deleting the lab (it says so in the
        state before it deletes anything, and removes the state last): what fails then is the lab going, not
        a fault."""
        state = load_state(self.lab_name)
        return None if state is None or state.phase == "deleting" else state

    def _follow(self, state: LabState) -> None:
        """After another command changed the lab: its containers' processes, and sockets in its namespaces (one
        made again under its old name is another namespace: listen anew to all). What the old sockets queued is
        sorted as after a repair: a change by hand in it (a route deleted in a pod as this runs) is read by the next
        round at once, not by the periodic check ``resync`` seconds later."""
        lab = served_lab(state)
        self.kids.track(lab, state)
        self._relisten(lab, lab.netns_names())  # deletions it made again were that command's to answer

    def unapplied(self) -> str:
        """The last line's words for an edit of the watched file that no apply took (its save came while a repair
        ran, or as the signal came: the loop ends once a signal came, it starts no apply): '' when none."""
        now = self._file_id()
        if self.path is None or self.saved or now == self.file_id:
            return ""
        what = ", ".join(changes(self.path, self.file_id, now))  # the topology file, or a file it includes
        return f"; {what} since its last apply, not applied (`{up_command(self.path)}` applies it)"

    def _say_taken_down(self) -> None:
        self.taken_down = True
        self.log(f"saw: lab {self.lab_name} was taken down; did: stop watching")

    def close(self) -> None:
        stale.watching(self.lab_name, on=False)
        self.waiting.close()  # nobody restarts them now: `get pods` says how they exited
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        self.kids.close()
        self.writes.close()
        reap_exited_children()


def watch(path: str | None, lab_name: str, log: Log, backoff_base: float = 10.0, resync: float = RESYNC,
          saved: bool = False) -> None:
    """Apply the file (``saved``: the running lab's saved topology, ``path`` None; a signal meanwhile rolls it
    back, as plain up's: Interrupted), then run the loop until
    SIGINT/SIGTERM/SIGHUP, which let a repair in progress finish and end it: the lab stays up, and the watcher ends
    as a daemon asked to stop does (systemd's stop, a CI job's cancel, `timeout`), its line naming the
    signal, returning normally (exit 0)."""
    w = Watcher(path, lab_name, log, backoff_base=backoff_base, resync=resync, saved=saved)
    old: dict[int, Any] = {}

    def stop(signum: int, frame: object) -> None:
        w.stop = True
        w.stopped_by = w.stopped_by or signum

    def arm() -> None:  # a SIGINT the program's parent ignored stays ignored, as up's (signals.handled)
        old.update({sig: signal.signal(sig, stop) for sig in signals.STOPPING  # SIGHUP too: a closed terminal
                    if signal.getsignal(sig) is not signal.SIG_IGN})

    w.armed = arm
    with WatcherLock(lab_name):  # a second watcher of the lab is refused here, before anything is applied
        try:
            w.run()
        finally:
            w.close()
            for sig, handler in old.items():
                signal.signal(sig, handler)
    if w.stopped_by:  # the watcher's end (exit 0): also a signal the program kept whose exception was swallowed
        signals.taken()
    if w.taken_down:
        log(f"stopped watching lab {lab_name}: it is down")
    elif w.replaced is not None:
        log(w.replaced)
    else:
        by = f" ({signal.Signals(w.stopped_by).name})" if w.stopped_by else ""
        log(f"stopped watching lab {lab_name}{by}{w.unapplied()}; it stays up (`{down_command(lab_name)}` "
            "takes it down)")
