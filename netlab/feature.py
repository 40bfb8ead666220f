"""How features plug into a lab: what the lab needs besides its plan's kernel objects.

Features (netlab.services.lifecycle: resolv.conf files, stale chains and
conntrack entries; netlab.workload.lifecycle: containers; later CNI,
policies, impairments) start after the network is in place (or early, beside
the network work, when they need only the namespaces), stop before the
namespaces go, and report their drift to ``status``. They change the lab
too: they start and restart processes and write files, and ``up`` reports
their actions beside its own repairs, so it never says "nothing to change"
after it restarted a container or rewrote a file, and their problems as
warnings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Protocol

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.realize.state import LabState


class Note(str):
    """A line of a feature's ``drift`` that is no difference ``up`` puts right: something ``up`` leaves alone
    too (another's file where a pod's would go), said by status as a warning, as up says it, not as drift."""


class Reconfigure(str):
    """A line of a feature's ``drift`` that a plain ``up`` refuses to put right and ``up --reconfigure`` does (a
    CNI conflist edited in place while pods run: netlab.cni.edited): the repair status names is then the lab's
    file's ``up -t FILE --reconfigure``, or ``up --lab NAME --reconfigure`` once the file was edited since
    (realize.state.reconfigure_repair), the one command that works."""


class Unmendable(str):
    """A line of a feature's ``drift`` that no ``up`` puts right, so ``up`` leaves it as it is (a CNI chain whose
    CHECK fails the pod's own fresh ADD, as it did then: cni/changed.py): status says it; a watcher repairs nothing
    for it (it said it once, with the repair that found it)."""


# The end of status's line of a pod whose CNI CHECK fails as right after its own fresh ADD (an Unmendable): read
# back by workload/policy.up_leaves, so status names no `up` as its repair (QA q57 #3)
FRESH_ADD_FAILS = " (as right after its own fresh ADD: up does not re-attach the pod for it)"
# What does put right a CNI chain whose CHECK fails the pod's own fresh ADD (no new ADD does): status's reason for
# leaving it (workload/policy.up_leaves), the end of up's line of it (cni/changed.Changed.fresh_words) and the
# watcher's line (api/watch_converge), one text (:func:`fresh_check_fix`), naming the plugin whose CHECK failed
FRESH_CHECK_TAIL = ("give the conflist `\"disableCheck\": true`, which compares the pod with the plugins' cached "
                    "result instead, then `up --reconfigure`")
# Debian's plugins (1.1.1) whose own CHECK is known to fail their fresh ADD, and why
KNOWN_CHECK_BUGS = {"portmap": "Debian's portmap fails its own CHECK for a hostPort: containernetworking/plugins#819, "
                               "fixed by #821",
                    "bandwidth": "Debian's bandwidth panics in CHECK for a pod without bandwidth annotations and no "
                                 "rates in its conflist entry"}
_FIX = re.compile(r"; (fix the plugin[^;]*, or " + re.escape(FRESH_CHECK_TAIL) + r")$")


def fresh_check_fix(plugin: str | None) -> str:
    """What mends a CHECK of ``plugin`` (None: not known) that fails its pod's own fresh ADD."""
    known = KNOWN_CHECK_BUGS.get(plugin or "")
    return f"fix the plugin{f' {plugin}' if plugin else ''}{f' ({known})' if known else ''}, or {FRESH_CHECK_TAIL}"


def split_check_fix(line: str) -> tuple[str, str | None]:
    """``line`` without the ``; <fresh_check_fix(...)>`` it ends with, and that fix (None: it has none)."""
    m = _FIX.search(line)
    return (line[:m.start()], m.group(1)) if m else (line, None)


@dataclass
class StartResult:
    """``actions``: what changed, one line each ("restarted container duo/web (it was stopped)").
    ``problems``: what could not be done, one line each (up prints them as warnings).
    ``refused``: the changes the kernel refused, by object ("NETNS:IFACE" for an impairment), its reason as
    the problem's line says it; the object keeps what it had. A command made for one such change (``netlab
    impair``) fails on it rather than warn.
    ``failed``: what the topology asks to run that is not running because it could not start (a container
    whose command is not there), one line each: the lab's network is up, its workload is not as asked, so
    ``up`` exits 1 as ``status`` does for the same lab (it calls them drift), never 0 with a warning.
    ``deleted_chains``: the stale chains deleted, by (namespace, table), in the order deleted: ``up`` says them
    in one line per namespace and table with those its own restores deleted (:func:`add_deleted_chains`).
    ``made``: (namespace, line) of a planned setting applied where there was none (a rate on a pod's eth0): part of
    making that namespace when this run made it (up says it as no change), else a change as ``actions`` are."""

    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    deleted_chains: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    made: list[tuple[str, str]] = field(default_factory=list)

    def __iadd__(self, other: "StartResult") -> "StartResult":
        self.actions += other.actions
        self.problems += other.problems
        self.refused.update(other.refused)
        self.failed += other.failed
        self.made += other.made
        add_deleted_chains(self.deleted_chains, other.deleted_chains)
        return self


