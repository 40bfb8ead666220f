"""``netlab.Lab``: a running lab in Python, with everything the CLI does to one.

::

    from netlab import Lab

    with Lab.up("topologies/services.yaml", name="t1") as lab:   # down on leaving, also on an exception
        assert lab.exec("web-1", ["hostname"]).stdout.strip() == "web-1"
        r = lab.reach("client", "web-2", proto="tcp", port=8080)
        assert r.reachable and r.seen_source == lab.pod("client").ip   # no NAT
        assert lab.probe().ok and lab.status().clean

Errors are netlab's own (netlab.errors: TopologyError, UsageError,
EnvironmentNotReady, ApplyFailed, ChecksFailed ...), each with the CLI's
exit code in ``exit_code``; results are frozen dataclasses with the fields of
the CLI's ``-o json`` (netlab.api.results).
"""

from __future__ import annotations

import collections
import json
import os
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Self, Sequence, TypeVar

from netlab.api import lifecycle, results as R
from netlab.api.args import (WAIT, check_bool, check_callable, check_path, check_seconds, check_str, check_topology,
                             method)
from netlab.api.internals import internal as internal, internal_probe as internal_probe  # the CLI's, re-exported
from netlab.api.internals import internal_status as internal_status
from netlab.api.lab_checks import LabChecks, Progress
from netlab.api.lab_pods import PodActions
from netlab.api.words import containers_read, said
from netlab.errors import UsageError
from netlab.lab import collector
from netlab.realize.lab_name import LAB_ENV as LAB_ENV  # netlab.api's, re-exported
from netlab.realize.state import ADDRESSES, replaces, running_lab, state_version, up_command
from netlab.realize.state_dir import check_lab_name

# What only some methods need (loading a topology, probes, views of the model)
# is imported in those methods, so each command loads what it uses: down and
# status never load the prober, probe and trace never load the features
# (api/lifecycle.py).

if TYPE_CHECKING:
    from netlab.api.topology import Loaded, TopologyInput
    from netlab.kernel.kill import Stopped
    from netlab.model.lab import Lab as ModelLab
    from netlab.realize.state import LabState

KEEP_TRACES = 10  # the last traces and reach results a Lab keeps (the pytest plugin's dump of a failed test)


