"""Bring a lab up, converge it, tear it down: the only code that changes the kernel.

``up`` is a reconcile loop (the Kubernetes controller idea): the plan is the
desired state, netlink dumps are the current state, and only the difference
is applied. A fresh lab skips the reading (its namespaces are new and empty).

Ownership: every namespace carries the tag ``netlab:<lab>:<run id>`` on its
``lo`` from before its name is visible (netns.py), and the lab's state lists
it. ``down`` deletes a namespace only when both agree, so a look-alike
namespace made by hand, or a state file edited to list someone else's
objects, is left alone.

Faults: ``NETLAB_FAULT_AT=k`` makes the k-th changing operation fail
(``NETLAB_FAULT_MODE=fail``, the default) or kill the process with SIGKILL
(``kill``), so tests can prove that every step of ``up`` rolls back or is
cleaned by ``down``. Off unless set.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Callable, Iterable

from pyroute2.netlink.exceptions import NetlinkError

from netlab.errors import ApplyFailed, EnvironmentNotReady, NetlabError, OwnershipConflict
from netlab.model.lab import Lab
from netlab.plan.build import Plan, build_plan
from netlab.plan.resources import (Address, Bridge, Fdb, Link, NatRules, Neigh, Resource, Route, Sysctl, Veth,
                                   Vxlan)
from netlab.realize import netlink as nl
from netlab.realize import netns as nsmod
from netlab.realize import ownership
from netlab.realize.observe import Drift, diff
from netlab.realize.state import LabLock, LabState, check_source, forget, load_state
from netlab.services import lifecycle as services_lifecycle
from netlab.workload import lifecycle as workload_lifecycle

# Features with their own lifecycle after the network exists: Service
# extras (DNS records, stale conntrack entries) and containers. Each module
# has start(lab, state) -> warnings, stop(state, netns_names) and
# drift(lab, state) -> list[str]; optionally preflight(lab) and
# start_early(lab, state) / abort_early(handle).
FEATURES = (services_lifecycle, workload_lifecycle)

Progress = Callable[[str, int, int], None]


def features() -> tuple:
    return FEATURES


def _feature_name(module) -> str:
    """netlab.workload.lifecycle -> workload."""
    return module.__name__.rsplit(".", 2)[-2]


def tag_for(state: LabState) -> str:
    return f"{nsmod.TAG_PREFIX}{state.lab}:{state.run_id}"


class Interrupted(NetlabError):
    """SIGINT/SIGTERM arrived while changing the kernel."""

    exit_code = 130


class Ops:
    """Counts changing operations; the fault hook fires on the k-th."""

    def __init__(self) -> None:
        self.count = 0
        at = os.environ.get("NETLAB_FAULT_AT")
        self.fault_at = int(at) if at and at.isdigit() else None
        self.mode = os.environ.get("NETLAB_FAULT_MODE", "fail")
        self.before_fault: Callable[[], None] | None = None

    def __call__(self, what: str) -> None:
        self.count += 1
        if self.fault_at is not None and self.count == self.fault_at:
            if self.before_fault is not None:
                self.before_fault()  # batched work before the fault reaches the kernel first
            if self.mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ApplyFailed(f"injected fault at operation {self.count} ({what})")


@dataclass
class UpResult:
    lab: str
    created_netns: list[str] = field(default_factory=list)
    removed_netns: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    operations: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created_netns or self.removed_netns or self.fixed)


def owned(name: str, tag: str) -> bool:
    """True when namespace ``name`` exists and carries this lab's tag on ``lo``.

    The tag holds the lab's random run id, set before the namespace's name
    became visible: a namespace made by hand, or a lab namespace deleted and
    made again by someone else under the same name, does not have it.
    """
    try:
        return nsmod.read_tag(name) == tag
    except (OSError, ValueError):
        return False


# --- applying single resources ------------------------------------------------


def _create(s: nl.Sockets, r: Resource) -> None:
    if isinstance(r, Sysctl):
        with nsmod.entered(r.netns):
            nsmod.write_sysctl_here(r.name, r.value)
    elif isinstance(r, Bridge):
        nl.add_bridge(s, r)
    elif isinstance(r, Veth):
        nl.add_veth(s, r)
    elif isinstance(r, Vxlan):
        nl.add_vxlan(s, r)
    elif isinstance(r, Address):
        nl.add_address(s, r)
    elif isinstance(r, Route):
        nl.replace_route(s, r)
    elif isinstance(r, Neigh):
        nl.replace_neigh(s, r)
    elif isinstance(r, Fdb):
        nl.append_fdb(s, r)
    elif isinstance(r, NatRules):
        from netlab.realize import netfilter

        netfilter.apply_rules(r)
    else:
        raise TypeError(f"cannot create {r.kind}")


def _delete(s: nl.Sockets, r: Resource) -> None:
    if isinstance(r, Link):
        nl.del_link(s, r.netns, r.name)
    elif isinstance(r, Address):
        nl.del_address(s, r)
    elif isinstance(r, Route):
        nl.del_route(s, r)
    elif isinstance(r, Neigh):
        nl.del_neigh(s, r)
    elif isinstance(r, Fdb):
        nl.del_fdb(s, r)


def _explain(r: Resource, exc: Exception) -> str:
    """NetlinkError(17) -> 'demo-minikube: cni0 already exists' and friends."""
    if isinstance(exc, NetlinkError):
        code = exc.code
        reason = {17: "already exists", 19: "no such device", 22: "invalid argument", 1: "operation not permitted",
                  3: "no such process (gateway unreachable?)", 95: "not supported by this kernel",
                  101: "network unreachable"}.get(code, os.strerror(code) if code > 0 else str(exc))
        hint = ""
        if code == 95 and r.kind == "vxlan":
            hint = "; load the vxlan module on the host (modprobe vxlan)"
        return f"{r.describe()}: {reason}{hint}"
    return f"{r.describe()}: {exc}"


# --- up -----------------------------------------------------------------------


def _preflight(plan: Plan, state: LabState, tag: str) -> list[str]:
    """Namespaces to create; stops before any change if a name is taken by someone else."""
    to_create = []
    for name in plan.netns:
        if not nsmod.exists(name):
            to_create.append(name)
            continue
        if owned(name, tag):
            continue
        if state.netns.get(name) == "intent" and nsmod.remove_placeholder(name):
            to_create.append(name)  # left by a crash between claiming the name and mounting
            continue
        raise OwnershipConflict(ownership.collision_message(name, state.lab))
    return to_create


def up(lab: Lab, source: str | None = None, progress: Progress | None = None,
       wait: float = 60.0, reconfigure: bool = False) -> UpResult:
    """Create or converge a lab to its topology. Idempotent."""
    plan = build_plan(lab)
    with LabLock(lab.name, "netlab up", wait=wait):
        return _up_locked(lab, plan, source, progress, reconfigure)


def _up_locked(lab: Lab, plan: Plan, source: str | None, progress: Progress | None,
               reconfigure: bool = False) -> UpResult:
    state = load_state(lab.name)
    check_source(state, source, reconfigure)  # another file with a running lab's name: refused
    fresh = state is None
    if state is None:
        state = LabState(lab=lab.name)
    tag = tag_for(state)
    result = UpResult(lab=lab.name)
    ops = Ops()
    for feature in features():
        if hasattr(feature, "preflight"):
            feature.preflight(lab)  # says what the machine lacks, before any change
    try:
        to_create = _preflight(plan, state, tag)
    except OwnershipConflict:
        if fresh:
            forget(lab.name)  # nothing was made: leave no trace either
        raise
    old_netns = [n for n in state.netns if n not in plan.netns]

    # Write-ahead: the state names every namespace before it can exist.
    state.netns.update({n: "intent" for n in to_create})
    state.topology = lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    state.source = os.path.abspath(source) if source else None
    state.phase = "creating" if fresh else state.phase
    state.save()

    s = nl.Sockets()
    sysctls: dict[str, list[tuple[str, str]]] = {}
    for r in plan.of_kind("sysctl"):
        sysctls.setdefault(r.netns, []).append((r.name, r.value))
    created: list[str] = []
    early: dict[str, object] = {}
    try:
        with _signals_interrupt():
            total = len(to_create)
            for i, name in enumerate(to_create):
                ops(f"create namespace {name}")
                nsmod.create_netns(name, tag, sysctls.get(name, ()))
                created.append(name)
                if progress and i % 25 == 0:
                    progress("namespaces", i, total)
            for name in created:
                state.netns[name] = "created"
            if created:
                state.save()
            result.created_netns = created
            if fresh:
                # Features that can start while the network is configured
                # (echo servers need only their namespaces): overlap them.
                for feature in features():
                    if hasattr(feature, "start_early"):
                        ops(f"start {_feature_name(feature)} early")
                        early[feature.__name__] = feature.start_early(lab, state)

            # Fresh namespaces get everything; existing ones get what differs.
            fresh_ns = set(created)
            todo = [r for r in plan.resources
                    if r.kind not in ("netns", "sysctl") and r.netns in fresh_ns]
            existing = [n for n in plan.netns if n not in fresh_ns]
            drifts: list[Drift] = diff(plan, s, existing) if existing else []
            todo = _apply_fresh(plan, created, todo, ops)
            _apply(s, todo, drifts, ops, result, progress)
            # Repairs can cascade (a recreated veth loses its peer's address
            # and routes): read back and converge until nothing differs.
            rounds = 0
            while drifts and rounds < 3:
                drifts = diff(plan, s, plan.netns)
                _apply(s, [], drifts, ops, result, progress)
                rounds += 1
            if drifts:
                raise ApplyFailed(f"could not converge: {drifts[0]}")

            # Namespaces the lab no longer has.
            for name in old_netns:
                if owned(name, tag):
                    _stop_processes(state, [name])
                    ops(f"delete namespace {name}")
                    _delete_netns(s, name)
                    result.removed_netns.append(name)
                elif nsmod.remove_placeholder(name):
                    pass
                state.netns.pop(name, None)

            state.plan = [r.to_json() for r in plan.resources]
            state.phase = "up"
            state.save()
            for feature in features():
                ops(f"start {_feature_name(feature)}")
                kwargs = {"early": early.pop(feature.__name__)} if feature.__name__ in early else {}
                result.warnings += feature.start(lab, state, **kwargs) or []
    except BaseException as exc:
        s.close()
        for feature in features():
            if feature.__name__ in early:
                feature.abort_early(early.pop(feature.__name__))
        _rollback(state, created, fresh, tag)
        if isinstance(exc, NetlabError):
            if isinstance(exc, Interrupted):
                raise
            raise ApplyFailed(f"{exc}; rolled back") from exc
        if isinstance(exc, NetlinkError):
            raise ApplyFailed(f"{getattr(exc, 'netlab_what', 'netlink')}; rolled back") from exc
        if isinstance(exc, Exception):  # a bug or an OS error: one line, details with --debug
            raise ApplyFailed(f"{type(exc).__name__}: {exc}; rolled back (run with --debug for details)") from exc
        raise
    finally:
        s.close()
    result.operations = ops.count
    return result


def _apply_fresh(plan: Plan, created: list[str], todo: list[Resource], ops: Ops) -> list[Resource]:
    """Batch everything in fresh namespaces; returns what must go the slow way."""
    if not todo:
        return todo
    order = [n for n in plan.netns if n in set(created)]
    fresh = nl.FreshBatches(order)
    if any(fresh.crosses(r) for r in plan.of_kind("veth") if r.netns in fresh.batches or r.peer_netns in fresh.batches):
        return todo  # a fresh namespace joined to an old one (converging): one at a time
    rest = []
    ops.before_fault = fresh.send  # "after the k-th operation": what came before is applied
    try:
        for r in todo:
            if isinstance(r, NatRules):
                rest.append(r)
                continue
            ops(f"create {r.describe()}")
            fresh.add(r)
    finally:
        ops.before_fault = None
    try:
        fresh.send()
    except NetlinkError as exc:
        raise ApplyFailed(getattr(exc, "netlab_what", str(exc))) from exc
    return rest


def _apply(s: nl.Sockets, todo: list[Resource], drifts: list[Drift], ops: Ops, result: UpResult,
           progress: Progress | None) -> None:
    """Create ``todo`` and repair ``drifts``, all in plan order."""
    from netlab.plan.build import ORDER

    # Deletions first (extras, and links that must be recreated), deepest last.
    for d in drifts:
        if d.state == "extra":
            ops(f"delete {d.resource.describe()}")
            _try(lambda: _delete(s, d.resource), d.resource, ignore_missing=True)
            result.fixed.append(str(d))
        elif d.state == "different" and isinstance(d.resource, Link):
            ops(f"delete {d.resource.describe()}")
            _try(lambda: _delete(s, d.resource), d.resource, ignore_missing=True)
    work = list(todo) + [d.resource for d in drifts if d.state in ("missing", "different")]
    work.sort(key=lambda r: ORDER.index(r.kind))
    seen: set[tuple] = set()
    total = len(work)
    for i, r in enumerate(work):
        if r.key in seen:
            continue
        seen.add(r.key)
        ops(f"create {r.describe()}")
        if isinstance(r, Address):
            _try(lambda: _create(s, r), r, ignore_exists=True)
        else:
            _try(lambda: _create(s, r), r)
        if r not in todo:
            result.fixed.append(r.describe())
        if progress and i % 100 == 0:
            progress("objects", i, total)


def _try(fn: Callable[[], None], r: Resource, ignore_missing: bool = False, ignore_exists: bool = False) -> None:
    try:
        fn()
    except NetlinkError as exc:
        if ignore_missing and exc.code in (2, 3, 19, 99):
            return
        if ignore_exists and exc.code == 17:
            return
        raise ApplyFailed(_explain(r, exc)) from exc
    except LookupError as exc:
        if ignore_missing:
            return
        raise ApplyFailed(f"{r.describe()}: {exc}") from exc


class _signals_interrupt:
    """SIGTERM behaves like SIGINT while changing the kernel: unwind and roll back."""

    def __enter__(self) -> None:
        self.old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[sig] = signal.signal(sig, self._raise)
            except ValueError:  # not the main thread
                pass

    @staticmethod
    def _raise(signum: int, frame: object) -> None:
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}; rolled back")

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


def _rollback(state: LabState, created: list[str], fresh: bool, tag: str) -> None:
    """Undo a failed up: a fresh lab goes entirely, a converging one loses what this run made."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if fresh:
            _teardown(state, tag)
        else:
            _stop_processes(state, created)
            s = nl.Sockets()
            try:
                for name in created:
                    _delete_netns(s, name)
                    state.netns.pop(name, None)
            finally:
                s.close()
            state.save()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


