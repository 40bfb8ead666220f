"""Bring a lab up, or converge a running one to its topology: the controller's reconcile.

The plan is the desired state, kernel snapshots the current one, and only the difference is applied
(realize/diff.py, realize/repair.py). A fresh namespace is not read: it holds nothing yet, so everything of it
is made in one batch.

A run either completes or is taken back: every op goes through a :class:`~netlab.lab.journal.Journal`; on any
failure (or SIGINT/SIGTERM) its ops are undone, last first, and the namespaces it made are deleted, so an object
that existed before the run is never removed by its rollback, and a failed repair leaves the lab as it found it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from netlab import signals
from netlab.realize.attachments import attached_lab, check_cni_change, mark_gone_sandboxes, remade_line, remade_pods
from netlab.errors import ApplyFailed, NetlabError, OwnershipConflict, down_command, from_file_way, open_files
from netlab.kernel import kill, testhooks
from netlab.kernel.base import Kernel
from netlab.kernel.threads import side_by_side
from netlab.feature import Feature, add_deleted_chains, before_run, deleted_chains_lines, running_of
from netlab.lab import collector
from netlab.lab.up_converge import Converging, followed
from netlab.realize.elsewhere import refuse_elsewhere
from netlab.lab.journal import Journal
from netlab.lab.ownership import KERNEL_LINKS, kernel_links, create_netns, namespaces_to_create, owned, \
    tag_for
from netlab.lab.reading import netns_sysctls
from netlab.lab.taken import containers_ran, left_alone_line, taken_line
from netlab.lab.rollback import Interrupted, Rollback, raise_interrupted
from netlab.lab.teardown import delete_namespaces, stop_features
from netlab.model.lab import Lab, resolve
from netlab.plan.build import Plan, build_plan
from netlab.plan.sysctls import DEVCONF_SYSCTLS, RESTORED, to_restore
from netlab.realize.state import ADDRESSES, LabState, check_source, load_state, still_up
from netlab.cni import conf as C, edited, host_writes
from netlab.realize import backend, cni_path, converging, nft_written, owner, tags
from netlab.realize.lab_list import forget
from netlab.realize.lab_lock import LabLock
from netlab.workload.terminal import terminal_pods

Progress = Callable[[str, int, int], None]


@dataclass
class UpResult:
    lab: str
    created_netns: list[str] = field(default_factory=list)
    removed_netns: list[str] = field(default_factory=list)
    # Namespaces this run deleted and made again (a pod moved to another node, or readdressed): their deletion is
    # its own work, which `up --watch` must not say it saw
    remade_netns: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)  # repairs, and what features did (restarted a container ...)
    operations: int = 0
    warnings: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # the features' changes the kernel refused (StartResult)
    # What could not start (StartResult.failed): the lab is up, not all it runs; the CLI exits 1, as status does
    failed: list[str] = field(default_factory=list)
    fresh: bool = False  # no state of the lab when this run took its lock: this run made the lab
    # The processes not the lab's (a user's `netlab exec`, nsenter) that the stops of the namespaces it removed or
    # made anew stopped (kill.Stopped): said beside what it removed (`-o json`'s stopped_processes), not as warnings
    stopped: list[kill.Stopped] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created_netns or self.removed_netns or self.fixed)


class LabGone(NetlabError):
    """A repair found the lab taken down meanwhile (``up --watch``'s, api/watch_repair.py)."""


@collector.paused()  # the plan, the snapshots and the ops it builds are kept to its end: no garbage
def up(lab: Lab, kernel: Kernel, features: Sequence[Feature] = (), source: str | None = None,
       progress: Progress | None = None, wait: float = 60.0, journal: Journal | None = None,
       reconfigure: bool = False, running: str | None = None) -> UpResult:
    """Create or converge a lab to its topology. Idempotent.

    A lab that is up from another file is refused unless ``reconfigure``. ``running``: the run id of the
    running lab whose saved topology ``lab`` is (`up --lab NAME`, plain `up` of the only lab up, Lab.repair): it
    converges that lab, never makes it anew; one taken down while this up waited for its lock is refused, and
    one another command changed meanwhile (`netlab impair`, `up -t FILE`) is converged to its saved topology as
    that command left it, not as read before the wait (which would undo that change).
    """
    plan = build_plan(lab)
    with LabLock(lab.name, "netlab up", wait=wait) as lock, _copy_of_run(), nft_written.kept(lab.name, kernel):
        if running is not None:
            now = still_up(lab.name, running, "this up", lock.waited_for,
                           f"; `{from_file_way()}` brings it up from a file")
            if now.model() != lab.written:
                lab, source = resolve(now.model(), now.held()), now.source
                plan = build_plan(lab)
        return _Up(lab, plan, kernel, features, journal or Journal(kernel), progress).run(source, reconfigure)


@collector.paused()
def up_held(lab: Lab, kernel: Kernel, features: Sequence[Feature] = (), source: str | None = None,
            watcher: bool = True, heard: Callable[[], None] | None = None) -> UpResult:
    """:func:`up`'s work for a caller that holds the lab's lock (LabLock) already: ``up --watch``'s repair and
    ``netlab impair``, which read what the lab must be once they hold the lab, as another command may have changed
    it meanwhile. ``watcher``: the watcher's later apply, its CNI calls appended to its copy (copy_of_run).
    ``heard``: called once the run has read the lab, before its first change (up_converge._make_and_repair)."""
    with _copy_of_run(lab.name if watcher and lab.cni != "builtin" else None), nft_written.kept(lab.name, kernel):
        run = _Up(lab, build_plan(lab), kernel, features, Journal(kernel), None)
        run.heard = heard
        return run.run(source, False)


@contextlib.contextmanager
def _copy_of_run(watched: str | None = None) -> Iterator[None]:
    """netlab.cni.invoke.copy_of_run (NETLAB_CNI_LOG's copy of this run's plugin calls), loaded only where plugins
    may be called: a watcher's apply of a CNI lab (``watched``), or a run whose CNI preflight loaded it (and opened
    the copy). A lab whose pods no plugin attaches opens none, and loads no CNI runtime for it."""
    if watched is not None:
        from netlab.cni.invoke import copy_of_run

        with copy_of_run(watched):
            yield
        return
    invoke = sys.modules.get("netlab.cni.invoke")  # not loaded: no copy is open, none is left to close
    if invoke is not None:
        invoke.close_copy()
    try:
        yield
    finally:
        invoke = sys.modules.get("netlab.cni.invoke")
        if invoke is not None:
            invoke.close_copy()


class _Up(Converging, Rollback):
    def __init__(self, lab: Lab, plan: Plan, kernel: Kernel, features: Sequence[Feature], journal: Journal,
                 progress: Progress | None):
        self.lab, self.plan, self.kernel, self.features = lab, plan, kernel, list(features)
        self.journal, self.progress = journal, progress
        self.result = UpResult(lab=lab.name)
        self.chains_deleted: dict[tuple[str, str], list[str]] = {}  # (netns, table): chain names, said last
        self.created: list[str] = []
        self.had: set[str] = set()
        self.early: dict[str, Any] = {}
        # (netns, what changed) of pods made anew: put on another node, or given another address
        self.moved: list[tuple[str, str]] = []
        self.moved_away: list[str] = []  # their old namespaces, deleted
        self.running_before: dict[str, Any] = {}  # what ran in them, by feature: a rollback starts only that
        self.not_started: list[str] = []  # what of them a rollback made again but could not start
        self.intended: list[str] = []  # the namespaces this run named in the state before making them
        # The node's end of each veth whose pod this run removes: it goes with the pod's namespace, last
        # (teardown.delete_namespaces), not as an extra link before, which a failed run could not take back.
        self.leaving_veths: set[tuple[str, str]] = set()
        self.leaving_by_netns: dict[str, set[tuple[str, str]]] = {}  # the same, by the namespace that goes
        self.leaving_what: dict[str, str] = {}  # what each namespace that goes was: "pod default/b", "node n2"
        self.removing: list[str] = []  # namespaces the run began to remove (their containers stopped first)
        self.not_restored: list[str] = []  # what the kernel dropped and a rollback could not add again
        self.half_done: list[str] = []  # what the features' start left half done (a CNI pod left detached)
        self.kept_before: dict[str, Any] = {}  # each feature's before_run handle: what a rollback puts back
        self.not_put_back: list[str] = []  # what the features changed for this run and a rollback could not put back
        self.left: list[str] = []  # what the rollback's stops said (a CNI DEL that failed again)
        # The keys of what each namespace held when this run first read it: what a rollback may put back (a route
        self.held_before: dict[str, set[tuple]] = {}  # deleted by hand before the run stays missing: not a repair)
        self.strays_refused: set[tuple[str, str, bool]] = set()  # qdiscs the kernel would not let go (up_converge)
        self.before: tuple[Any, str | None, str, Any] = ({}, None, "", None)
        self.changes: list[str] = []  # what a converge changes of the running lab's topology (realize/converging.py)
        self.heard: Callable[[], None] | None = None  # told the lab was read, nothing changed yet (up_held)

    def run(self, source: str | None, reconfigure: bool) -> UpResult:
        state = load_state(self.lab.name)
        check_source(state, source, reconfigure)  # another file with a running lab's name: refused
        refuse_elsewhere(state, self.kernel.netns_mounted)  # made in another mount namespace
        held = state.holding() if state is not None else None
        if held != self.lab.held_before:  # resolved before the lab ran, or changed: its pods keep their addresses
            self.lab = resolve(self.lab.written, held)
            self.plan = build_plan(self.lab)
        check_cni_change(self.lab, state)  # another CNI chain for a running lab: down first
        terminal = terminal_pods(self.lab, state)  # Completed/Error: never ADDed again, DELed with their ADD's config
        edited.check(self.lab.with_terminal(terminal), state, reconfigure)  # up --reconfigure re-attaches
        moved = remade_pods(self.lab, state)  # moved, or readdressed: made anew, as Kubernetes does
        if state is not None and self.lab.cni != "builtin":  # a pod's namespace deleted under it: a new sandbox
            mark_gone_sandboxes(state, self.kernel.netns_mounted)  # (its plugins ADD it, not the plan: attached_lab)
        attached = attached_lab(self.lab, state)  # pods as their CNI plugins made them (names, MACs)
        if attached is not self.lab:
            self.lab, self.plan = attached, build_plan(attached)
        # the terminal pods are no Service's endpoints: out of kube-proxy's rules and the cluster DNS
        done = self.lab.with_terminal(terminal)
        if done is not self.lab:
            self.lab, self.plan = done, build_plan(done)
        fresh = self.result.fresh = state is None
        self.result.warnings += self.lab.displaced()
        if state is None:  # a new lab: its tags name this state folder (a lab up with another is never lost here)
            state = LabState(lab=self.lab.name, extra={tags.FOLDER_RECORD: tags.folder_record()})
        tag = tag_for(state)
        for feature in self.features:
            feature.preflight(self.lab)  # says what the machine lacks, before any change
        backend.choose(state, fresh, reconfigure)  # a running lab keeps its iptables backend; --reconfigure moves it
        cni_path.choose(state, self.lab.cni, fresh, reconfigure, C.CNI_BIN_DIR)  # and the folders of its CNI plugins
        try:
            to_create = namespaces_to_create(self.kernel, self.plan, state, tag)
        except OwnershipConflict:
            if fresh:
                forget(self.lab.name)  # nothing was made: leave no trace either
            raise
        testhooks.fault_point("netns-checked")  # a root test makes a name taken here, before the write-ahead
        self.leaving_by_netns, self.leaving_what = _leaving_veths(state, self.plan) if not fresh else ({}, {})
        self.leaving_veths = {veth for veths in self.leaving_by_netns.values() for veth in veths}
        netns_of = {p.name: p.netns for p in self.lab.pods}
        self.moved = [(netns_of[pod], why) for pod, why in moved if netns_of[pod] not in to_create]
        self._restore_host_settings(state, creating=bool(to_create or self.moved))
        # Write-ahead: the state names every namespace before it can exist. What it said of the lab before
        # is what a failed run puts back.
        self.before = (state.topology, state.source, state.phase, state.extra.get(ADDRESSES))
        self.had = {n for n, how in state.netns.items() if how == "created"}
        if not fresh:  # what the features hold before the run changes them (a container's command): put back on failure
            self.kept_before = {f.name: before_run(f, self.lab, state) for f in self.features}
        state.netns.update({n: "intent" for n in to_create})
        self.intended = list(to_create)
        state.topology = self.lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
        state.extra[ADDRESSES] = self.lab.held().to_json()
        state.source = os.path.abspath(source) if source else None
        state.phase = "creating" if fresh else state.phase
        self.changes = converging.changes(self.before[0], state.topology) if not fresh else []
        converging.mark(state, self.changes)  # a running lab's: killed before its last write, list says what it left
        claim = owner.current()
        if fresh and claim is not None:  # the pytest plugin's lab: whose it is, from the first write on
            state.extra[owner.OWNER] = claim
        # A signal while the write-ahead is saved waits for it, then rolls back what it says (a state naming
        # namespaces that nobody made, or a fresh lab in phase creating, would stay behind otherwise).
        came: list[int] = []
        # A SIGTERM while the program loaded whose exception a finalizer swallowed (nothing before this line
        # changes the kernel or the state): raised now. The run's own handlers from here.
        signals.check()
        with signals.handled(lambda signum, frame: came.append(signum)):
            state.save()
        # What the plugins may write on the machine, outside the lab (a wrapper's host-local): noted before their ADDs
        host = host_writes.entries() if self.lab.cni != "builtin" else None
        try:
            with self._signals_interrupt():
                if came:
                    raise_interrupted(came[0], None)
                self._converge(state, tag, to_create, fresh)
                self._follow_attachments(state)
                self._policy_hooks_first(state)
                self.result.warnings += self.lab.plugin_addresses() + list(self.lab.outside_pod_cidrs().values())
                self.result.warnings += attached_lab(self.lab, state).wide_prefixes()  # status says them too
                outside = host_writes.noted(state, host)
                if outside:  # recorded for down, which says what is still there
                    self.result.warnings += outside
                    state.save()
                if state.extra.pop(converging.KEY, None) is not None or state.phase != "up":
                    state.phase = "up"  # once the whole run is done (ADDs, containers): killed before, it says so
                    state.save()
        except BaseException as exc:
            self._rollback_or_say(exc, state, fresh, tag)
            if host is not None:  # what the plugins wrote outside the lab, which no rollback removes
                # one line, up's: the whole run's (a new lab's rollback, its down, said those since its DELs began)
                self.left = [said for said in self.left if not host_writes.is_line(said)] + \
                    host_writes.written_line(host)
            # up's Interrupted, or the program's own (as the block began); or an error a signal's exception became
            # where Python wraps it (an import's dataclass, a validator being built): the signal's, not "apply
            # failed". Any other error is itself, also once the run's handler took a signal a finalizer swallowed
            stop = signals.stop_of(exc)
            if stop is not None:
                signum, back = signals.exit_code(stop) - 128, f"{self._not_back()}{self._left()}"
                by = f"interrupted by {signal.Signals(signum).name}"
                if not fresh and not (self.journal.count or self.result.fixed or back):  # nothing changed yet
                    raise Interrupted(f"{by} {converging.not_applied(self.lab.name, self.changes)}", signum) from None
                if back or not isinstance(stop, Interrupted):
                    raise Interrupted(f"{by}; rolled back{back}", signum) from None
                raise stop from None
            if isinstance(exc, OwnershipConflict):  # a name taken meanwhile (lab/ownership.create_netns): exit 3
                raise OwnershipConflict(f"{exc}; rolled back{self._not_back()}{self._left()}") from exc
            if isinstance(exc, NetlabError):
                # what the feature itself says no rollback brings back (a CNI pod whose re-ADD failed)
                # and what goes with a new lab's folder that the feature names (its CNI calls' log)
                said = exc.not_back + (exc.if_fresh if fresh else "") if isinstance(exc, ApplyFailed) else ""
                raise ApplyFailed(f"{exc}; rolled back{self._not_back()}{said}{self._left()}") from exc
            if isinstance(exc, OSError) and open_files(exc) is exc:  # the limit's line follows (cli/base.py)
                where = f" ({exc.filename})" if exc.filename else ""
                raise ApplyFailed(f"{exc.strerror}{where}; rolled back{self._not_back()}{self._left()}") from exc
            if isinstance(exc, Exception):  # a bug or an OS error: one line, details with --debug
                raise ApplyFailed(f"{type(exc).__name__}: {exc}; rolled back{self._not_back()}{self._left()} "
                                  "(for details: netlab --debug <command> ...)") from exc
            raise
        self.result.fixed += deleted_chains_lines(self.chains_deleted)  # the plan's restores' and the Services'
        self.result.operations = self.journal.count
        return self.result

    def _rollback_or_say(self, exc: BaseException, state: LabState, fresh: bool, tag: str) -> None:
        """The rollback of the run that ``exc`` stopped; one that fails itself (an unreadable tag, the open-files
        limit) keeps the lab's state, which names what the run made, and says so: it does not claim "rolled back"
        (with ``ulimit -n 24`` the lab stayed whole, its state deleted)."""
        try:
            self._rollback(state, fresh, tag)
        except Exception as undo:
            if not fresh:  # the lab is still asked what its last good run made: `up --lab` puts that back, not this
                self._ask_before(state)
            how = f"`{down_command(self.lab.name)}` takes it down" if fresh else \
                f"`{self._up_again(state)}` repairs it"
            raise ApplyFailed(f"{exc or type(exc).__name__}; the rollback failed too: {undo}; what the run made "
                              f"is left, named by the lab's state: {how}") from exc
        if not fresh:  # what the rollback could not bring back is put back by this `up` (_not_back)
            self._up_again(state)

    def _ask_before(self, state: LabState) -> None:
        """A running lab whose rollback failed: its state keeps naming every namespace the run made (what a down
        or the next up takes), and what the lab is asked goes back to its last good run's topology, source and
        addresses (it said the refused change: status planned it and `up --lab` applied it)."""
        topology, source, phase, addresses = self.before
        state.topology, state.source, state.phase = topology, source, phase
        state.extra.pop(converging.KEY, None)
        if addresses is None:
            state.extra.pop(ADDRESSES, None)
        else:
            state.extra[ADDRESSES] = addresses
        state.save(best_effort=True)

    def _restore_host_settings(self, state: LabState, creating: bool) -> None:
        """Before namespaces are made: the IPv4 all/default settings this machine gives a new namespace
        otherwise than the kernel does join the plan, set back in every namespace (plan/sysctls.py,
        KERNEL_DEVCONF), and the state records them so that status checks them. Only new namespaces
        copy the host's, so a run that makes none keeps the recorded ones."""
        restored = state.restored()
        if creating:
            restored = to_restore(self.kernel.inherited_devconf(DEVCONF_SYSCTLS), restored)
        if restored:
            state.extra[RESTORED] = list(restored)
        lab = self.lab.with_restored(restored)
        if lab is not self.lab:
            self.lab, self.plan = lab, build_plan(lab)

    # --- the work ---------------------------------------------------------------------

    def _create_namespaces(self, state: LabState, names: list[str], tag: str,
                           sysctls: dict[str, list[tuple[str, str]]], links: dict[str, Any]) -> None:
        """Each namespace: a journal step, then the kernel makes it, tagged, with its sysctls.

        The live kernel makes them on two threads (``create_workers``; much of a namespace's
        ~1.1 ms is waiting, which they overlap). The journal counts one step at a time, a failure
        stops the other thread at its next namespace, and every thread is done before this returns
        or raises: the rollback then finds everything made in ``self.created``, in plan order."""
        lock = threading.Lock()
        order = {name: i for i, name in enumerate(names)}

        def make(name: str) -> None:
            with lock:
                self.journal.step(f"create namespace {name}")
            try:
                extra = create_netns(self.kernel, name, tag, sysctls.get(name, ()), self.lab.name)
            except OwnershipConflict:
                # Another process's, made since the check (its pin perhaps not mounted yet): the state names it
                # no more, so the rollback leaves it alone (it removes the placeholders the state names)
                with lock:
                    state.netns.pop(name, None)
                raise
            except BaseException:
                # Made, then interrupted before it returned (a signal's exception lands in the main
                # thread wherever it is): its tag proves it is this run's, so the rollback takes it too.
                if self.kernel.netns_mounted(name) and self.kernel.read_tag(name) == tag:
                    with lock:
                        self.created.append(name)
                raise
            with lock:
                self.created.append(name)
                if extra:
                    links[name] = extra
                if self.progress and len(self.created) % 25 == 1:
                    self.progress("namespaces", len(self.created) - 1, len(names))

        try:
            side_by_side(make, names, self.kernel.create_workers, stop_on_error=True)
        finally:
            self.created.sort(key=lambda name: order.get(name, -1))

    def _converge(self, state: LabState, tag: str, to_create: list[str], fresh: bool) -> None:
        sysctls = netns_sysctls(self.plan)  # those that exist before the namespace's links and tables
        links = kernel_links(state)
        if self.moved:  # what runs in them, before they stop: what a rollback that makes them again starts
            self.running_before = {f.name: running_of(f, state, [n for n, _ in self.moved]) for f in self.features}
        for name, why in self.moved:  # its old namespace goes first: the new one has its name
            self.journal.step(f"delete namespace {name}")  # a fault here leaves the old pod as it was
            self.moved_away.append(name)  # from here on a rollback makes it again (lab/remake.py) if it is gone
            self.result.warnings += stop_features(self.features, state, [name], stopped=self.result.stopped)
            delete_namespaces(self.kernel, [name])
            self.result.remade_netns.append(name)
            links.pop(name, None)
            state.netns[name] = "intent"
            self.result.fixed.append(remade_line(name.removeprefix(self.lab.name + '-'), why))
        if self.moved:
            again = {name for name, _ in self.moved}
            to_create = [ns for ns in self.plan.netns if ns in again or ns in set(to_create)]
        self._create_namespaces(state, to_create, tag, sysctls, links)
        for name in self.created:
            state.netns[name] = "created"
        state.extra[KERNEL_LINKS] = {ns: v for ns, v in links.items() if ns in state.netns}
        if self.created:
            state.save()
        self.result.created_netns = list(self.created)
        if fresh:
            # Features that need only the namespaces (echo servers) start now, while the network is made.
            for feature in self.features:
                self.journal.step(f"start {feature.name} early")
                self.early[feature.name] = feature.start_early(self.lab, state)

        self._make_and_repair(state, set(self.created))

        # Namespaces the lab no longer has: last, since they cannot be brought back.
        planned = set(self.plan.netns)
        for name in [n for n in state.netns if n not in planned and n not in self.plan.stopped]:  # (_release_stopped)
            mine = owned(self.kernel, name, tag)
            self.kernel.remove_placeholder(name)  # unmounted by hand: a CNI DEL is given no empty file for it
            # One deleted by hand (`ip netns del`) lives on, nameless, while its pod's containers run in it (the
            # echo server's sockets too), and with it the pod's veth: they are stopped from the records. Should
            # another have mounted a namespace of theirs at the name since (its tag is not the lab's), nothing
            # is stopped by the name: not their processes, no CNI DEL handed their namespace (stop_taken).
            theirs = not mine and self.kernel.netns_mounted(name)
            ran = containers_ran(state, name) if theirs else []  # its records go with its stop
            self.journal.step(f"delete namespace {name}")  # a fault here leaves the pod as it was
            self.removing.append(name)
            said = stop_features(self.features, state, [name], stopped=self.result.stopped, taken=theirs)
            self.result.warnings += said
            if mine:
                delete_namespaces(self.kernel, [name])
            else:  # the kernel frees it later (or never, held by a stranger): its veths go as extra links now
                self.leaving_veths -= self.leaving_by_netns.get(name, set())
            if theirs:
                left = sum(1 for line in said if kill.is_survivor(line))
                if (what := self.leaving_what.get(name)) or ran or left:  # a pod's (node's): its containers stopped
                    self.result.fixed.append(taken_line(name, what, ran, left))
                else:  # a name the state listed and the lab never made (edited, a collision): nothing touched
                    self.result.warnings.append(left_alone_line(name))
            else:
                self.result.removed_netns.append(name)
            state.netns.pop(name, None)
            kernel_links(state).pop(name, None)
        if self.removing:
            self._repair_after_removal(state)

        state.save()  # a fresh lab's phase stays creating until the features have started too (run)
        self._start_features(state)

    def _start_features(self, state: LabState, again: str = "") -> None:
        failed = []  # as this round leaves them (a second round, after the CNI plugins, tells them anew)
        for feature in self.features:
            self.journal.step(f"start {feature.name}{again}")
            out = feature.start(self.lab, state, self.early.get(feature.name))  # the rollback's until start waited
            self.early.pop(feature.name, None)
            # a setting of a namespace this run made is part of making it, no repair (docs/json.md: `fixed`)
            self.result.fixed += out.actions + [line for ns, line in out.made if ns not in self.created]
            add_deleted_chains(self.chains_deleted, out.deleted_chains)
            self.result.warnings += out.problems
            self.result.refused.update(out.refused)
            failed += out.failed
        self.result.failed = failed

    def _follow_attachments(self, state: LabState) -> None:
        """The plan follows this run's CNI ADDs before anything reads the lab again (_follow_pod_sides), and the
        address a conflist's IPAM gave a pod: the Services' endpoints and the features follow it, as kube-proxy
        follows the address the kubelet reports for the pod. Then the stopped sandboxes' namespaces go."""
        attached = attached_lab(self.lab, state)
        ips = [(p.name, p.ip) for p in attached.pods] == [(p.name, p.ip) for p in self.lab.pods]
        if attached.attached != self.lab.attached and ips:
            self._follow_pod_sides(attached, state)
        elif attached.attached != self.lab.attached:
            was, self.lab, self.plan = self.plan, attached, build_plan(attached)
            self.journal.step("follow the addresses the CNI plugins gave")
            self._make_and_repair(state, set(), followed=followed(was, self.plan))
            self._start_features(state, again=" again, with those addresses")
        self._release_stopped(state, tag_for(state))


def _leaving_veths(state: LabState, plan: Plan) -> tuple[dict[str, set[tuple[str, str]]], dict[str, str]]:
    """(namespace, veth) of the far end of each pod's or node's veth whose namespace the plan no longer has (its
    node's port on cni0, the underlay's port on br0), as the running lab made them, by the namespace that goes;
    and what each such namespace was ("pod default/b", "node n2")."""
    leaving = set(state.netns) - set(plan.netns)
    if not leaving:
        return {}, {}
    try:
        running = state.resolved()
    except NetlabError:  # a saved topology that no longer resolves: its extra veths are deleted as before
        return {}, {}
    nodes = {n.name: n.netns for n in running.nodes}
    out: dict[str, set[tuple[str, str]]] = {}
    what: dict[str, str] = {}
    for p in running.pods:
        if p.netns in leaving:
            what[p.netns] = f"pod {p.spec.namespace}/{p.name}"
            if p.node in nodes:
                out.setdefault(p.netns, set()).add((nodes[p.node], p.host_veth))
    for n in running.nodes:
        if n.netns in leaving:
            what[n.netns] = f"node {n.name}"
            out.setdefault(n.netns, set()).add((running.underlay_netns, n.underlay_veth))
    return out, what
