"""The lab's saved state, ``/run/netlab/<lab>/state.json`` (which lab a command acts on: realize/lab_name.py).

The state is what proves ownership: ``down`` deletes a namespace only when the state lists it *and* the namespace
carries the lab's run id (see netns.py). It also keeps the topology, so ``down``/``status`` work without the file.
Every load checks it whole against state_schema.py, unless it is byte for byte what this netlab wrote
(state_sum.py); the directory it lives in, its atomic writes and the lab's lock are state_dir.py's.
"""

from __future__ import annotations

import errno
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from netlab.errors import NetlabError, UsageError, display_path, loads_json, netlab_command
from netlab.realize.lab_env import LAB_ENV as LAB_ENV, EnvLabName
from netlab.realize.lab_list import known_labs
from netlab.realize.up_words import up_command as up_command  # its callers import it from here too
from netlab.realize.state_dir import STATE_REVISION, STATE_VERSION, NotRegularFile, StateTooLarge, read_state_file
from netlab.realize.state_dir import state_dir_error, state_file, write_atomic
from netlab.plan.sysctls import RESTORED
from netlab.realize.state_sum import trusted, write_sum
# A state that cannot say what its lab made (state_errors); tests import these from here too
from netlab.realize.state_errors import (PodFilesLeft as PodFilesLeft, StateCorrupt, StateGone as StateGone,
                                        StateLost, StateNewer, lost_state)

if TYPE_CHECKING:
    from netlab.kernel.kill import Stopped
    from netlab.model.addressing import Held
    from netlab.model.lab import Lab
    from netlab.model.topology import Topology

# netlab.lab.up: the addresses (and nodePorts) the lab's nodes, pods and Services hold (model/addressing.py's Held),
# which the next up keeps. A state without it, or a record without one of OLDER_HELD (an older netlab's), holds what
# its topology resolves to afresh there: what that netlab made.
ADDRESSES = "addresses"
OLDER_HELD = ("nodes", "load_balancers", "node_ports", "health_checks", "portmap_nodes", "bridge_nodes")
ASK = object()  # repair_up's ``changed`` when the caller has not read the file: it reads it itself
# The top-level keys save() writes; any other is a newer release's, kept as it is (LabState.unknown).
KEYS = frozenset({"version", "revision", "lab", "run_id", "phase", "source", "topology", "netns", "plan", "extra"})