# --- down ---------------------------------------------------------------------


@dataclass
class DownResult:
    lab: str
    removed_netns: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    was_up: bool = True


def down(lab_name: str, wait: float = 60.0, progress: Progress | None = None, force: bool = False) -> DownResult:
    """Delete everything the lab's state proves it created. Safe to run twice."""
    with LabLock(lab_name, "netlab down", wait=wait):
        if force:  # corrupt or lost state: the namespaces tagged as the lab's (ownership.py)
            return (ownership.force_down(lab_name, lambda st, tag: _teardown(st, tag, progress), tag_for)
                    or DownResult(lab=lab_name, was_up=False))
        state = load_state(lab_name)
        if state is None:
            forget(lab_name)
            return DownResult(lab=lab_name, was_up=False)
        return _teardown(state, tag_for(state), progress)


def _stop_processes(state: LabState, names: Iterable[str], everything: bool = False) -> None:
    names = list(names)
    for feature in features():
        feature.stop(state, names, everything=everything)


def _teardown(state: LabState, tag: str, progress: Progress | None = None) -> DownResult:
    result = DownResult(lab=state.lab)
    state.phase = "deleting"
    state.save(best_effort=True)  # a full disk must not stop a teardown: the tags prove the namespaces
    mine: list[str] = []
    for name in list(state.netns):
        try:
            nsmod.check_netns(name)
        except ValueError:
            result.skipped.append(f"{name!r}: not a valid namespace name")
            continue
        if owned(name, tag):
            mine.append(name)
        elif nsmod.remove_placeholder(name):
            result.removed_netns.append(name)
        elif nsmod.exists(name):
            result.skipped.append(f"{name}: exists but is not this lab's (no matching tag); left alone")
    # veths live on the bridge side (underlay, nodes...): delete them there, at
    # once per namespace; their peers in pods go with them. That is kernel
    # work under the RTNL lock, so it runs in a thread while this one stops
    # the lab's processes (which must be gone before the namespaces are).
    bridge_sides = [n for n in mine if n in {r["netns"] for r in state.plan if r.get("kind") == "veth"}] \
        if state.plan else mine
    veths = _Background(_delete_veths_in, bridge_sides)
    _stop_processes(state, mine, everything=True)
    veths.join()
    for i, name in enumerate(mine):
        nsmod.remove_netns(name)
        result.removed_netns.append(name)
        if progress and i % 25 == 0:
            progress("namespaces", i, len(mine))
    forget(state.lab)
    return result


