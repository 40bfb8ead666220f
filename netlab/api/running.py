"""The labs that are up, as ``netlab list`` shows them, and where each one's topology came from.

Read from the labs' state files alone: the topology's models load only to tell the built-in default from a
dict, for a lab whose state names no file (both are saved without one).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from netlab.api.origins import BUILT_IN, DICT_SOURCE
from netlab.api.results import LabInfo
from netlab.api.words import stopped
from netlab.errors import down_way, in_python_words, python_words, repair_way, words_said
from netlab.realize import lab_lock, owner, state_dir
from netlab.realize.interrupted import interrupted_up, stalled
from netlab.realize.state import LabState, any_netns, iter_states, load_state
from netlab.realize.state_errors import StateCorrupt, StateNewer, lost_state
from netlab.realize.lab_list import stateless_labs
from netlab.realize.tags import StateElsewhere


def labs() -> tuple[LabInfo, ...]:
    """Every lab that is up, in name order; a lab with a corrupt state, or whose state (or whole folder: its
    namespaces tagged with this state folder) was lost while the lab runs on, or whose pods' files alone remain
    (looked for with the default state directory only), is listed with the error (phase ``corrupt``, ``lost``;
    ``newer``: a state a newer netlab wrote, for that netlab to act on): each is taken down with ``--force``. An
    ``up`` killed before its first state write left only the lab's folder (phase ``interrupted``), and one killed
    later a lab in phase ``creating`` that nobody holds: each row says so,
    and plain ``down`` takes it away. A lab up with another state folder (its namespaces' tag names it) is no lost
    one: phase ``elsewhere``, its line names the folder, whichever folder lists (the default one or another).
    Each row's way out is the Python call (``Lab('L').down()``), or the command for ``netlab list``. Ctrl-C
    meanwhile is a KeyboardInterrupt, also as a lab without a file loads the models (:func:`stopped`)."""
    api = words_said()
    with stopped(), python_words(True if api is None else api):
        return _labs()


def _labs() -> tuple[LabInfo, ...]:
    rows: list[LabInfo] = []
    pods: set[str] = set()  # the namespaces of the labs with a state: their /etc/netns folders are theirs
    for st in iter_states():
        if not isinstance(st, StateCorrupt):
            pods.update(st.netns)
        rows.append(_state_row(st))
    for name in stateless_labs():
        row = _unlisted(name)
        if row is not None:
            rows.append(row)
            continue
        cut = interrupted_up(name)  # an up killed before its first state write: only its folder is left
        if cut is not None:
            rows.append(LabInfo(lab=name, phase="interrupted", namespaces=0, nodes=None, pods=None, source=None,
                                error=cut))
    from netlab.realize.tags import pod_file_labs, tagged_labs  # with the kernel's namespaces (state_errors.lost_state)

    # A lab whose whole folder went (deleted by a `down` that could not read its tags) while its namespaces stayed,
    # tagged with this folder: lost too, not "no lab is up"; one tagged with another folder is up with that one.
    listed = {row.lab for row in rows} | set(stateless_labs())
    for name in tagged_labs(skip=pods, elsewhere=True):
        row = _unlisted(name) if name not in listed else None
        if row is not None:
            rows.append(row)
    if state_dir.STATE_ROOT != state_dir.DEFAULT_STATE_ROOT:
        # The pods' files of the labs up with the default state directory are theirs, not lost labs'.
        return tuple(sorted(rows, key=lambda row: row.lab))
    listed = {row.lab for row in rows}
    # A lab whose state folder went with its namespaces leaves its pods' files under /etc/netns, named by their
    # first line; the folders of the labs with a state are not read.
    for name in pod_file_labs(skip=pods):
        row = _unlisted(name, pod_files=True) if name not in listed else None
        if row is not None:
            rows.append(row)
    return tuple(sorted(rows, key=lambda row: row.lab))


def _state_row(st: LabState | StateCorrupt) -> LabInfo:
    """The row of a lab with a state here (a corrupt one listed so, for the user to take it down with --force)."""
    if isinstance(st, StateCorrupt):  # a newer netlab's (StateNewer) is no damage: acted on with that netlab
        return LabInfo(lab=st.lab, phase="newer" if isinstance(st, StateNewer) else "corrupt", namespaces=None,
                       nodes=None, pods=None, source=None, error=str(st.said_for(in_python_words())))
    topo = st.topology
    record = owner.of(st.extra)
    if st.phase == "up" and st.netns and not _any_netns(st):  # taken down, its state not forgotten
        return LabInfo(lab=st.lab, phase="gone", namespaces=0, nodes=len(topo.get("nodes", [])),
                       pods=len(topo.get("pods", [])), source=source_label(st),
                       error=_elsewhere(st) or  # or made in another mount namespace: said so
                       f"lab {st.lab}: none of its namespaces is there any more, yet its state file remains "
                       f"({state_dir.state_file(st.lab)}): it is not up; once its folder may be written, "
                       f"`{down_way(st.lab)}` forgets it (or `{_again(st.lab)}` makes it again)")
    return LabInfo(lab=st.lab, phase=st.phase, namespaces=len(st.netns), nodes=len(topo.get("nodes", [])),
                   pods=len(topo.get("pods", [])), source=source_label(st), error=stalled(st),
                   owner=owner.describe(record) if record else None,
                   owner_gone=owner.gone(record) if record else None)


def _again(lab: str) -> str:
    """What makes a gone lab again: ``Lab('L').repair()`` (StateGone's), or the command's plain ``up``."""
    return repair_way(lab) if in_python_words() else "up"


_any_netns = any_netns  # a namespace of the state's there with its tag (realize.state.gone: list's phase gone)


def _unlisted(name: str, pod_files: bool = False) -> LabInfo | None:
    """The row of a lab that had no state file as ``list`` read the folder, whose namespaces (or folder's files,
    or ``pod_files``: pods' files) it found since: lost (or elsewhere), or on its way in, which ``list`` must not
    call lost. An ``up`` writes the state before it makes a namespace, and a ``down`` deletes it after the last:
    the lost judgement is made with the lab's lock taken shared (nobody at work), and the state file read after
    the namespaces. A lab whose lock someone holds is at work: its row is its state's now (an ``up`` making it:
    ``creating``), none when it has none yet. None too when nothing remains (simply not up)."""
    with lab_lock.unheld(name) as free:
        if free is False:
            return _state_now(name)
        try:
            lost = lost_state(name, pod_files=pod_files)
        except state_dir.NotNetlabs as exc:  # its namespaces are tagged, its folder is not netlab's: said, not fatal
            return LabInfo(lab=name, phase="lost", namespaces=0, nodes=None, pods=None, source=None, error=str(exc))
        if lost is None:
            return None
        row = _state_now(name)  # made by an up since the folder was read: its state was written first
        if row is not None:
            return row
        if free is None and os.path.lexists(os.path.join(state_dir.STATE_ROOT, name, state_dir.LOCK_FILE)):
            return None  # no lock as the namespaces were read, one now: an up is at work on the lab
        return _lost_row(name, lost)


def _state_now(name: str) -> LabInfo | None:
    """The row of lab ``name``'s state as it is now; None when it has none."""
    try:
        st = load_state(name)
    except StateCorrupt as exc:
        return _state_row(exc)
    return None if st is None else _state_row(st)


def _lost_row(name: str, lost: Exception) -> LabInfo:
    """The row of a lab with no state here: ``lost``, or ``elsewhere`` when its namespaces' tag names another state
    folder (up with that one, another netlab's: the line names it, and how to reach the lab there)."""
    phase = "elsewhere" if isinstance(lost, StateElsewhere) else "lost"
    said_for = getattr(lost, "said_for", None)  # StateLost, PodFilesLeft, StateElsewhere: in the caller's words
    lost = said_for(in_python_words()) if said_for is not None else lost
    return LabInfo(lab=name, phase=phase, namespaces=None, nodes=None, pods=None, source=None, error=str(lost))


def source_label(st: LabState) -> str:
    """Where a running lab's topology came from: its file; else (the state keeps no file for either) the
    built-in default when the saved topology is the default's, whatever its name, or ``<dict>``: a dict
    given to the API or the pytest plugin."""
    return st.source or origin_of(st.topology)


def backend_moved(state: LabState) -> str | None:
    """The line saying that the lab's iptables backend is not the machine's of now (realize.backend.differs),
    its way to move it said for where the lab came from (a dict's: the Python call)."""
    from netlab.realize.backend import differs

    return differs(state, lambda: move_way(state, state.source is None and origin_of(state.topology) == DICT_SOURCE))


def move_way(state: LabState, from_dict: bool) -> str:
    """The `up --reconfigure` that moves the lab, in the caller's words (errors.python_words), as status chooses the
    lab's repair (realize/state.reconfigure_repair): `up --lab L --reconfigure` (``Lab.up(name='L',
    reconfigure=True)``) when its file no longer gives what the lab runs (edited since its last up, no longer
    readable, or impairments set since: `up -t FILE --reconfigure` would apply the edit, or drop them), else its
    file's; the built-in default's plain one; a dict's, which only the Python call can give again (a plain `up
    --reconfigure` would apply the built-in default lab)."""
    if from_dict:
        return "Lab.up(dict, reconfigure=True)"  # the dict it was made from, whatever the words
    from netlab.errors import netlab_command
    from netlab.realize.source_edit import source_changed
    from netlab.realize.state import edited_at_run_time, reconfigure_repair

    changed = source_changed(state) if state.source else None
    if in_python_words():
        from netlab.errors import python_reconfigure
        from netlab.model.load import names_another_lab

        if not state.source or changed is not None or edited_at_run_time(state):  # what the last up applied
            return f"Lab.up(name={state.lab!r}, reconfigure=True)"
        return python_reconfigure(state.source, state.lab if names_another_lab(state.source, state.lab) else None)
    if not state.source:
        return netlab_command("up --reconfigure")  # as state.up_command says it
    return reconfigure_repair(state, changed)


def origin_of(topology: Mapping[str, Any]) -> str:
    """A topology without a file (its YAML's shape): the built-in default when it is the default's, whatever
    its name, else a dict's."""
    mine = {k: v for k, v in topology.items() if k != "name"}
    return BUILT_IN if mine == _default_topology() else DICT_SOURCE


def built_in(topology: Mapping[str, Any], impaired: bool = False) -> bool:
    """Whether a saved topology is the built-in default's, whatever its name; ``impaired``: whatever the
    impairments too (`netlab impair` edits the saved topology of the lab it impairs: still the default lab)."""
    if not impaired:
        return origin_of(topology) == BUILT_IN

    def unimpaired(topo: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in topo.items() if k != "name"}
        for key in ("nodes", "pods"):
            if isinstance(out.get(key), list):
                out[key] = [{k: v for k, v in e.items() if k != "impair"} if isinstance(e, Mapping) else e
                            for e in out[key]]
        return out

    return unimpaired(topology) == unimpaired(_default_topology())


@functools.lru_cache(maxsize=1)
def _default_topology() -> dict[str, Any]:
    """The built-in default topology without its name, as ``up`` saves a topology in the lab's state."""
    from netlab.api.topology import load  # the models: only for a lab without a file

    saved = load(None).lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {k: v for k, v in saved.items() if k != "name"}


def _elsewhere(st: LabState) -> str | None:
    """realize/elsewhere's line for a lab none of whose namespaces is mounted here; where one of its processes may not
    be read (root without CAP_SYS_PTRACE: processes.CannotTell), that it cannot be told, for this row alone."""
    from netlab.kernel.netns import is_netns_mount
    from netlab.kernel.processes import CannotTell
    from netlab.realize.elsewhere import elsewhere

    try:
        return elsewhere(st, is_netns_mount)
    except CannotTell as exc:
        return (f"lab {st.lab}: none of its namespaces is mounted here, and whether it was made in another mount "
                f"namespace cannot be told: {exc.filename} may not be read by root without CAP_SYS_PTRACE; "
                f"`netlab list` where root has it tells")