@dataclass
class LabState:
    """What one lab owns, as saved on disk."""

    lab: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    topology: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    netns: dict[str, str] = field(default_factory=dict)  # name -> "intent" (about to be created) or "created"
    # Records of later features (containers, nat payloads ...); one this release does not know is a newer release's,
    # kept as it is and never read (state_schema.Extra).
    extra: dict[str, Any] = field(default_factory=dict)
    phase: str = "creating"  # creating | up | failed | deleting
    # Not saved: the `up` that makes the kernel as ``topology`` plans it when that is not what the lab runs (`status
    # -t FILE` compares with FILE's plan, api.Lab._against: `up -t FILE --reconfigure` applies it): repair_up's.
    repair: str | None = field(default=None, repr=False, compare=False)
    # Not saved: the files outside the state directory this run's feature stops removed (the pods' /etc/netns/<ns>/
    # files), by path, for down's result (`down -o json`'s removed_pod_files).
    removed_files: list[str] = field(default_factory=list, repr=False, compare=False)
    # Not saved: the processes not the lab's (a user's `netlab exec`, nsenter) that this run's feature stops
    # stopped with the lab's namespaces, until the stop's caller takes them (lab/teardown.stop_features): up's and
    # down's ``stopped`` (`-o json`'s stopped_processes), or a rollback's lines.
    stopped_others: list[Stopped] = field(default_factory=list, repr=False, compare=False)
    # Not saved: set by down's teardown, every save is best effort (the tags prove what is the lab's, and a state
    # that cannot be written must not stop the lab's removal halfway); ``unsaved`` keeps the last save's error,
    # for down to say why the state stays once the lab is gone (an immutable folder: QA q2, defect 3).
    tearing_down: bool = field(default=False, repr=False, compare=False)
    unsaved: NetlabError | None = field(default=None, repr=False, compare=False)
    # Not saved: `down --force`'s stand-in for a corrupt or lost state (realize/ownership.py), no run's state (a new
    # run id, no topology), is never written: killed, that down left a state whose tag no namespace carries, which
    # a plain `down` forgot, leaving the lab (QA qa59m 1); now the lab's state stays as it was.
    stand_in: bool = field(default=False, repr=False, compare=False)
    # The topology as validated, beside the dict it was validated from: validated once (by load_state, or by the
    # first model()) while ``topology`` is that dict (it is replaced, never edited in place).
    _model: tuple[dict[str, Any], Topology] | None = field(default=None, init=False, repr=False, compare=False)
    # The loaded file's top-level keys this release does not know (a newer release's): written back as they were.
    unknown: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def path(self) -> str:
        return state_file(self.lab, create=True)

    def save(self, best_effort: bool = False) -> bool:
        """Write the state atomically; StateWriteFailed if it cannot be written whole.

        ``best_effort``: report failure by returning False instead (teardown on a
        full disk: the namespaces are proven by their tags, the old state on disk
        still lists them, and deleting them must go on).
        """
        if self.stand_in:  # no state of the lab's: nothing is written
            return True
        data = {
            **{key: value for key, value in self.unknown.items() if key not in KEYS},
            "version": STATE_VERSION,
            "revision": STATE_REVISION,
            "lab": self.lab,
            "run_id": self.run_id,
            "phase": self.phase,
            "source": self.source,
            "topology": self.topology,
            "netns": self.netns,
            # Older netlab versions saved every plan resource here (82% of a 500-pod lab's state, and
            # three quarters of the time to validate it) and read none: status and up build the plan
            # from the topology. The key stays, empty, for those versions' schema.
            "plan": [],
            "extra": self.extra,
        }
        raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        from netlab.kernel import testhooks  # as write_atomic's: only where state is written

        testhooks.fault_point("state-write")  # about to write: the first of an up's, its folder holds its lock alone
        try:
            write_atomic(self.path, raw, point="state-temp-written")
        except NetlabError as exc:
            self.unsaved = exc
            if not best_effort and not self.tearing_down:
                raise
            return False
        testhooks.fault_point("state-renamed")  # the state on disk, its sum not yet
        write_sum(self.lab, raw)
        return True

    def model(self) -> Topology:
        """The saved topology, its cluster DNS add-on's command as this netlab makes it (the release that saved it
        may have made another: status and up compare the container with this one, as with the lab's file's)."""
        if self._model is None or self._model[0] is not self.topology:
            # Imported here, like resolved()'s imports: every command imports this module,
            # and only those that read a lab's topology load the models.
            from netlab.model.topology import Topology

            try:
                topo = Topology.model_validate(self.topology)
            except ValueError as exc:  # a state trusted as this netlab wrote it, yet no topology (an earlier
                raise self._corrupt(exc) from None  # netlab's saved stand-in, `down --force`'s: QA qa59m 1)
            self._model = (self.topology, self._renewed(topo))
        return self._model[1]

    def _corrupt(self, exc: ValueError) -> StateCorrupt:
        """The saved topology does not validate or resolve (``exc``): the state is corrupt, said in one line."""
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StateCorrupt(self.lab, state_file(self.lab), f"topology: {why[:160]}")

    def _renewed(self, topo: Topology) -> Topology:
        """``topo`` (the saved topology, validated) with the add-on's command this netlab's (model())."""
        from netlab.model.addressing import Held
        from netlab.model.clusterdns import renewed_addon

        rec = self.extra.get(ADDRESSES)  # as held() reads it (which resolves this model when its nodes are not)
        return renewed_addon(topo, Held.from_json(rec) if isinstance(rec, dict) else None)

    def restored(self) -> tuple[str, ...]:
        """The IPv4 all/default settings the lab's namespaces set back to the kernel's values, because the
        machine gave new namespaces other values (plan/sysctls.py, KERNEL_DEVCONF; validated on load)."""
        keys = self.extra.get(RESTORED)
        return tuple(keys) if isinstance(keys, list) else ()

    def held(self) -> Held | None:
        """The addresses the lab's nodes, pods and Services hold, as its last up saved them (None: as its topology
        resolves afresh, an older netlab's state; so do the nodes', load balancers' and nodePorts' of a record
        that has none, and nodePorts an older netlab held by port number are held by the names of its saved
        topology's ports; its nodes with cni0 are every node, which it made it on). Schema-checked on load."""
        from dataclasses import replace
        from netlab.model.addressing import Held
        from netlab.model.lab import resolve

        rec = self.extra.get(ADDRESSES)
        if not isinstance(rec, dict):
            return None
        held = Held.from_json(rec)
        if held.older_node_ports:  # an older netlab's, by port number and protocol: named by the ports it ran
            try:
                held = held.migrated(self.model())
            except (ValueError, StateCorrupt):  # no longer resolves: the next up's file names them
                pass
        older = [key for key in OLDER_HELD if key not in rec]
        if not older:
            return self._from_records(held)
        try:  # nodes, load balancers and nodePorts are allocated apart from pods and ClusterIPs
            lab = resolve(self.model(), held)
        except (ValueError, StateCorrupt):  # a saved topology that no longer resolves: resolved() says so
            return self._from_records(held)
        fresh = replace(lab.held(), bridge_nodes=frozenset(n.name for n in lab.nodes if lab.cni != "conflist"))
        return self._from_records(replace(held, **{key: getattr(fresh, key) for key in older}))

    def _from_records(self, held: Held) -> Held:
        """``held`` with what the lab's CNI records say its plugins keep: :meth:`_kept_pod_sides`, and the pods'
        leases (``cni_leases``)."""
        from dataclasses import replace
        from netlab.realize.attachments import record_leases

        held = self._kept_pod_sides(held)
        leases = record_leases(self)
        return replace(held, cni_leases=leases) if leases else held

    def _kept_pod_sides(self, held: Held) -> Held:
        """``held`` with the nodes where the lab's CNI plugins keep a device (a conflist's bridge, recorded before
        each ADD: cni/attach.note_devices) among its ``bridge_nodes``: their side stays when the node's last pod
        goes, as the bridge plugin never deletes its bridge (nor the pods' gateway on it). Read, not saved: a
        state of any revision records its plugins' devices so (its ``bridge_nodes`` of a conflist lab: none)."""
        from dataclasses import replace
        from netlab.model.naming import netns_name
        from netlab.realize.attachments import KEY

        rec = self.extra.get(KEY)
        devices = rec.get("devices") if isinstance(rec, dict) else None
        nodes = self.topology.get("nodes") if isinstance(self.topology, dict) else None
        if not isinstance(devices, dict) or not devices or not isinstance(nodes, list):
            return held
        kept = {n["name"] for n in nodes if isinstance(n, dict) and isinstance(n.get("name"), str)
                and devices.get(netns_name(self.lab, n["name"]))}
        return replace(held, bridge_nodes=held.bridge_nodes | kept) if kept - held.bridge_nodes else held

    def holding(self) -> Held:
        """What the next up of this lab keeps: the addresses its pods and Services hold (nothing, when its saved
        topology no longer resolves: the next up converges it to a file, afresh)."""
        from netlab.model.addressing import Held

        held = self.held()
        if held is not None:
            return held
        try:
            return self._from_records(self.resolved().held())
        except StateCorrupt:
            return Held()

    def resolved(self) -> Lab:
        """The saved topology, resolved; a saved topology that no longer resolves is a corrupt state."""
        from netlab.model.lab import resolve
        from netlab.realize.attachments import attached_lab

        try:
            return attached_lab(resolve(self.model(), self.held()).with_restored(self.restored()), self)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            raise self._corrupt(exc) from None