class _Background:
    """Run a function in a thread; join() re-raises its exception here."""

    def __init__(self, fn: Callable, *args: object):
        import threading

        self.error: BaseException | None = None

        def body() -> None:
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised by join()
                self.error = exc

        self.thread = threading.Thread(target=body, name="netlab-teardown")
        self.thread.start()

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def _delete_veths_in(names: list[str]) -> None:
    s = nl.Sockets()
    try:
        for name in names:
            _delete_veths(s, name)
    finally:
        s.close()


def _delete_veths(s: nl.Sockets, name: str) -> None:
    """Delete veth pairs explicitly: the kernel frees a namespace's devices
    asynchronously, and a quick `up` could otherwise meet the old ones."""
    nl.del_link_group(s, name)


def _delete_netns(s: nl.Sockets, name: str) -> None:
    _delete_veths(s, name)
    s.drop(name)
    nsmod.remove_netns(name)


# --- status -------------------------------------------------------------------


@dataclass
class StatusResult:
    lab: str
    drift: list[str] = field(default_factory=list)
    objects: int = 0
    details: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drift


def status(state: LabState) -> StatusResult:
    """Compare the live kernel with the saved plan of a running lab."""
    lab = state.resolved()
    plan = build_plan(lab)
    tag = tag_for(state)
    result = StatusResult(lab=lab.name, objects=len(plan.resources))
    present = []
    for name in plan.netns:
        if not nsmod.is_netns_mount(name):
            result.drift.append(f"missing: namespace {name}")
        elif not owned(name, tag):
            result.drift.append(f"different: namespace {name} is not tagged as this lab's")
        else:
            present.append(name)
    s = nl.Sockets()
    try:
        for d in diff(plan, s, present):
            result.drift.append(str(d))
            result.details.append(d.to_json())
    finally:
        s.close()
    for feature in features():
        result.drift += feature.drift(lab, state)
    return result


def require_kernel() -> None:
    """Root and the tools up needs; says what to do otherwise."""
    if os.geteuid() != 0:
        raise EnvironmentNotReady("netlab needs root to create namespaces; run it with sudo")