def add_deleted_chains(into: dict[tuple[str, str], list[str]], more: dict[tuple[str, str], list[str]]) -> None:
    """Merge ``more`` into ``into``, each chain named once. A switch from iptables to nftables mode deletes
    kube-proxy's iptables-mode chains by two hands: the plan's restore those it owns by name (-X), the Services
    feature those it recorded; the user reads one list per namespace and table."""
    for key, names in more.items():
        had = into.setdefault(key, [])
        had += [name for name in names if name not in had]


def deleted_chains_lines(deleted: dict[tuple[str, str], list[str]]) -> list[str]:
    """One line per namespace and table: "NETNS: deleted stale TABLE chains A, B"."""
    return [f"{netns}: deleted stale {table} chains {', '.join(names)}"
            for (netns, table), names in deleted.items() if names]


class Feature(Protocol):
    name: str

    def preflight(self, lab: Lab) -> None:
        """Raise EnvironmentNotReady when the machine lacks what this feature needs (before any change)."""

    def start_early(self, lab: Lab, state: LabState) -> Any:
        """A fresh lab: start what needs only the namespaces; returns a handle for start() (or None)."""

    def abort_early(self, handle: Any) -> None:
        """The lab is rolled back: stop what start_early began."""

    def start(self, lab: Lab, state: LabState, early: Any = None) -> StartResult:
        """After the network: make this feature match the topology. Idempotent."""

    def stop_early(self, state: LabState) -> Any:
        """The whole lab goes: begin what needs neither its processes nor its namespaces, beside the others'
        stops and the namespaces' deletion; returns a handle for stop(), called last (or None)."""

    def stop(self, state: LabState, netns_names: Iterable[str], everything: bool = False,
             early: Any = None) -> list[str]:
        """Before these namespaces go (``everything``: the whole lab goes); with stop_early's handle, after
        them: it waits for what that began."""

    def drift(self, lab: Lab, state: LabState) -> list[str]:
        """One line per difference from the topology, for status."""


# Optional (a feature without them is started lab-wide again, by start): ``running(state, netns_names)``, what runs
# in these namespaces' pods now, taken before `up` stops them to make them anew; ``start_again(lab, state,
# netns_names, running)``, a rollback made those pods again: start in them what ran there then, and nothing
# elsewhere (a container a user stopped in another pod stays stopped: a rollback is not a repair);
# ``stop_made(state, netns_names)``, a rollback deletes namespaces its run made again for pods the lab had before:
# stop only what runs in them, not what the pods had before the run (a feature without it: its stop).
# ``stop_taken(state, netns_names)``, pods the topology no longer has whose namespace was deleted by hand and whose
# name holds another's namespace now: stop what of theirs runs from the lab's records, never by that name (nothing
# stopped in theirs, no CNI DEL handed it; a feature without it: its stop, which goes by records alone).
# ``roll_back(state)``, a running lab's rollback: take back what the feature's start left half done in the namespaces
# the run did not make (a CNI pod whose re-attach a signal cut short); what it cannot bring back, one phrase each.
# ``before_run(lab, state)``, a run of ``lab`` over a running lab, before it changes anything: what of the feature a
# rollback puts back (a handle); ``put_back(lab, state, ran, was, skip)``, that run's rollback, once the state holds
# the last good run's topology again (``lab``, resolved from it; ``ran``: the run's lab) and the kernel's objects are
# back: put back what the feature's start changed for the run's topology (a container's command, a file), in the
# namespaces not in ``skip`` (those the rollback deletes or makes again itself); what it cannot, one line each.
# ``release_stopped(state, netns_names)``, the namespaces of terminal pods' stopped sandboxes go (their containers
# exited for good, their CNI DEL ran: lab/up_converge._release_stopped): take away what of the feature was those
# namespaces' alone (the Services feature: the pods' /etc/netns files); nothing else stops (a feature without it: none).