def load_state(lab: str) -> LabState | None:
    """Read a lab's state; None when the lab is not known, StateCorrupt when the file is not
    a valid state of this lab (see state_schema.py)."""
    path = state_file(lab)
    try:
        raw = read_state_file(lab)
    except NotRegularFile:
        raise StateCorrupt(lab, path, "it is not a regular file") from None
    except StateTooLarge as exc:
        raise StateCorrupt(lab, path, str(exc)) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateCorrupt(lab, path, "it is a symlink") from None
        raise state_dir_error(path, exc) from None
    if raw is None:
        return None
    if trusted(lab, raw):  # as this netlab wrote it: checked when it was read, or made by it (state_sum.py)
        data, topo = loads_json(raw), None
    else:
        from netlab.realize.state_schema import NewerFormat, check_state

        try:
            data, topo = check_state(raw, lab)
        except NewerFormat as exc:
            raise StateNewer(lab, path, str(exc)) from None
        except ValueError as exc:
            raise StateCorrupt(lab, path, str(exc)) from None
    st = LabState(lab=lab, run_id=data["run_id"], topology=data["topology"], source=data["source"],
                  netns=data["netns"], extra=data["extra"], phase=data["phase"],
                  unknown={key: value for key, value in data.items() if key not in KEYS})
    if topo is not None:
        st._model = (st.topology, st._renewed(topo))  # validated by check_state: model() does not validate it again
    return st