class Lab(LabChecks, PodActions):
    """A lab that is up (or was, before :meth:`down`), by name.

    Get one with :meth:`up` (brings it up; leaving a ``with`` block takes it
    down, unless it was up before: then it is only converged, and left up) or
    :meth:`attach` (a lab that is already up; left up). Its checks (status,
    probe, reach, trace) are those of :class:`netlab.api.lab_checks.LabChecks`,
    its actions inside the pods (exec, popen, logs, inspect, ``break_``) those
    of :class:`netlab.api.lab_pods.PodActions`.
    """

    def __init__(self, name: str, *, owned: bool = False) -> None:
        with method("Lab"):
            check_str("name", name)
            check_bool("owned", owned)
        self.name: str = check_lab_name(name, "lab name")
        self.owned = owned  # brought up by this object: a ``with`` block takes it down
        self.last_up: R.UpResult | None = None
        # Of last_up's warnings, those said at the lab's up before (the neighbour table's, its size unchanged):
        # `netlab up` does not say them again on stderr; -o json and last_up keep them
        self._repeated_warnings: tuple[str, ...] = ()
        self._budget_warning: str | None = None  # up's neighbour-table warning (the CLI records it said)
        self.traces: collections.deque[R.Trace] = collections.deque(maxlen=KEEP_TRACES)
        self.reaches: collections.deque[R.ProbeResult] = collections.deque(maxlen=KEEP_TRACES)
        self._model: ModelLab | None = None
        self._model_key = ""
        self._down = False
        # Called as down() begins, before anything is removed (the pytest plugin's: the lab of a failing test
        # is read before a with block's end takes it down).
        self._before_down: list[Callable[[], None]] = []
        # The state attach() read to check the lab is up, with the file's version then: the next
        # state() takes it if the file has not changed since, instead of reading it again.
        self._attached: tuple[tuple[int, int, int, int] | None, LabState] | None = None
        # Whose words a lab whose state is corrupt, lost or elsewhere is said in: a Python caller's (the call
        # that takes it down), or, for the lab a command acts on (internal_attach), the CLI's (the command).
        self._api_words = True

    def __repr__(self) -> str:
        return f"<netlab.Lab {self.name}{' (down)' if self._down else ''}>"

    # --- getting a lab -------------------------------------------------------------------

    @classmethod
    def up(cls, topology: TopologyInput = None, name: str | None = None, *, wait: float = 60.0,
           reconfigure: bool = False, progress: Progress | None = None) -> Lab:
        """Bring a lab up (or converge a running one) and return it.

        ``topology``: a file's path, a dict shaped like the YAML, or None for the
        built-in default lab; ``name`` replaces its ``name:``. Checks what the
        machine must have first (EnvironmentNotReady, nothing changed); a failed
        ``up`` is rolled back (ApplyFailed). A container that could not start
        leaves the lab up: ``lab.last_up.failed`` names it (``last_up.ok`` is
        False), as ``status()`` does, where the CLI exits 1. A lab of that name up from another file or dict
        (or the built-in default) is refused, a UsageError, unless ``reconfigure``; the same one converges it.
        """
        from netlab.api.origins import DICT_SOURCE
        from netlab.api.topology import load
        from netlab.api.views import refuse_replacing
        from netlab.realize.state import load_state

        with method("Lab.up"):
            check_topology(topology)
            check_str("name", name, none_ok=True)
            _check_waiting(wait, progress)
            check_bool("reconfigure", reconfigure)
        loaded = load(topology, name)
        if not reconfigure and loaded.origin != DICT_SOURCE:  # a dict's: up_loaded's (the pytest plugin's way in)
            refuse_replacing(loaded, load_state(loaded.lab.name))  # as `up` would, in an API caller's words
        return cls.up_loaded(loaded, wait=wait, reconfigure=reconfigure, progress=progress)

    @classmethod
    @collector.paused()  # the lab's state read, its up, and what is said of it: nothing garbage before it returns
    def up_loaded(cls, loaded: Loaded, *, wait: float = 60.0, reconfigure: bool = False,
                  progress: Progress | None = None) -> Lab:
        """:meth:`up` for a topology already read with :func:`netlab.api.load`."""
        from netlab.api.origins import BUILT_IN, DICT_SOURCE
        from netlab.api.topology import Loaded, topology_notes
        from netlab.api.views import refuse_replacing
        from netlab.probe import budget_said
        from netlab.probe.neighbours import neighbour_budget_warning
        from netlab.realize.state import load_state
        from netlab.workload.terminal import served as as_served

        with method("Lab.up_loaded"):
            if not isinstance(loaded, Loaded):
                raise UsageError(f"loaded must be what netlab.api.load returns, not {type(loaded).__name__}")
            _check_waiting(wait, progress)
            check_bool("reconfigure", reconfigure)
        state = load_state(loaded.lab.name)
        if not reconfigure and loaded.origin in (DICT_SOURCE, BUILT_IN):  # a file's: lifecycle.up's
            refuse_replacing(loaded, state, cli=loaded.origin != DICT_SOURCE)  # a dict: the pytest plugin's way in
        done = lifecycle.up(loaded.lab, source=loaded.source, progress=progress, wait=wait, reconfigure=reconfigure,
                            running=loaded.run_id)  # a running lab's saved topology: refused once that is down
        served = as_served(loaded.lab, load_state(loaded.lab.name))  # its Completed/Error pods are no endpoints
        warnings = list(done.warnings)
        # validate's notes, said as validate says them (netlab.cli.topology): notes, not warnings
        notes = topology_notes(loaded, served)
        budget = neighbour_budget_warning(loaded.lab)
        if budget:
            warnings.append(budget)
        if loaded.lab.cni == "conflist":  # a conflist field its plugin here is too old to read: the doctor's words
            from netlab.cni.fields import unread_fields

            warnings += unread_fields(loaded.lab)
        # A lab that was up already (someone's `netlab up`, another test's) is theirs: a with block leaves it up.
        # Known under the lab's lock, when up begins: two processes bringing up one lab at once are never both
        # its owners (the first to leave its with block took it down under the other).
        lab = cls(loaded.lab.name, owned=done.fresh)
        lab.last_up = R.UpResult(lab=done.lab, changed=done.changed, created_netns=tuple(done.created_netns),
                                 removed_netns=tuple(done.removed_netns), fixed=tuple(done.fixed),
                                 operations=done.operations, warnings=tuple(warnings),
                                 failed=tuple(done.failed), notes=tuple(notes),
                                 note_places=tuple(R.NotePlace(**n.place()) for n in notes),
                                 stopped_processes=_stopped_processes(done.stopped))
        lab._budget_warning = budget
        if budget and not done.fresh and state is not None and budget_said.repeated(state.topology, loaded.lab, budget):
            lab._repeated_warnings = (budget,)  # the CLI said it at the up before, of a lab this size: said once
        return lab

    @classmethod
    def attach(cls, name: str | None = None) -> Lab:
        """A lab that is up: by name, else ``$NETLAB_LAB``, else the only lab up. Leaving a ``with`` block
        leaves it up (call :meth:`down` to take it down)."""
        with method("Lab.attach"):
            check_str("name", name, none_ok=True)
            if name is not None:
                check_lab_name(name, "name")  # said as the argument it is, not as the CLI's --lab
        from netlab.realize.lab_name import selected_name as select  # not the CLI's: --lab

        chosen = select(name, api=True)  # none up, or several: said in a Python caller's words
        assert chosen is not None
        version = state_version(chosen)
        with said(api=True):  # its way out: the Python call, not the command
            state = running_lab(chosen)  # a usage error naming the labs that are up, when it is not
        lab = cls(str(chosen))  # a plain name: EnvLabName only marks where it came from
        lab._attached = (version, state)
        return lab

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.owned or self._down:
            return
        try:
            self.down()
        except Exception as err:
            if exc is None:
                raise
            exc.add_note(f"netlab: taking lab {self.name} down failed too: {err}")

    def down(self, *, wait: float = 60.0, force: bool = False, progress: Progress | None = None) -> R.DownResult:
        """Delete everything the lab made (safe to call twice; ``force``: by the namespaces' tags,
        for a corrupt or lost state)."""
        with method("lab.down"):
            _check_waiting(wait, progress)
            check_bool("force", force)
        try:
            for hook in [] if self._down else list(self._before_down):
                hook()
        finally:  # whatever a hook met (Ctrl-C while it reads the lab), the lab goes down
            done = lifecycle.down(self.name, wait=wait, progress=progress, force=force)
        self._down = True
        self._model = None
        return R.DownResult(lab=done.lab, was_up=done.was_up, removed_netns=tuple(done.removed_netns),
                            skipped=tuple(done.skipped), problems=tuple(done.problems),
                            removed_pod_files=tuple(done.removed_pod_files),
                            stopped_processes=_stopped_processes(done.stopped))

    # --- what it is ------------------------------------------------------------------------

    def state(self) -> LabState:
        """The lab's saved state (UsageError when it is not up), read from its file each time."""
        attached, self._attached = self._attached, None
        if attached is not None and attached[0] is not None and attached[0] == state_version(self.name):
            return attached[1]  # read by attach(), and the file is still the one it read: used once
        with said(api=self._api_words):  # a corrupt or lost state's way out, as attach() says it
            return running_lab(self.name)

    @property
    def model(self) -> ModelLab:
        """The resolved topology of the running lab: every name, address and MAC (read from its
        state each time: another process, or another ``Lab``, may have changed the lab since)."""
        state = self.state()
        with said(api=self._api_words):  # a saved topology that no longer resolves: a corrupt state
            return self._model_of(state)

    def _model_of(self, state: LabState) -> ModelLab:
        """``state``'s resolved topology, kept while the saved topology, the pods' CNI attachments (a re-attached
        pod's new address) and the settings set back stay the same."""
        key = json.dumps([state.topology, state.extra.get("cni"), state.restored(), state.extra.get(ADDRESSES)],
                         sort_keys=True, default=str)
        if self._model is None or self._model_key != key:
            self._model, self._model_key = state.resolved(), key
        return self._model

    def _served(self, state: LabState | None = None) -> ModelLab:
        """The running lab as ``up`` serves it (workload/terminal.py: its Completed/Error pods are no Service's
        endpoints), from ``state`` (None: read now): what trace, probe, reach and ``services`` expect."""
        from netlab.workload.terminal import served

        state = state if state is not None else self.state()
        with said(api=self._api_words):
            return served(self._model_of(state), state)

    def pods(self, selector: str | None = None) -> tuple[R.PodInfo, ...]:
        """The pods, with their containers' states; ``selector`` as kubectl's ``-l`` (``app=web``)."""
        from netlab.api import views

        with method("lab.pods"):
            check_str("selector", selector, none_ok=True)
        with containers_read():  # one root may not read (no CAP_SYS_PTRACE): the CLI's line
            return views.pods(self.state(), self.model, selector)

    def nodes(self) -> tuple[R.NodeInfo, ...]:
        from netlab.api import views

        return views.nodes(self.model)

    def services(self) -> tuple[R.ServiceInfo, ...]:
        from netlab.api import views

        return views.services(self._served())  # Completed/Error pods: no endpoints

    def pod(self, name: str) -> R.PodInfo:
        """One pod: ``lab.pod("web-1").ip``."""
        with method("lab.pod"):
            check_str("name", name)
        return _one(self.pods(), name, "pod", self.name)

    def node(self, name: str) -> R.NodeInfo:
        with method("lab.node"):
            check_str("name", name)
        return _one(self.nodes(), name, "node", self.name)

    def service(self, name: str, namespace: str | None = None) -> R.ServiceInfo:
        """One Service by name (and namespace, when two share a name)."""
        with method("lab.service"):
            check_str("name", name)
            check_str("namespace", namespace, none_ok=True)
        found = [s for s in self.services() if s.name == name and namespace in (None, s.namespace)]
        if len(found) != 1:
            known = ", ".join(f"{s.namespace}/{s.name}" for s in self.services()) or "none"
            why = "several Services are" if found else "no Service is"
            raise UsageError(f"lab {self.name}: {why} named {name!r} (Services: {known})")
        return found[0]

    # --- changing it ------------------------------------------------------------------------

    def repair(self, *, wait: float = 60.0, progress: Progress | None = None, reconfigure: bool = False) -> R.UpResult:
        """``netlab up --lab NAME``: converge the lab to its saved topology, what :meth:`status` compares
        with (the topology it was last brought up with, and :meth:`impair`'s changes since), without its file
        or dict. ``reconfigure``: ``up --lab NAME --reconfigure``, which also re-attaches the CNI pods attached
        with another config than the conflist has now. Returns what it did; a failure is rolled back
        (ApplyFailed)."""
        from netlab.api.topology import load_running

        with method("lab.repair"):
            _check_waiting(wait, progress)
            check_bool("reconfigure", reconfigure)
        done = type(self).up_loaded(load_running(self.name), wait=wait, progress=progress,
                                    reconfigure=reconfigure).last_up
        assert done is not None
        return done

    def impair(self, target: str, *, rate: str | None = None, delay: str | None = None, jitter: str | None = None,
               loss: str | None = None, clear: bool = False, wait: float = 60.0) -> R.ImpairResult:
        """``netlab impair NAME:IFACE``: set what the interface sends suffers (``rate="10mbit"``,
        ``delay="20ms"``, ``jitter="5ms"``, ``loss="1%"``), or ``clear=True``; the lab's desired state
        until ``up`` from its file. Returns ``netlab impair -o json``'s fields (``before``, ``after``,
        ``changes``); a change the kernel refuses raises ApplyFailed, with the lab as it was. What the
        kernel has now: :meth:`impairments`."""
        from netlab.api import impair as impair_api

        with method("lab.impair"):
            check_str("target", target)
            for what, value in (("rate", rate), ("delay", delay), ("jitter", jitter), ("loss", loss)):
                check_str(what, value, none_ok=True)  # as the CLI's options: "10mbit", not 10
            check_bool("clear", clear)
            check_seconds("wait", wait, WAIT)
            name, iface = impair_api.parse_target(target)
            spec = impair_api.options(rate, delay, jitter, loss, clear, flag=str,
                                      show=f"lab.impairments({target!r})")
        return impair_api.result(impair_api.impair(self.name, name, iface, spec, wait=wait))

    def impairments(self, target: str | None = None) -> R.Impairments:
        """``netlab impair [NAME:IFACE]`` with no option: what the lab's interfaces suffer, read from the kernel
        (rates and delays from their qdiscs, a loss from its rule, with the frames it dropped so far), each with
        what the lab's topology says; ``target``: that interface alone, impaired or not."""
        from netlab.api import impair as impair_api

        with method("lab.impairments"):
            check_str("target", target, none_ok=True)
            if target is not None:
                impair_api.parse_target(target)
        return impair_api.view(self.name, impair_api.show(self.name, target))

    # --- helpers ---------------------------------------------------------------------------------

    def _loaded_for(self, topology: TopologyInput) -> Loaded:
        """A topology to compare or probe this lab with, under this lab's name."""
        from netlab.api.topology import load

        return load(topology, self.name)

    def _against(self, topology: TopologyInput) -> tuple[LabState, str | None]:
        return self._against_ahead(topology)[:2]

    def _against_ahead(self, topology: TopologyInput) -> tuple[LabState, str | None, list[str]]:
        """The lab's state with the plan of ``topology`` (None: its own), the file's name, and what the `up` of
        that file does that its objects do not show (realize.attachments.up_ahead: pods made anew, addresses
        another's ip: takes), in up's words."""
        from netlab.realize.attachments import up_ahead

        state = self.state()
        if topology is None:
            return state, None, []
        loaded = self._loaded_for(topology)
        ahead = up_ahead(loaded.lab, state, status=True)  # a CNI pod's move: said as drift
        saved = loaded.lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
        # resolved as up resolves it: the running lab's pods and Services keep the addresses they hold
        held = {**state.extra, ADDRESSES: state.holding().to_json()}
        # The `up` that applies that plan, for status's lines to name (a dict: none to type; they name the lab's own)
        path = os.fspath(topology) if isinstance(topology, (str, os.PathLike)) else None
        repair = up_command(path, replaces(state, path)) if path is not None else None
        return replace(state, topology=saved, extra=held, repair=repair), loaded.origin, ahead