def roll_back(feature: Feature, state: LabState) -> list[str]:
    """``feature.roll_back``'s phrases (none when the feature has no such hook)."""
    back = getattr(feature, "roll_back", None)
    return back(state) if back is not None else []


def before_run(feature: Feature, lab: Lab, state: LabState) -> Any:
    """``feature.before_run``'s handle, or None when the feature has none."""
    hook = getattr(feature, "before_run", None)
    return hook(lab, state) if hook is not None else None


def put_back(feature: Feature, lab: Lab, state: LabState, ran: Lab, was: Any, skip: Collection[str]) -> list[str]:
    """``feature.put_back``'s lines (none when the feature has no such hook)."""
    hook = getattr(feature, "put_back", None)
    return hook(lab, state, ran, was, skip) if hook is not None else []


def stop_made(feature: Feature, state: LabState, netns_names: list[str]) -> list[str]:
    """A rollback deletes these namespaces, which its run made again for pods or nodes the lab had before it:
    ``feature.stop_made`` stops only what runs in them (a feature without it: its stop)."""
    if not netns_names:
        return []
    made = getattr(feature, "stop_made", None)
    return made(state, netns_names) if made is not None else feature.stop(state, netns_names)


def stop_taken(feature: Feature, state: LabState, netns_names: list[str]) -> list[str]:
    """``feature.stop_taken`` of these namespaces, whose names hold another's namespaces now (a feature without it:
    its stop)."""
    taken = getattr(feature, "stop_taken", None)
    return taken(state, netns_names) if taken is not None else feature.stop(state, netns_names)


def release_stopped(feature: Feature, state: LabState, netns_names: list[str]) -> None:
    """``feature.release_stopped`` of these namespaces of terminal pods' stopped sandboxes, which go (nothing when
    the feature has no such hook)."""
    release = getattr(feature, "release_stopped", None)
    if release is not None and netns_names:
        release(state, netns_names)


def running_of(feature: Feature, state: LabState, netns_names: list[str]) -> Any:
    """``feature.running``'s handle, or None when the feature has none."""
    running = getattr(feature, "running", None)
    return running(state, netns_names) if running is not None else None


def start_again(feature: Feature, lab: Lab, state: LabState, netns_names: list[str], running: Any) -> StartResult:
    """Start what ran in the pods of ``netns_names`` (made again by a rollback): ``feature.start_again``, or the
    feature's lab-wide start when it has none."""
    again = getattr(feature, "start_again", None)
    return again(lab, state, netns_names, running) if again is not None else feature.start(lab, state)


class ModuleFeature:
    """A feature written as a module of functions (netlab.workload.lifecycle, netlab.services.lifecycle)."""

    def __init__(self, module: Any):
        self.module = module
        self.name = module.__name__.rsplit(".", 2)[-2]

    def preflight(self, lab: Lab) -> None:
        if hasattr(self.module, "preflight"):
            self.module.preflight(lab)

    def start_early(self, lab: Lab, state: LabState) -> Any:
        return self.module.start_early(lab, state) if hasattr(self.module, "start_early") else None

    def abort_early(self, handle: Any) -> None:
        if handle is not None and hasattr(self.module, "abort_early"):
            self.module.abort_early(handle)

    def start(self, lab: Lab, state: LabState, early: Any = None) -> StartResult:
        kwargs = {"early": early} if early is not None else {}
        out = self.module.start(lab, state, **kwargs)
        return out if isinstance(out, StartResult) else StartResult(problems=list(out or []))

    def stop_early(self, state: LabState) -> Any:
        return self.module.stop_early(state) if hasattr(self.module, "stop_early") else None

    def stop(self, state: LabState, netns_names: Iterable[str], everything: bool = False,
             early: Any = None) -> list[str]:
        kwargs = {"early": early} if early is not None else {}
        return self.module.stop(state, list(netns_names), everything=everything, **kwargs) or []

    def drift(self, lab: Lab, state: LabState) -> list[str]:
        return self.module.drift(lab, state)

    def running(self, state: LabState, netns_names: list[str]) -> Any:
        return self.module.running(state, netns_names) if hasattr(self.module, "running") else None

    def stop_made(self, state: LabState, netns_names: list[str]) -> list[str]:
        if not hasattr(self.module, "stop_made"):
            return self.stop(state, netns_names)
        return self.module.stop_made(state, netns_names) or []

    def roll_back(self, state: LabState) -> list[str]:
        return (self.module.roll_back(state) or []) if hasattr(self.module, "roll_back") else []

    def before_run(self, lab: Lab, state: LabState) -> Any:
        return self.module.before_run(lab, state) if hasattr(self.module, "before_run") else None

    def put_back(self, lab: Lab, state: LabState, ran: Lab, was: Any, skip: Collection[str]) -> list[str]:
        if not hasattr(self.module, "put_back"):
            return []
        return self.module.put_back(lab, state, ran, was, skip) or []

    def release_stopped(self, state: LabState, netns_names: list[str]) -> None:
        if hasattr(self.module, "release_stopped"):
            self.module.release_stopped(state, netns_names)

    def stop_taken(self, state: LabState, netns_names: list[str]) -> list[str]:
        if not hasattr(self.module, "stop_taken"):
            return self.stop(state, netns_names)
        return self.module.stop_taken(state, netns_names) or []

    def start_again(self, lab: Lab, state: LabState, netns_names: list[str], running: Any) -> StartResult:
        if not hasattr(self.module, "start_again"):
            return self.start(lab, state)
        return self.module.start_again(lab, state, netns_names, running)