def state_version(lab: str) -> tuple[int, int, int, int] | None:
    """What tells one written state file from the next (each save is a new file, renamed over
    the old: a new inode); None when there is none. A state read earlier with the same version
    is the file's content now."""
    try:
        st = os.stat(state_file(lab), follow_symlinks=False)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def replaces(state: LabState, source: str | None) -> bool:
    """Whether ``up -t source`` would replace a lab brought up from another file. None is no file: the built-in
    default or a dict, which this cannot tell apart (netlab.api.views.replaces_running does, by the topology)."""
    old, new = state.source, source
    if old is None or new is None:
        return old != new
    return not (os.path.abspath(old) == os.path.abspath(new) or os.path.realpath(old) == os.path.realpath(new))


def check_source(state: LabState | None, source: str | None, reconfigure: bool) -> None:
    """``up -t FILE`` of a lab that is up from another file (or from the built-in default)
    would silently replace it: refuse, naming the running file, unless ``--reconfigure``."""
    if state is None or reconfigure or not replaces(state, source):
        return
    old, new = state.source, source
    # No file is saved for the built-in default nor for a dict given to the API (or the pytest plugin).
    running = display_path(old) if old is not None else "the built-in default or a dict (no file)"
    given = display_path(new) if new is not None else "the built-in default"  # the API says a dict its own way
    # The way to replace it names the file given: a plain `up --reconfigure` would apply the built-in default.
    raise UsageError(f"lab {state.lab} is up from {running}, and {given} has the same name: it would replace "
                     f"that lab; rename it, or replace the running lab with `{up_command(new, reconfigure=True)}`")


def repair_up(state: LabState, reconfigure: bool = False, changed: object = ASK) -> str:
    """The `up` that repairs the running lab of ``state``: the one that converges it to what `status` compares
    the kernel with. That is its file when the lab is as its file made it; `up --lab NAME` when its desired state
    holds changes the file does not (`netlab impair`'s: `up -t FILE` would put the file's impairments back), and
    for a lab made from a dict or the built-in default, which has no file (a plain `up` makes the built-in lab
    "demo", whatever lab was meant). A state made for another file's plan (``state.repair``): that file's `up`.
    ``reconfigure``: the lab runs pods attached with a conflist edited since, which a plain `up` refuses
    (netlab.workload.reconfigure.reconfigures, which realize cannot ask): :func:`reconfigure_up`, as `status` names
    it. ``changed``: source_edit.source_changed's answer when status has it already (the file read once)."""
    if state.repair is not None:
        return state.repair
    if reconfigure:
        return reconfigure_repair(state, changed)
    from netlab.model.load import names_another_lab  # a lab brought up from its file under another name: by name
    from netlab.realize.source_edit import source_changed

    if state.source and not edited_at_run_time(state) and not names_another_lab(state.source, state.lab) \
            and (source_changed(state) if changed is ASK else changed) is None:
        return up_command(state.source)
    return netlab_command(f"up --lab {state.lab}")