_Named = TypeVar("_Named", "R.PodInfo", "R.NodeInfo")  # names: the classes load when asked for


def selected_name(name: str | None = None, topology: str | None = None, required: bool = True) -> str | None:
    """The lab a command acts on, as the CLI picks it: ``name``, the ``name:`` of the file ``topology``,
    ``$NETLAB_LAB``, or the only lab that is up (``required``: a UsageError when there is none, else None)."""
    from netlab.realize.lab_name import selected_name as select

    with method("netlab.api.selected_name"):
        check_str("name", name, none_ok=True)
        check_path("topology", topology)
        check_bool("required", required)
    return select(name, None if topology is None else os.fspath(topology), required)


def internal_attach(name: str | None, topology: str | None) -> Lab:
    """The running lab a CLI command acts on (--lab, -t FILE, $NETLAB_LAB, the only lab up), as :meth:`Lab.attach`
    gives it; a lab whose state cannot say what it made is said with the command that takes it down (`sudo netlab
    down --lab NAME --force`), where Lab.attach names the Python call."""
    from netlab import api  # the package's names, as the commands called them (and tests stand in for them)

    with said(api=False):
        lab = api.Lab.attach(api.selected_name(name, topology))
    if isinstance(lab, Lab):
        lab._api_words = False  # its state() and model, read again by the command: said in the CLI's words too
    return lab


def _check_waiting(wait: Any, progress: Any) -> None:
    """The arguments of every method that takes the lab's lock and changes it (up, down, repair)."""
    check_seconds("wait", wait, WAIT)
    check_callable("progress", progress)


def _one(items: Sequence[_Named], name: str, what: str, lab: str) -> _Named:
    for item in items:
        if item.name == name:
            return item
    raise UsageError(f"lab {lab} has no {what} {name!r} ({what}s: {', '.join(i.name for i in items) or 'none'})")


def _stopped_processes(stopped: Sequence[Stopped]) -> tuple[R.StoppedProcess, ...]:
    """The processes not the lab's that a removal stopped (up's and down's ``stopped``, kill.Stopped), as the
    API says them: said as what was removed, not as warnings."""
    return tuple(R.StoppedProcess(netns=p.netns, pid=p.proc.pid, command=p.command) for p in stopped)
