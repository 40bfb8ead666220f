"""Whether a lab's file still gives what its last `up` applied (status's "the lab's file changed since" line, and
the repair every command names: realize/state.repair_up).

A lab brought up from a file is repaired by that file's `up -t FILE` only while the file gives the topology the
lab's last up applied: once edited, that "repair" would apply the edit (a pod deleted from the file would go);
once deleted, moved or no longer valid, it fails. `up --lab L` puts back what the last up applied in both cases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.errors import command_path, netlab_command
from netlab.realize.state_errors import StateCorrupt
from netlab.realize.up_words import up_command

if TYPE_CHECKING:
    from netlab.realize.state import LabState

CNI_FIELD = "network.cni"  # a problem of the conflist the file names (cni/edited.py says it, with its repair)


class Unusable(str):
    """:func:`source_changed`'s answer for a lab's file that can no longer be read or validated (deleted, moved, an
    edit that does not validate): its `up -t FILE` fails (QA qa60r 6), `up --lab` is the repair. ``why``: the
    error's one line."""

    why = ""


def source_changed(state: LabState) -> str | None:
    """The lab's file, when it now gives another topology than the one the lab's last `up` applied (edited since):
    its `up -t FILE` would apply another lab than the one `status` compares the kernel with (a pod deleted from the
    file since: removed by that "repair", QA qa59m 2); an :class:`Unusable` when it cannot be read or no longer
    validates. None when it gives that one, when the lab has no file, and when it cannot tell: a saved topology that
    does not validate (said where it is read). The file is validated, its cluster DNS add-on made with the
    addresses the lab holds, as its `up` makes it; a lab brought up from it under a name of its own
    (names_another_lab) is compared under that name."""
    if not state.source:
        return None
    from netlab.errors import TopologyError
    from netlab.model.clusterdns import add_cluster_dns
    from netlab.model.load import read_source, validate_source

    try:
        src = read_source(state.source)
        if isinstance(src.data, dict) and src.data.get("name") != state.lab:
            src.data = {**src.data, "name": state.lab}
        valid = validate_source(src)
    except TopologyError as exc:
        if all(p.field.startswith(CNI_FIELD) for p in exc.problems):
            return None  # the file is as it was, its conflist is not: the cni: drift line's (its --reconfigure)
        return _unusable(state.source, exc)
    except (OSError, ValueError) as exc:
        return _unusable(state.source, exc)
    try:
        topo, _, problems = add_cluster_dns(valid, held=state.holding())
    except (TopologyError, StateCorrupt, ValueError):  # the held addresses' own error is said where they are read
        return None
    try:
        saved = state.model()
    except (ValueError, StateCorrupt):  # the saved topology's own error is said where it is read
        return None
    return None if not problems and topo == saved else state.source


def _unusable(path: str, exc: Exception) -> Unusable:
    gone = Unusable(path)
    gone.why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return gone


def source_changed_line(state: LabState, path: str | None, reconfigure: bool = False) -> str | None:
    """status's line for a lab whose file ``path`` changed since its last `up` (:func:`source_changed`'s answer):
    what `up --lab` puts back (with --reconfigure when the lab's pods need it: ``reconfigure``), and what `up -t FILE`
    would do. None when the file gives what the lab runs."""
    if path is None:
        return None
    again = netlab_command(f"up --lab {state.lab}{' --reconfigure' if reconfigure else ''}")
    if isinstance(path, Unusable):
        return (f"the lab's file {command_path(path)} cannot be used ({path.why}): status compares the lab with what "
                f"its last up applied, which `{again}` puts back")
    return (f"the lab's file {command_path(path)} changed since its last up: status compares the lab with what that "
            f"up applied, which `{again}` puts back; `{up_command(path, reconfigure)}` would apply the file as it is "
            "now")