def reconfigure_repair(state: LabState, changed: object = ASK) -> str:
    """The `up` that repairs the running lab of ``state`` when its drift holds a difference only `up --reconfigure`
    puts right (a feature.Reconfigure line: pods attached with a conflist edited since), as `status` names it:
    `up --lab NAME --reconfigure` when its file no longer gives what the lab runs (edited since its last up, or
    impairments set since: `up -t FILE --reconfigure` would apply the edit, or drop them), else
    :func:`reconfigure_up`'s. ``changed``: source_edit.source_changed's answer when the caller has it already."""
    from netlab.realize.source_edit import source_changed

    if state.source and (edited_at_run_time(state) or (source_changed(state) if changed is ASK else changed)):
        return netlab_command(f"up --lab {state.lab} --reconfigure")
    return reconfigure_up(state)


def reconfigure_up(state: LabState, source: str | None = None) -> str:
    """The file's `up -t FILE --reconfigure` (``source``: the file status compared the kernel with, else the lab's
    own), which a plain `up` refusing pods attached with a conflist edited since names. A lab made from a dict (every
    pytest plugin lab) or the built-in default has no file to name: `up --lab NAME --reconfigure` (its saved
    topology, the conflist read again; ``Lab('NAME').repair(reconfigure=True)`` in Python). A lab brought up
    from the file under a name of its own (the file's ``name:`` is another lab's, every pytest plugin lab): no
    `netlab up -t` names it (that `up` makes the file's lab), so the Python call with ``name=``, as a command
    (errors.python_command). The running lab's own repair, as status names it: :func:`reconfigure_repair`."""
    from netlab.model.load import names_another_lab

    path = source or state.source
    if path and names_another_lab(path, state.lab):  # `up -t FILE --reconfigure` would make the file's lab
        from netlab.errors import python_command, python_reconfigure

        return python_command(python_reconfigure(path, state.lab))  # no `netlab up` names it: Lab.up's name=
    return up_command(path, reconfigure=True) if path else netlab_command(f"up --lab {state.lab} --reconfigure")


def edited_at_run_time(state: LabState) -> bool:
    """Whether the lab's desired state holds changes its file does not: interfaces `netlab impair` set (or cleared)
    that no `up` from the file has replaced since (netlab.impair.lifecycle's record ``impair.runtime``; its
    shape is state_schema.ImpairRecord's)."""
    rec = state.extra.get("impair")
    runtime = rec.get("runtime") if isinstance(rec, dict) else None
    return isinstance(runtime, dict) and any(isinstance(k, str) and isinstance(v, dict) for k, v in runtime.items())


def repair_command(name: str, reconfigure: Callable[[LabState], bool] | None = None) -> str:
    """The `up` that repairs the running lab ``name`` (`up --lab NAME` when its state is unreadable: that lab,
    whatever other lab is up, and the one line that says what is wrong with its state). ``reconfigure``: whether
    the lab's state needs `up --reconfigure` (netlab.workload.reconfigure.repair_command passes its check)."""
    try:
        st = load_state(name)
    except NetlabError:
        st = None
    if st is None:
        return netlab_command(f"up --lab {name}")
    return repair_up(st, reconfigure is not None and reconfigure(st))


def reconfigure_command(name: str) -> str:
    """The `up --reconfigure` of the running lab ``name`` (:func:`reconfigure_repair`, as status names it): what
    attaches its pods again with its conflist as the file names it now."""
    try:
        st = load_state(name)
    except NetlabError:
        st = None
    return reconfigure_repair(st) if st is not None else up_command("FILE", reconfigure=True)


def held_by(name: str) -> Held | None:
    """What the running lab ``name`` holds (the addresses its pods and Services keep at the next up), None when
    it is not up, or its state cannot be read here (not root: the state directory is root's; a corrupt state,
    which the command that needs it says)."""
    try:
        state = load_state(name)
        return state.holding() if state is not None else None
    except (NetlabError, OSError):
        return None


