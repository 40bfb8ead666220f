"""status's text: how many objects differ from the plan, each drift line, and what puts the lab right (its
repair, the watcher that restarts a held container, what no `up` repairs, or a `down` left halfway)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from netlab.cli.style import highlight, plural
from netlab.errors import NetlabError, command_path, display_path, down_way, netlab_command

if TYPE_CHECKING:
    from netlab.api.results import Status


def say(result: Status, lab_name: str | None, topology: str | None) -> None:
    """The text of ``result`` (a lab picked by ``lab_name`` or the file ``topology``), after its warnings."""
    against = f" against {display_path(result.against)}" if result.against else ""
    if result.ok:
        click.echo(highlight(f"lab {result.lab}{against}: {result.objects} objects, all as planned"))
    elif result.error is not None and not result.drift:  # as planned, an up or down killed halfway (list's line)
        _cut_short(result, against)
    else:
        from netlab.realize.diff import count_differences, cut_short

        total = count_differences(len(result.drift), result.details)  # a table's line: its every difference
        click.echo(f"lab {result.lab}{against}: {differ_words(len(result.drift), total)}:")
        for line in result.drift:
            click.echo(highlight(f"  {line}"))
        if left := cut_short(result.details):  # a table's line says its first few differences
            which = f" -t {command_path(topology)}" if topology else f" --lab {lab_name}" if lab_name else ""
            click.echo(f"the lines above show {total - left} of the {total} differences: "
                       f"`{netlab_command(f'status{which} -o json')}` lists every one (details[].differences)")
        if result.error is not None and _down_left(result.lab):  # list's line said first: down finishes it
            from netlab.workload.reconfigure import repair_command

            # or the up that repairs the lab makes again what that down took (its state names all of it): as
            # planned, also once the down's forget was cut short; --reconfigure when a conflist was edited since
            click.echo(f"run `{down_way(result.lab)}` to finish taking it down, or `{repair_command(result.lab)}` "
                       "to bring it back as planned")
        elif topology is None:  # every difference one up leaves: no repair named, the up that leaves them is said
            from netlab.workload.reconfigure import repair_command

            _repair_lines(result.repair or repair_command(result.lab), result.drift, result.kept)
        else:  # a file the lab was not brought up from replaces it only with --reconfigure
            from netlab.realize.state import up_command

            # None when every difference is one no up repairs (a Never pod's failed container): said so
            _repair_lines(result.repair or up_command(os.fspath(topology)), result.drift, result.kept, "apply")


def _cut_short(result: Status, against: str) -> None:
    """The kernel of ``result``'s lab is as planned, but an ``up`` or ``down`` of it ended before it finished (its
    ``error``, said first): what finishes it. A down's `down`, or the up that keeps the lab (its state names all of
    it); an up's `up --lab L` (its saved topology: the run killed, as it was; it marks the lab up), or `down`."""
    lab = result.lab
    if _down_left(lab):
        from netlab.workload.reconfigure import repair_command

        click.echo(f"lab {lab}{against}: {result.objects} objects as planned, but the `netlab down` that was taking "
                   "it down did not finish")
        click.echo(f"run `{down_way(lab)}` to finish taking it down, or `{repair_command(lab)}` to keep it up")
    else:
        doing = "changing" if _converge_left(lab) else "making"
        click.echo(f"lab {lab}{against}: {result.objects} objects as planned, but the `netlab up` that was {doing} "
                   "it did not finish")
        click.echo(f"run `{netlab_command(f'up --lab {lab}')}` to finish it, or `{down_way(lab)}` to take away "
                   "what it made")


def _converge_left(lab: str) -> bool:
    """Lab ``lab`` is one whose converge (an ``up`` of it running) was killed halfway (realize/converging.py)."""
    from netlab.realize.interrupted import converge_left
    from netlab.realize.state import load_state

    try:
        state = load_state(lab)
    except NetlabError:
        return False
    return state is not None and converge_left(state)


def _down_left(lab: str) -> bool:
    """Lab ``lab`` is one a ``down`` killed (or failed) halfway left (phase deleting): `down` finishes it, not up."""
    from netlab.realize.state import load_state

    try:
        state = load_state(lab)
    except NetlabError:
        return False
    return state is not None and state.phase == "deleting"


def differ_words(objects: int, differences: int) -> str:
    """status's count, in one unit: "4 objects differ from the plan (42 differences)"; no count of differences
    when each object has one."""
    said = f"{plural(objects, 'object')} differ{'s' if objects == 1 else ''} from the plan"
    return said if differences == objects else f"{said} ({plural(differences, 'difference')})"


def _repair_lines(repair: str | None, drift: tuple[str, ...], kept: tuple[str, ...], verb: str = "repair") -> None:
    """What puts the lab right: its repair, for what it repairs (``verb``: "apply" for a file's `up`, which applies
    it); for what it leaves as it is (a Never pod's failed
    container, one that could not start), what that is instead (``up`` again exits 1 the same); a container
    the lab's watcher holds back (CrashLoopBackOff) is restarted by it when its back-off ends, or by ``up`` now."""
    from netlab.cni.edited import first_step
    from netlab.workload.crashloop import said_in
    from netlab.workload.policy import held_by_another, moves_a_pod, up_leaves

    if held := [line for line in kept if held_by_another(line)]:  # up refuses the lab whole: nothing else to offer
        names = ", ".join(line.split()[2] for line in held)
        click.echo(f"no `up` repairs the lab while {names} {'is' if len(held) == 1 else 'are'} someone else's "
                   f"(`up` refuses it, exit 3): whoever made {'it' if len(held) == 1 else 'them'} must remove "
                   f"{'it' if len(held) == 1 else 'them'} first")
        return
    if refused := [line for line in kept if moves_a_pod(line)]:  # that up refuses the file whole (QA q29 #2)
        rest = ", the rest with them" if len(drift) > len(refused) else ""
        click.echo(f"`{repair}` refuses the file (exit 2) while it moves a pod its CNI plugins attached: the two "
                   f"steps its cni: line says apply it{rest}")
        drift = kept = tuple(line for line in kept if line not in refused)  # what those steps leave too, said below
    waiting = [line for line in drift if said_in(line) and line not in kept]
    if len(kept) + len(waiting) < len(drift):
        rest = " the rest" if kept or waiting else " it" if verb == "apply" else ""
        click.echo(f"{first_step(drift)}run `{repair}` to {verb}{rest}")  # a conflist that cannot be read: fixed first
    if waiting:
        one = len(waiting) == 1
        click.echo(f"`netlab up --watch` restarts {'that container' if one else 'those containers'} when "
                   f"{'its' if one else 'their'} back-off ends (CrashLoopBackOff); `{repair}` restarts "
                   f"{'it' if one else 'them'} now")
    if kept:
        why = "; ".join(dict.fromkeys(str(up_leaves(line)) for line in kept))
        what = "container" if all(line.startswith("containers: ") for line in kept) else "difference"
        click.echo(f"`{repair}` does not repair {'that' if len(kept) == 1 else 'those'} {what}"
                   f"{'' if len(kept) == 1 else 's'}: {why}")
