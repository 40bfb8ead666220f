"""What the CLI renders beside the API's results: :meth:`netlab.Lab.status` and :meth:`netlab.Lab.probe`'s runs
as the CLI makes them (on its kernel door, with its agent started early; the probe's own report, not its JSON),
and the library's result behind each API result (a trace's walk, which the CLI draws).

The Lab's methods are built on these (netlab.api.lab); the CLI's commands call them for the text, JSON and
JUnit they print, so a 500-pod probe's 250,000 results are not built twice.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from netlab.api import lifecycle, results as R
from netlab.api.args import (PROBE_TIMEOUT, PROTOS, check_bool, check_choice, check_seconds, check_topology, items,
                             method)
from netlab.api.frozen import freeze
from netlab.errors import (LabBusy, UsageError, in_python_words, netlab_command, python_reconfigure,
                           python_words, repair_way)
from netlab.realize.interrupted import Seen, being_taken_down, seen, stalled
from netlab.realize.lab_lock import lab_lock_holder
from netlab.realize import source_edit
from netlab.realize.state import (ASK, LabState, edited_at_run_time, reconfigure_repair, reconfigure_up, repair_up,
                                  replaces)

if TYPE_CHECKING:
    from netlab.api.lab import Lab
    from netlab.api.topology import Loaded, TopologyInput
    from netlab.model.lab import Lab as ModelLab


def internal_status(lab: Lab, topology: TopologyInput = None, kernel: Any = None, api: bool = False,
                    before: Seen | None = None, reader: str = "status", containers: bool = True) -> R.Status:
    """:meth:`Lab.status` on a kernel door the caller opened (the CLI's, reading ahead; closed here); its repair
    is the CLI's command (``api``: the Python call, as :meth:`Lab.status` gives it). ``before``: the lab as seen
    when the caller began to read it (:func:`seen`; None: now). Differences found while another command held the
    lab, or changed it meanwhile, are its work half done, not drift: LabBusy names that command (exit 3).
    ``reader``: the command that reads (realize.interrupted.READERS: a break's read before it breaks), as its lines
    name it. ``containers``: False leaves the lab's containers out (the workload feature: reading their processes
    needs CAP_SYS_PTRACE, :func:`faults_before`)."""
    before = before if before is not None and before.lab == lab.name else seen(lab.name)
    state, against, ahead = lab._against_ahead(topology)
    python = _python_repair(lab.name, topology, state) if api else None
    path = os.fspath(topology) if isinstance(topology, (str, os.PathLike)) else None
    if python is not None and topology is not None:  # its lines' way back: the call that applies the file's plan
        state = replace(state, repair=python)
    # A read cut short by another command (a down that stopped its iptables-save in a namespace) is its work:
    with before.reading(reader), python_words(api):  # its lines' ways out (a container's logs) in the caller's words
        done = lifecycle.status(state, kernel) if containers else lifecycle.status(
            state, kernel, [f for f in lifecycle.default_features() if f.name != WORKLOAD])
    meanwhile = None if done.ok else before.meanwhile(reader)
    if meanwhile is not None:
        raise meanwhile
    repair = None
    edited: tuple[str, ...] = ()  # the lab's file edited since its last up: its `up -t` is not the repair (said)
    if not done.ok and (topology is None or isinstance(topology, (str, os.PathLike))):
        changed: object = ASK  # the lab's file read and validated once, for the line that it changed and its repair
        if topology is None and not api and isinstance(state, LabState) and state.repair is None \
                and not edited_at_run_time(state):  # impaired since: the saved topology is not the file's
            changed = file = source_edit.source_changed(state)
            edited = tuple(filter(None, [source_edit.source_changed_line(state, file, done.reconfigure)]))
        if done.reconfigure:  # a drift a plain up refuses (an edited conflist's pods): only --reconfigure repairs it
            source = path or state.source
            way = None if path else reconfigure_repair(state, changed)  # the lab's own: `up --lab L --reconfigure`?
            if api:
                repair = repair_way(lab.name, way, api=True) if way and " --lab " in way else \
                    python_reconfigure(source, _other_name(lab.name, source))
            else:
                repair = way or reconfigure_up(state, path)
        else:
            repair = python if api else repair_up(state, changed=changed)
    from netlab.workload.policy import held_by_another, moves_a_pod, up_leaves

    kept = tuple(line for line in done.drift if up_leaves(line))
    if kept and len(kept) == len(done.drift):  # nothing that up repairs: no repair to name (the text says so)
        repair = None
    if any(moves_a_pod(line) for line in kept):  # the file's up refuses the lab whole: its two steps, no command
        repair = None
    if any(held_by_another(line) for line in kept):  # up refuses the lab whole until that namespace is removed
        repair = None
    error = stalled(state) if isinstance(state, LabState) else None
    if error is not None and state.phase == "deleting":  # a down left it halfway: `down` finishes it, no up repairs
        repair = None
    # Killed halfway (list's line, ``error``), the lab is not as a finished `up` left it, its kernel as planned or
    # not: a down that removed nothing yet, an up killed at its very end said "all as planned", exit 0 (QA qa59m 2).
    return R.Status(lab=done.lab, ok=done.ok and error is None, objects=done.objects, drift=tuple(done.drift),
                    details=freeze(tuple(done.details)), against=against, repair=repair, kept=kept,
                    warnings=tuple(done.warnings) + tuple(ahead) + _backend_line(state, api) + edited,
                    error=error)


def _python_repair(name: str, topology: TopologyInput, state: Any) -> str | None:
    """The Python call that makes the kernel as ``topology`` plans it (None: the lab's own): ``Lab('NAME').repair()``,
    ``Lab.up('FILE'[, name='NAME'][, reconfigure=True])`` for a file (its name: another's: :func:`_other_name`);
    None for a dict (nothing to name but the lab's own)."""
    if topology is None:
        return f"Lab({name!r}).repair()"
    if isinstance(topology, (str, os.PathLike)):
        path = os.fspath(topology)
        named = _other_name(name, path)
        return (f"Lab.up({path!r}{f', name={named!r}' if named else ''}"
                f"{', reconfigure=True' if replaces(state, path) else ''})")
    return None


def _other_name(lab: str, path: str | None) -> str | None:
    """``lab``, when the file ``path`` names another lab (brought up from it as ``Lab.up(FILE, name=...)``, every
    pytest plugin lab): ``Lab.up('FILE')`` alone would make that other lab, and leave this one as it is."""
    from netlab.model.load import names_another_lab

    return lab if names_another_lab(path, lab) else None


def _backend_line(state: Any, api: bool) -> tuple[str, ...]:
    """The lab's iptables backend, when the machine would choose another now (realize/backend), its way to move
    it in the caller's words (``api``)."""
    from netlab.api.running import backend_moved
    from netlab.realize.state import LabState

    with python_words(api):
        line = backend_moved(state) if isinstance(state, LabState) else None
    return (line,) if line else ()


WORKLOAD = "workload"  # the containers' feature (netlab.workload.lifecycle: ModuleFeature's name)


def faults_before(lab: Lab, reader: str = "break", left_out: list[str] | None = None) -> int:
    """How many differences from its plan the running ``lab`` has that `up` repairs: a fault there already
    (netlab break's, or one made by hand), which a break warns of (netlab.breaks.run.broken_already). A Never
    pod's container that failed is not one: no `up` puts it back. ``reader``: the command that asks (break,
    quiz), as a line of a down met meanwhile names it. Root without CAP_SYS_PTRACE, which may not read the lab's
    containers (processes.CannotTell; a break whose scenario reads no process runs without it): the differences
    of the rest, and ``left_out`` gets the line that says the containers were not looked at."""
    from netlab.kernel.processes import CannotTell

    try:
        try:
            result = internal_status(lab, reader=reader)
        except CannotTell:
            result = internal_status(lab, reader=reader, containers=False)
            if left_out is not None:
                left_out.append(f"lab {lab.name}'s containers were not looked at for a fault before this break: "
                                "reading their processes needs CAP_SYS_PTRACE, which root lacks here")
    except LabBusy:  # another command's work half done, no fault: the break waits for the lab's lock
        return 0
    return len(result.drift) - len(result.kept)


def internal_probe(lab: Lab, topology: TopologyInput = None, *, protos: Sequence[str] = ("icmp", "tcp", "udp"),
                   timeout: float = 1.0, arp: str = "auto", services: bool = True, mtu: bool = False,
                   early: Any = None, said: Callable[[list[str]], None] | None = None,
                   first: Callable[[str], None] | None = None, before: Seen | None = None) -> Any:
    """:meth:`Lab.probe`'s run, as the library's own report (netlab.probe.runner.Report), which the CLI
    renders as text, JSON or JUnit: a 500-pod run's 250,000 results are not built twice. ``early``: the
    CLI's agent started before the models loaded (netlab.probe.early). ``said``: given the note of a
    ``topology`` whose policies the running lab does not run (:func:`other_policies`), before the run (the
    report's ``file_notes`` has it too: -o json's and the API's ``notes``);
    ``first``: the line of a lab an up or down left halfway, before anything else (:func:`killed_first`).
    ``before``: the lab as seen when the caller began (:func:`seen`; None: now): a run with failures, or one cut
    short by an error, while another command held the lab, or changed it meanwhile, met its work half done:
    LabBusy names it, as status does."""
    from netlab.probe import runner
    from netlab.probe.job import ARP_MODES

    with method("lab.probe"):  # the CLI's click options took these already
        check_topology(topology)
        protos = items("protos", protos, PROTOS)
        timeout = check_seconds("timeout", timeout, PROBE_TIMEOUT)
        check_choice("arp", arp, ARP_MODES)
        check_bool("services", services)
        check_bool("mtu", mtu)
    before = before if before is not None and before.lab == lab.name else seen(lab.name)
    state = lab.state()
    model = lab._served(state)  # as up serves it: a Completed/Error pod is no Service's endpoint to expect
    error = killed_first(model, state, first)  # an up killed halfway: what the probes meet is its work half done
    notes: list[str] = []
    if topology is not None:
        loaded = lab._loaded_for(topology)
        same_pods(loaded, model)
        if isinstance(topology, (str, os.PathLike)):
            notes = other_policies(model, loaded, topology, state, "probe")
            if said is not None:
                said(notes)
        model = loaded.lab.with_terminal(model.terminal)  # the running lab's: the file's expectations of them
    with before.reading("probe"):  # a run an up cut short (a namespace it deleted, made again): its work half done
        report = runner.run(model, timeout=timeout, protos=tuple(protos) + (("mtu",) if mtu else ()), arp=arp,
                            services=services, early=early)
    meanwhile = None if report.ok else before.meanwhile("probe")
    if meanwhile is not None:
        raise meanwhile
    for line in report.deleted:  # a pod's namespace deleted (ip netns delete): exec's line, once, after list's
        if first is not None and line != error:
            first(line)
    report.error = error or (report.deleted[0] if report.deleted else None)  # as status's; else the first deleted
    report.file_notes = notes
    return report


def killed_first(model: ModelLab, state: Any, first: Callable[[str], None] | None, running: bool = True
                 ) -> str | None:
    """List's line for a lab whose ``up`` or ``down`` was killed halfway (realize/interrupted.stalled), given to
    ``first`` before a command that reads the lab says anything else (probe, policy table: a note, a turn-wait
    line), as status says it first, and returned for its JSON's ``error``; None for any other lab. ``running``:
    the command sends packets in the lab: a lab whose underlay is gone (a down killed after deleting the
    namespaces) is refused in one line, list's with it (probe/runner.not_up), not said twice; and so is a lab a
    ``down`` is at work on (phase deleting, its lock held: the lab's processes stopped, its namespaces going), as
    once its namespaces are gone, not probed on its way out."""
    if running and state.phase == "deleting" and lab_lock_holder(model.name) is not None:
        raise being_taken_down(model.name, "its namespaces go with it")
    error = stalled(state)
    if error is not None:
        from netlab.kernel.netns import is_netns_mount
        from netlab.probe.runner import not_up

        if running and not is_netns_mount(model.underlay_netns):
            raise not_up(model)
        if first is not None:
            first(error)
    return error


def killed_before_trace(lab: Lab, first: Callable[[str], None]) -> str | None:
    """trace's :func:`killed_first`: list's line of a lab an ``up`` or ``down`` left halfway, given to ``first``
    before the trace's progress, when every namespace of the lab is there (else the trace's refusal of the one it
    meets missing says list's line with it, once); the line said, else None."""
    from netlab.kernel.netns import is_netns_mount
    from netlab.realize.state import LabState

    state = lab.state()
    error = stalled(state) if isinstance(state, LabState) else None
    if error is None or not all(is_netns_mount(ns) for ns in state.netns):
        return None
    first(error)
    return error


# The library's own result behind each API result that has one, for the CLI's text rendering, by the API
# result's id while it lives: not an attribute, so that a result pickled, deep-copied or sent to another
# process is its fields alone, as its JSON.
_INTERNAL: dict[int, Any] = {}


def keep(result: Any, internal: Any) -> None:
    """The library's own result beside the API's, for the CLI's text rendering (not a field: not in the JSON)."""
    _INTERNAL[id(result)] = internal
    weakref.finalize(result, _INTERNAL.pop, id(result), None)


def internal(result: Any) -> Any:
    """The library's result behind an API result (probe: netlab.probe.runner.Report; trace: TraceResult)."""
    return _INTERNAL.get(id(result))


def same_pods(loaded: Loaded, running: ModelLab, command: str = "probe") -> None:
    """A file probed against a running lab (its expectations or policies, edited without `up`) must have the lab's
    pods at the lab's addresses: a pod it adds would be judged at another pod's address (a false pass).
    ``command``: the one said to check the file so (``probe``, ``policy table``)."""
    have = {p.name: p.ip for p in running.pods}
    for pod in loaded.lab.pods:
        if have.get(pod.name, pod.ip) != pod.ip or pod.name not in have:
            where = f"at {have[pod.name]} in the lab" if pod.name in have else "not in the lab"
            if in_python_words():  # lab.probe(topology)'s caller: the Lab's calls, not the CLI's commands
                how = (f"lab.{command}(topology) checks a topology's expectations on the lab as it is; "
                       f"`Lab({running.name!r}).status(topology)` shows what bringing it up would change")
            else:
                how = (f"{command} -t FILE checks a file's expectations on the lab as it is; "
                       f"`{netlab_command('status -t FILE')}` shows what `up -t FILE` would change")
            raise UsageError(f"{loaded.origin}: pod {pod.name} ({pod.ip}) is {where} {running.name} that is up: {how}")


def other_policies(running: ModelLab, loaded: Loaded, topology: Any, state: Any, judge: str) -> list[str]:
    """The note said when ``topology``'s NetworkPolicies judge a flow otherwise than the ``running`` lab's (the
    file edited, not `up` since): how many flows, the first, and the `up` that applies the file's; none when they
    agree. ``judge``: who judges by the file's (``the table``, ``probe``); ``state``: the running lab's."""
    from netlab.errors import display_path
    from netlab.probe.policytable import evaluate
    from netlab.realize.state import up_command

    mine = {(f.src, f.dst, f.proto, f.port): f.allowed for f in evaluate(running).flows}
    other = [f for f in evaluate(loaded.lab).flows
             if mine.get((f.src, f.dst, f.proto, f.port), f.allowed) != f.allowed]
    if not other:
        return []
    first, path = other[0], os.fspath(topology)
    flows = f"{len(other)} flows" if len(other) > 1 else "1 flow"
    return [f"lab {running.name} runs other policies than {display_path(path)}: {flows} judged otherwise "
            f"(first: {first.src} -> {first.dst} {first.proto}/{first.port}, "
            f"{'allowed' if first.allowed else 'denied'} by the file); {judge} judges the file's; "
            f"`{up_command(path, replaces(state, path))}` applies them"]