def running_lab(name: str) -> LabState:
    """The saved state of a lab that is up; a usage error naming the labs up otherwise, EnvironmentNotReady when
    it was made in another mount namespace (realize/elsewhere.py)."""
    st = load_state(name)
    if st is None:
        raise not_up(name)
    from netlab.realize import backend, cni_path  # the lab's iptables backend and CNI plugins: as it was made
    from netlab.kernel.processes import CannotTell
    from netlab.realize.elsewhere import refuse_elsewhere

    try:
        refuse_elsewhere(st)  # made in another mount namespace: said where, not read as gone or its pods unknown
    except CannotTell:
        pass  # root without CAP_SYS_PTRACE cannot tell: read as before (list says it cannot tell)

    backend.act_on(st)
    cni_path.act_on(st)
    return st


def not_up(name: str, why: str = "", then: str = "") -> UsageError | StateLost:
    """The error of a command asked for the lab ``name``, which has no state: StateLost when what a run of it
    made remains (:func:`lost_state`), `netlab list`'s line of a lab an up killed before its first state write
    left (its folder, realize/interrupted.interrupted_up: impair, status ... said "is not up"), else a usage error
    naming the labs that are up (``why``: where its name came from; ``then``: what to do)."""
    lost = lost_state(name)
    if lost is not None:  # running without its state: only `down --force` knows what it made
        return lost
    from netlab.realize.interrupted_up import up_interrupted

    cut = up_interrupted(name)  # an up killed before its first state write left its folder: list's line for it
    if cut is not None:
        return cut
    labs = known_labs()
    hint = f" (labs up: {', '.join(labs)})" if labs else ""
    why = why or (f" (named by ${LAB_ENV})" if isinstance(name, EnvLabName) else "")
    return UsageError(f"lab {str(name)!r}{why} is not up{hint}{then}")


def gone(st: LabState, kernel: Any = None) -> bool:
    """Whether the lab of ``st`` is no lab that is up though its state remains: `netlab list`'s phase ``gone``, none
    of the namespaces it names is there with its tag (a ``down`` that removed them and could not forget the state:
    an immutable folder, QA q2 defect 3). ``kernel``: read through that door (status's), else the machine's."""
    return st.phase == "up" and bool(st.netns) and not any_netns(st, kernel)


def any_netns(st: LabState, kernel: Any = None) -> bool:
    """Whether a namespace the state names is there with the lab's tag (one whose tag cannot be read counts: never
    said gone on a doubt); ``kernel``: its ``read_tag`` (None for no namespace), else the machine's namespaces."""
    from netlab.kernel import netns as nsmod
    from netlab.realize import tags

    tag = tags.state_tag(st.lab, st.run_id, st.extra)
    if kernel is not None:
        names, read_tag = sorted(st.netns), kernel.read_tag
    else:
        there = set(nsmod.list_netns())
        names, read_tag = [name for name in st.netns if name in there], nsmod.read_tag
    for name in names:
        try:
            if read_tag(name) == tag:
                return True
        except (OSError, ValueError):
            return True
    return False


def iter_states() -> Iterator[LabState | StateCorrupt]:
    """Every lab's state, in name order; a corrupt one is yielded as its error, so one
    bad file does not hide the other labs."""
    for name in known_labs():
        try:
            st = load_state(name)
        except StateCorrupt as exc:
            yield exc
            continue
        if st is not None:
            yield st


def still_up(lab: str, run_id: str, command: str, waited_for: str | None, then: str = "") -> LabState:
    """Lab ``lab``'s state read again once ``command`` (``this up``) holds the lab's lock: it read the lab up (run
    ``run_id``) before it waited for the lock, and what it read must still be the lab. A lab taken down meanwhile
    (by ``waited_for``, the holder it waited for) is refused as one that is not up (:func:`not_up`, ``then``);
    one taken down and brought up again (another run) as another lab than it read: nothing is done to either."""
    st = load_state(lab)
    by = f" by {waited_for}" if waited_for else ""
    if st is None:
        raise not_up(lab, then=f": taken down{by} while {command} waited for the lab{then}")
    if st.run_id != run_id:
        raise UsageError(f"lab {lab} was taken down{by} and brought up again while {command} waited for the lab: "
                         "what it read is not the lab that is up now; nothing done (run it again)")
    return st