class RecordedFeature(ModuleFeature):
    """A module feature loaded when first used, and not at all by the ``stop`` of a lab whose state has no
    record of it (``state.extra[records]`` missing or empty: there is nothing of it to undo).

    For netlab.cni.lifecycle and netlab.impair.lifecycle: they load the topology's models and pydantic (40-50
    ms), which a ``down`` of a lab without CNI plugins or impairments needs nowhere else. With ``concerns``,
    the question whether the feature has anything to say of a lab at all (the CNI feature: a lab whose pods
    are attached by CNI plugins), ``drift`` of a lab it does not concern loads nothing either (status), nor do its
    ``preflight`` and ``start`` (an ``up`` of a builtin lab: the CNI runtime, its plugin calls and their log, ~5 ms
    to load, have nothing to do there; the state's record alone says what a rollback takes back). With
    ``parts``, the record is a dict of parts, and one whose every part is empty records nothing either (every
    lab's ``impair``: ``{"shaped": {}, "runtime": {}}`` until an interface is shaped)."""

    def __init__(self, module_name: str, records: str, concerns: Callable[[Lab], bool] | None = None,
                 parts: bool = False):
        self.module_name = module_name
        self.records = records
        self.concerns = concerns
        self.parts = parts
        self.name = module_name.rsplit(".", 2)[-2]

    def recorded(self, state: LabState) -> bool:
        """Whether the state records anything of this feature to undo."""
        rec = state.extra.get(self.records)
        if self.parts and isinstance(rec, dict):
            return any(rec.values())
        return bool(rec)

    @property
    def module(self) -> Any:  # type: ignore[override]
        import importlib

        return importlib.import_module(self.module_name)

    def stop_early(self, state: LabState) -> Any:
        return super().stop_early(state) if self.recorded(state) else None

    def stop(self, state: LabState, netns_names: Iterable[str], everything: bool = False,
             early: Any = None) -> list[str]:
        if not self.recorded(state):
            return []
        return super().stop(state, netns_names, everything=everything, early=early)

    def roll_back(self, state: LabState) -> list[str]:
        return super().roll_back(state) if self.recorded(state) else []

    def stop_taken(self, state: LabState, netns_names: list[str]) -> list[str]:
        return super().stop_taken(state, netns_names) if self.recorded(state) else []

    def before_run(self, lab: Lab, state: LabState) -> Any:
        return super().before_run(lab, state) if self.recorded(state) else None

    def put_back(self, lab: Lab, state: LabState, ran: Lab, was: Any, skip: Collection[str]) -> list[str]:
        return super().put_back(lab, state, ran, was, skip) if self.recorded(state) else []

    def concerned(self, lab: Lab) -> bool:
        """Whether this feature has anything to do with ``lab`` (always, without ``concerns``)."""
        return self.concerns is None or self.concerns(lab)

    def preflight(self, lab: Lab) -> None:
        if self.concerned(lab):
            super().preflight(lab)

    def start_early(self, lab: Lab, state: LabState) -> Any:
        return super().start_early(lab, state) if self.concerned(lab) else None

    def start(self, lab: Lab, state: LabState, early: Any = None) -> StartResult:
        return super().start(lab, state, early=early) if self.concerned(lab) else StartResult()

    def start_again(self, lab: Lab, state: LabState, netns_names: list[str], running: Any) -> StartResult:
        return super().start_again(lab, state, netns_names, running) if self.concerned(lab) else StartResult()

    def drift(self, lab: Lab, state: LabState) -> list[str]:
        return super().drift(lab, state) if self.concerned(lab) else []
