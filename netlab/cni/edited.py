"""A CNI config changed while pods run: which pods were attached with another config than ``up`` would ADD now.

Each pod's record keeps the networks (config and interface) its ADD used, as libcni caches the config beside the
result (``cachedConf``). A conflist edited in place keeps its path, so ``network.cni`` looks the same: the pods
then run with the old config while a pod attached later would get the new one, a lab of two configs. netlab's
CHECK and DEL of a pod use the config its ADD used (what the plugins made it with), so ``status`` names such pods
on a line of their own, a plain ``up`` refuses before it changes anything (a new or repaired pod would mix the two),
and ``up --reconfigure`` re-attaches them: DEL with the config they were attached with, then ADD with the new one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from netlab.cni import conf as C
from netlab.errors import UsageError, netlab_command, repair_way
from netlab.feature import Reconfigure
from netlab.model.cniconf import ConflistError
from netlab.realize import state as state_mod
from netlab.realize.attachments import move_refused, node_moves, pod_records, recorded_moves
from netlab.realize.state_dir import lab_dir

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.realize.state import LabState


class Unreadable(Reconfigure):
    """:func:`drift`'s line for a conflist edited in place into one that cannot be read: its way out is to fix the
    file first (the watcher says so: api/watch_repair.refused), then `up --reconfigure`."""


def host_local_dir(lab_name: str, node: str) -> str:
    """host-local's leases on a node (a real node's /var/lib/cni/networks, on its own disk): inside the lab's state
    directory, gone with it (never the machine's /var/lib/cni)."""
    return os.path.join(lab_dir(lab_name, create=False), "cni", "networks", node)  # a path: host-local makes it


def networks_now(lab: Lab, pod: PodInfo, node: str | None = None) -> list[list[Any]]:
    """The networks ``up`` would ADD the pod to now, as its record keeps them ([config, interface] each).
    ``node``: on that node (the one its record says it was attached on), not the pod's in ``lab``: a config differs
    from node to node (host-local's range is the node's podCIDR), and a pod moved to another node is a move, not
    an edited config (QA q21 #2)."""
    there = next((n for n in lab.nodes if n.name == node), None) or lab.node(pod.node)
    return [[n.raw, ifname] for n, ifname in C.networks(lab, there, host_local_dir(lab.name, there.name))]


def stale(lab: Lab, state: LabState) -> list[str]:
    """The pods of ``lab`` attached with another config than the one ``up`` would ADD now (none when the conflist
    cannot be read now: :func:`drift` says that, up's preflight refuses it)."""
    try:
        return _stale(lab, state)
    except ConflistError:
        return []


def _stale(lab: Lab, state: LabState) -> list[str]:
    """:func:`stale`; ConflistError when a pod is attached and the conflist cannot be read now. A terminal pod
    (``lab.terminal``) is none: it is never ADDed again, and its stopped sandbox's DEL runs with the config its ADD
    used (its record's networks), as libcni DELs with the cached config, whatever the file says now."""
    if lab.cni == "builtin":
        return []
    records = pod_records(state)
    return [pod.name for pod in lab.pods if pod.name not in lab.terminal
            and isinstance(prec := records.get(pod.name), dict) and prec.get("phase") == "added"
            and prec.get("networks") != networks_now(lab, pod, _node_of(prec))]


def _node_of(prec: dict) -> str | None:
    """The node a pod's record says its plugins attached it on."""
    node = prec.get("node")
    return node if isinstance(node, str) else None


def drift(lab: Lab, state: LabState) -> list[str]:
    """status's lines for a config edited since the pods' ADD: pods attached with another config than now's, or
    a conflist edited in place into one that cannot be read (not JSON, deleted: validate's words), which up
    refuses at preflight while the pods run on with the config they were attached with (QA q17 #5)."""
    try:
        names = _stale(lab, state)
    except ConflistError as exc:
        records = pod_records(state)
        attached = [p.name for p in lab.pods if isinstance(prec := records.get(p.name), dict)
                    and prec.get("phase") == "added"]
        return [unreadable_line(state, exc, attached)]
    moves = recorded_moves(lab, state)
    if moves:  # a move first, as up refuses it (check), in one line with an edited config (QA q24 #2)
        return [move_line(lab, state, moves[0], names)]
    return [drift_line(lab, state, names)] if names else []


# The words every line of a conflist that cannot be read holds (cni/edited.unreadable_line): status's footer
# says the file's fix comes first (:func:`first_step`)
CANNOT_READ = "and up refuses the lab until it can be read"


def unreadable_line(state: LabState, exc: ConflistError, attached: list[str]) -> Unreadable:
    """:func:`drift`'s line for a conflist that cannot be read now: edited into one that is not valid (fix it), or
    deleted or moved (put it back, or point the topology at its new path; QA q19); then --reconfigure."""
    its, it, them = ("its", "it", "the pod") if len(attached) == 1 else ("their", "they", "them")
    pods = _pods(attached)
    then = (f"before it was deleted (or moved) ({its} CHECK runs with the config {it} {pods.rsplit(' ', 1)[1]} "
            f"attached with) {CANNOT_READ}: put the file back, or point the topology's network.cni.conflist at "
            f"its new path" if exc.missing else
            f"before it was edited ({its} CHECK runs with the config {it} {pods.rsplit(' ', 1)[1]} attached with) "
            f"{CANNOT_READ}: fix the file (or put the old config back)")
    return Unreadable(f"cni: network.cni.conflist: {exc}; {pods} attached with it {then}; once it "
                      f"{'can be read' if exc.missing else 'is valid'}, {_way(state)} re-attaches {them} with it")


def first_step(drift: Sequence[str]) -> str:
    """status's words before its repair's `up` when a drift line says the conflist cannot be read: that `up`
    refuses the lab (exit 2) until the file is fixed, or put back (:func:`unreadable_line`); else nothing."""
    return "fix the conflist first (the cni: line says how), then " if any(CANNOT_READ in line for line in drift) \
        else ""


def move_line(lab: Lab, state: LabState, move: tuple[str, str, str], names: list[str]) -> str:
    """status's line for a pod the file (`status -t FILE`) puts on another node than its plugins attached it on:
    the refusal of its `up`, with the two steps; with the config edited too, both, and (a Reconfigure line) the
    first step's `up` --reconfigure. status names no repair for it (workload/policy.moves_a_pod): the file's `up`
    refuses the lab, --reconfigure too (QA q29 #2)."""
    also = f"; and {source(lab)} changed since {_pods(names)} attached with it" if names else ""
    line = "cni: " + move_refused(lab, move, also, _way(state) if names else "`up`").removeprefix(f"lab {lab.name}: ")
    return Reconfigure(line) if names else line


def source(lab: Lab) -> str:
    cni = lab.topo.network.cni
    return "the reference chain's config" if isinstance(cni, str) else f"conflist {cni.conflist}"


def _pods(names: list[str]) -> str:
    return (f"pod {names[0]} was" if len(names) == 1 else
            f"pods {', '.join(names[:5])}{f' (and {len(names) - 5} more)' if len(names) > 5 else ''} were")


def check(lab: Lab, state: LabState | None, reconfigure: bool) -> None:
    """A plain ``up`` of a lab whose pods were attached with another config: refused before any change (exit 2).
    A pod moved to another node is refused first, with its two steps (``up`` would refuse it anyway, --reconfigure
    too); when the config was edited as well, the same line says so, and its first `up` is --reconfigure."""
    if state is None:
        return
    moves = node_moves(lab, state) if lab.cni != "builtin" else []
    names = stale(lab, state) if moves or not reconfigure else []
    if moves:
        also = f"; and {source(lab)} changed since {_pods(names)} attached with it" if names else ""
        raise UsageError(move_refused(lab, moves[0], also, _way(state) if names else "`up`"))
    if names:
        raise UsageError(f"lab {lab.name}: {source(lab)} changed since {_pods(names)} attached with it, and a pod "
                         f"attached now would get the new config beside them: {_way(state)} re-attaches them "
                         f"(their DEL with the config they were attached with, then ADD with the new one), or put "
                         f"the old config back")


def _way(state: LabState | None, repair: bool = False) -> str:
    """The command that re-attaches them: the file's `up -t FILE --reconfigure` (a plain `up` refused: the file it
    applies), or ``repair``, status's, the running lab's repair (realize.state.reconfigure_repair: `up --lab NAME
    --reconfigure` once its file was edited since); in the caller's words (errors.repair_way: ``Lab.up('FILE',
    reconfigure=True)`` in a Lab method, as the container lines say)."""
    command = state_mod.up_command("FILE", reconfigure=True) if state is None else \
        state_mod.reconfigure_repair(state) if repair else state_mod.reconfigure_up(state)
    return f"`{repair_way(state.lab if state is not None else '', command)}`"


def drift_line(lab: Lab, state: LabState, names: list[str]) -> Reconfigure:
    """status's line for pods attached with another config: only `up --reconfigure` re-attaches them, so the repair
    status names says --reconfigure (feature.Reconfigure)."""
    its, it, them = ("its", "it", "it") if len(names) == 1 else ("their", "they", "them")  # one pod, or several
    return Reconfigure(f"cni: {source(lab)} changed since {_pods(names)} attached with it: {its} CHECK runs with "
                       f"the config {it} {_pods(names).rsplit(' ', 1)[1]} attached with; {_way(state, True)} "
                       f"re-attaches {them} with the new one")


def reattach_reason(lab: Lab) -> str:
    return f"{source(lab)} changed since its ADD"


def reconfigures_lab(lab: Lab, state: LabState) -> bool:
    """Whether the running lab of ``state`` is repaired by `up -t FILE --reconfigure` (a plain `up` refuses it:
    :func:`check`), ``lab`` as `up` and `status` serve it (its terminal pods named: workload/terminal.served): a line
    of its :func:`drift` is a feature.Reconfigure, as `status` decides it (lab/status.py). Every other command's line
    names it through workload/reconfigure.py, which knows the terminal pods."""
    return any(isinstance(line, Reconfigure) for line in drift(lab, state))


def up_again(state: LabState, lab: Lab) -> str:
    """The `up` that puts back what a failed `up` could not (a pod a re-attach left detached): `up -t FILE
    --reconfigure` when pods keep a config edited since (a plain `up` refuses the lab then: :func:`check`), else
    `sudo netlab up --lab L`. ``lab``: the lab as the run planned it (a rollback's, of the state alone:
    workload/reconfigure.up_again)."""
    return state_mod.reconfigure_up(state) if stale(lab, state) else netlab_command(f"up --lab {state.lab}")
