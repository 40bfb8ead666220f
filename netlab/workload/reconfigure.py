"""The `up` every command names as the repair of a running lab (trace's fix lines, exec's, inspect's and logs'
hints, probe's, break's and quiz's refusals, a deleted namespace's line, a rollback's), as `status` names it:
`up -t FILE --reconfigure` when pods run attached with a conflist edited since their ADD, which a plain `up`
refuses (cni/edited.check), else the plain one (realize.state.repair_up).

One rule, status's (cni/edited.reconfigures_lab), on the lab as `up` and `status` serve it
(workload/terminal.served): a terminal pod whose stopped sandbox's DEL has not run is none of those pods (a plain
`up` DELs it with the config its ADD used, as libcni DELs with its cached config), so a lab whose only such pods have
terminated is repaired by a plain `up`, in every line as in status's (the lines read the lab without its terminal
pods and named --reconfigure). Here, not in cni/edited.py: which pods are terminal is the workload's to say (their
containers' records and processes), which the CNI package does not ask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.cni import edited
from netlab.errors import NetlabError, NetnsGone, netlab_command
from netlab.realize import netns_missing, state as state_mod

if TYPE_CHECKING:
    from netlab.realize.state import LabState


def reconfigures(state: LabState) -> bool:
    """Whether the running lab of ``state`` is repaired by `up -t FILE --reconfigure` (a plain `up` refuses it), as
    status decides it (its drift holds a line of cni/edited.drift that is a feature.Reconfigure)."""
    rec = state.extra.get("cni")
    if not isinstance(rec, dict) or not rec.get("pods"):  # no CNI lab, or no pod attached: nothing to resolve
        return False
    from netlab.workload.terminal import served  # (its containers' records and processes: read only here)

    try:
        return edited.reconfigures_lab(served(state.resolved(), state), state)
    except NetlabError:  # a state that cannot be read: said where it is read
        return False


def repair_up(state: LabState) -> str:
    """realize.state.repair_up, with --reconfigure when the lab needs it (realize cannot ask the CNI)."""
    return state_mod.repair_up(state, reconfigures(state))


def up_again(state: LabState) -> str:
    """The `up` that puts back what a failed `up` could not (a rollback's): `up -t FILE --reconfigure` when pods keep
    a config edited since (a plain `up` refuses the lab then), else `sudo netlab up --lab L` (cni/edited.up_again
    of the lab as the run planned it)."""
    return state_mod.reconfigure_up(state) if reconfigures(state) else netlab_command(f"up --lab {state.lab}")


def repair_command(name: str) -> str:
    """realize.state.repair_command, with --reconfigure when the lab needs it: what trace, break, quiz, exec and
    inspect name as the repair of lab ``name``, as `status` names it."""
    return state_mod.repair_command(name, reconfigures)


def netns_gone(exc: NetnsGone, lab: str) -> NetnsGone:
    """realize.netns_missing.netns_gone, its repair with --reconfigure when the lab needs it: a deleted namespace of
    a lab whose conflist was edited is made again by `up -t FILE --reconfigure` (a plain `up` refuses the lab)."""
    return _stopped(netns_missing.netns_gone(exc, lab, reconfigures))


def lab_netns_gone(netns: str, lab: str) -> NetnsGone:
    """realize.netns_missing.lab_netns_gone, its repair as :func:`netns_gone` names it."""
    return _stopped(netns_missing.lab_netns_gone(netns, lab, reconfigures))


def _stopped(exc: NetnsGone) -> NetnsGone:
    """``exc`` saying, of the namespace of a terminal pod that up removed with its stopped sandbox, that the pod has
    terminated (cni/terminated.py), not that it was deleted and up makes it again (up never does while the pod is
    terminal)."""
    from netlab.cni.terminated import released_line, released_namespaces

    pod = exc.netns.removeprefix(f"{exc.lab}-")
    if exc.lab and exc.lab_up and not exc.taken_down and released_namespaces(exc.lab).get(pod) == exc.netns:
        exc.taken_down = released_line(pod, gone=True)
    return exc
