"""Which lab a command acts on: ``--lab NAME``, the ``name:`` of ``-t FILE``, ``$NETLAB_LAB``, or the only lab up.

One rule for every command and for ``netlab.Lab.attach``; the name is checked
(realize/state_dir.check_lab_name) before it is used for anything, such as a
path under the state folder.
"""

from __future__ import annotations

import os

from typing import TYPE_CHECKING

from netlab.errors import NetlabError, UsageError, down_way, netlab_command
from netlab.realize.lab_env import LAB_ENV as LAB_ENV, EnvLabName as EnvLabName
from netlab.realize.state import gone, load_state, running_lab
from netlab.realize.lab_list import known_labs
from netlab.realize.state_dir import check_lab_name

if TYPE_CHECKING:
    from netlab.realize.state import LabState


def selected_name(name: str | None = None, topology: str | None = None, required: bool = True,
                  api: bool = False) -> str | None:
    """The lab a command acts on: ``name``, the ``name:`` of the file ``topology``, ``$NETLAB_LAB``, or the
    only lab that is up (with ``required``, a usage error when there is none). ``api``: the errors are said in
    a library caller's words (``Lab.attach(NAME)``), not the CLI's (``--lab NAME``)."""
    if name is None and topology is None:
        env = os.environ.get(LAB_ENV, "").strip()
        if env:
            name = EnvLabName(env)
    return select_lab_name(name, topology, required=required, api=api)


def select_lab_name(lab_name: str | None, topology: str | None, required: bool = True,
                    api: bool = False) -> str | None:
    """The lab a command acts on: ``--lab NAME``, ``-t FILE`` (its ``name:``), or the only lab up.

    One rule for every command. The name is checked before it is used for
    anything; with neither option and no lab up, None (or, when ``required``,
    a usage error: ``api``, in the words of a library caller, who has no --lab).
    """
    if lab_name is not None and topology is not None:
        raise UsageError("give --lab or -t, not both")
    if topology is not None:
        from netlab.model.load import load_topology

        return load_topology(topology).name
    if lab_name is not None:
        return check_lab_name(lab_name, f"${LAB_ENV}" if isinstance(lab_name, EnvLabName) else "--lab")
    labs = up_labs()
    if labs and all(map(_gone, labs)):  # up_labs gives the gone labs back when every one is (one alone too)
        raise all_gone(labs, api=api)
    if not labs:
        if required:
            raise UsageError("no lab is up; bring one up with Lab.up(topology)" if api
                             else f"no lab is up; start one with: {netlab_command('up')}")
        return None
    if len(labs) > 1:
        raise UsageError(f"several labs are up ({', '.join(labs)}); "
                         + ("name one: Lab.attach(NAME)" if api else "pick one with --lab NAME"))
    return labs[0]


def down_lab_name(name: str | None = None, topology: str | None = None) -> str | None:
    """The lab a ``down`` takes down: as :func:`selected_name` picks it (None when no lab is up), except that with
    no lab named (no --lab, -t FILE nor $NETLAB_LAB), one ``gone`` lab alone is the one a plain ``down`` forgets:
    the other commands say no lab is up (all_gone), but down's job is exactly that lab. Several gone ones: refused,
    each named with its ``down --lab``."""
    if name is None and topology is None and not os.environ.get(LAB_ENV, "").strip():
        labs = up_labs()
        if len(labs) == 1 and _gone(labs[0]):
            return labs[0]
    return selected_name(name, topology, required=False)


def plain_up_lab(default: str) -> str | None:
    """The lab a plain `up` (no -t FILE, --lab nor $NETLAB_LAB) converges to its saved topology: the only lab
    that is up, as for every command (what `netlab break` broke), unless it is ``default``, the built-in lab's
    name; None for the built-in default lab, as on a fresh machine: no lab is up, or ``default`` is (among
    others too). Several others: a usage error saying what to type, for either."""
    labs = up_labs()
    if labs and all(map(_gone, labs)):
        again = f"it again with `{netlab_command(f'up --lab {labs[0]}')}`" if len(labs) == 1 else \
            f"one again with `{netlab_command('up --lab NAME')}`"
        built_in = netlab_command(f"up --lab {default}")
        raise all_gone(labs, then=f"; or make {again} (the built-in default lab: `{built_in}`)")
    if not labs or default in labs:
        return None
    if len(labs) > 1:
        raise UsageError(f"several labs are up ({', '.join(labs)}); repair one with "
                         f"`{netlab_command('up --lab NAME')}`, or make the built-in default lab with "
                         f"`{netlab_command(f'up --lab {default}')}`")
    return labs[0]


def select_lab(lab_name: str | None, topology: str | None) -> LabState:
    """The running lab a command acts on: --lab, -t FILE, or the only lab up."""
    return running_lab(select_lab_name(lab_name, topology))  # type: ignore[arg-type]


def up_labs() -> list[str]:
    """The labs a command with no --lab, -t FILE nor $NETLAB_LAB chooses among, sorted: those with a state, but,
    among several, not one that `netlab list` says is not up (phase ``gone``: none of its namespaces is there any
    more, its state file left by a ``down`` that could not forget it; realize.state.gone). A lab whose state
    cannot be read (``corrupt``) stays among them: its commands say what is wrong with it. When every lab is
    gone, they are all there is to choose (a plain ``down`` forgets the only one: :func:`down_lab_name`)."""
    labs = known_labs()
    if len(labs) < 2:
        return labs
    up = [name for name in labs if not _gone(name)]
    return up or labs


def all_gone(labs: list[str], api: bool = False, then: str = "") -> UsageError:
    """The error of a command that names no lab when every lab with a state is ``gone`` (`netlab list`'s phase:
    none of its namespaces is there, its state left by a ``down`` that could not forget it): no lab is up, and
    these are the gone ones, with the way to forget each (``api``: the Python call); ``then``: what else to do."""
    if len(labs) == 1:  # one alone: no lab is up either (QA q17 2), said of it
        return UsageError(f"no lab is up; 1 lab is gone ({labs[0]}): none of its namespaces is there any more, yet "
                          f"its state file remains; once its folder may be written, `{down_way(labs[0], api)}` "
                          f"forgets it{then}")
    way = "`Lab(NAME).down()`" if api else f"`{netlab_command('down --lab NAME')}`"
    return UsageError(f"no lab is up; {len(labs)} labs are gone ({', '.join(labs)}): none of their namespaces is "
                      f"there any more, yet their state files remain; once a lab's folder may be written, {way} "
                      f"forgets it{then}")


def _gone(name: str) -> bool:
    try:
        st = load_state(name)
    except NetlabError:  # corrupt, newer, unreadable: not said gone on a doubt
        return False
    return st is not None and gone(st)
