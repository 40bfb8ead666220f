"""The labs that are up, as ``netlab list`` shows them, and where each one's topology came from.

Read from the labs' state files alone: the topology's models load only to tell the built-in default from a
dict, for a lab whose state names no file (both are saved without one).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from netlab.api.origins import BUILT_IN, DICT_SOURCE
from netlab.api.results import LabInfo
from netlab.realize import owner, state_dir
from netlab.realize.interrupted import interrupted_up, stalled
from netlab.realize.state import LabState, StateCorrupt, iter_states, lost_state
from netlab.realize.state_dir import stateless_labs
from netlab.realize.tags import StateElsewhere


def labs() -> tuple[LabInfo, ...]:
    """Every lab that is up, in name order; a lab with a corrupt state, or whose state (or whole folder: its
    namespaces tagged with this state folder) was lost while the lab runs on, or whose pods' files alone remain
    (looked for with the default state directory only), is listed with the error (phase ``corrupt``, ``lost``):
    each is taken down with ``--force``. An ``up`` killed before its first state write left only the lab's folder
    (phase ``interrupted``), and one killed later a lab in phase ``creating`` that nobody holds: each row says so,
    and plain ``down`` takes it away. A lab up with another state folder (its namespaces' tag names it) is no lost
    one: phase ``elsewhere``, its line names the folder."""
    rows: list[LabInfo] = []
    pods: set[str] = set()  # the namespaces of the labs with a state: their /etc/netns folders are theirs
    for st in iter_states():
        if isinstance(st, StateCorrupt):  # listed, so the user can take it down with --force
            rows.append(LabInfo(lab=st.lab, phase="corrupt", namespaces=None, nodes=None, pods=None, source=None,
                                error=str(st)))
            continue
        topo = st.topology
        pods.update(st.netns)
        record = owner.of(st.extra)
        rows.append(LabInfo(lab=st.lab, phase=st.phase, namespaces=len(st.netns), nodes=len(topo.get("nodes", [])),
                            pods=len(topo.get("pods", [])), source=source_label(st), error=stalled(st),
                            owner=owner.describe(record) if record else None,
                            owner_gone=owner.gone(record) if record else None))
    for name in stateless_labs():
        lost = lost_state(name)
        if lost is not None:
            rows.append(_lost_row(name, lost))
            continue
        cut = interrupted_up(name)  # an up killed before its first state write: only its folder is left
        if cut is not None:
            rows.append(LabInfo(lab=name, phase="interrupted", namespaces=0, nodes=None, pods=None, source=None,
                                error=cut))
    from netlab.realize.tags import pod_file_labs, tagged_labs  # with the kernel's namespaces (state.lost_state)

    # A lab whose whole folder went (deleted by a `down` that could not read its tags) while its namespaces stayed,
    # tagged with this folder: lost too, not "no lab is up".
    listed = {row.lab for row in rows} | set(stateless_labs())
    for name in tagged_labs(skip=pods):
        lost = lost_state(name) if name not in listed else None
        if lost is not None:
            rows.append(_lost_row(name, lost))
    if state_dir.STATE_ROOT != state_dir.DEFAULT_STATE_ROOT:
        # The pods' files of the labs up with the default state directory are theirs, not lost labs'.
        return tuple(sorted(rows, key=lambda row: row.lab))
    listed = {row.lab for row in rows}
    # A lab whose state folder went with its namespaces leaves its pods' files under /etc/netns, named by their
    # first line; the folders of the labs with a state are not read.
    for name in pod_file_labs(skip=pods):
        lost = lost_state(name, pod_files=True) if name not in listed else None
        if lost is not None:
            rows.append(_lost_row(name, lost))
    return tuple(sorted(rows, key=lambda row: row.lab))


def _lost_row(name: str, lost: Exception) -> LabInfo:
    """The row of a lab with no state here: ``lost``, or ``elsewhere`` when its namespaces' tag names another state
    folder (up with that one, another netlab's: the line names it, and how to reach the lab there)."""
    phase = "elsewhere" if isinstance(lost, StateElsewhere) else "lost"
    return LabInfo(lab=name, phase=phase, namespaces=None, nodes=None, pods=None, source=None, error=str(lost))


def source_label(st: LabState) -> str:
    """Where a running lab's topology came from: its file; else (the state keeps no file for either) the
    built-in default when the saved topology is the default's, whatever its name, or ``<dict>``: a dict
    given to the API or the pytest plugin."""
    return st.source or origin_of(st.topology)


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
