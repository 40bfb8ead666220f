"""What a command says of a lab's namespace it found missing (``ip netns del``, or gone when it entered it): a
namespace of a running lab that ``up`` makes again, or, of a lab a ``down`` is taking away, took away, or left
``gone``, that line instead (realize.interrupted.taken_down). Every raiser goes through netlab.cni.edited's
wrappers, which name ``up --reconfigure`` for a lab whose conflist was edited in place."""

from __future__ import annotations

import os
from typing import Callable

from netlab.errors import NetlabError, NetnsGone, in_python_words, python_words
from netlab.model.naming import netns_path
from netlab.realize.interrupted import taken_down
from netlab.realize.state import LabState, repair_command
from netlab.realize.state_dir import state_file
from netlab.realize.state_errors import StateGone


def netns_gone(exc: NetnsGone, lab: str, reconfigure: Callable[[LabState], bool] | None = None) -> NetnsGone:
    """``exc`` as lab ``lab``'s: a namespace of a lab whose state is there (it is up) was deleted (`ip netns del`)
    and the `up` that repairs the lab (:func:`repair_command`, given ``reconfigure``:
    netlab.workload.reconfigure.netns_gone passes its check) makes it again; without its state the lab is down, or
    was never up."""
    exc.lab = lab
    exc.api = exc.api or in_python_words()  # said as a Lab method's caller types it (made in a thread, perhaps)
    try:
        exc.lab_up = os.path.isfile(state_file(lab))
    except (NetlabError, OSError):  # a name that is no lab's, or a state directory that is not netlab's
        exc.lab_up = False
    if exc.lab_up:
        exc.repair = repair_command(lab, reconfigure)
    with python_words(exc.api):  # an up or down killed halfway: list's line, its way out `down`, not up's
        gone = taken_down(lab, f"namespace {exc.netns} was deleted with it",
                          killed=f"namespace {exc.netns} is not there") if exc.lab_up else None
    if isinstance(gone, StateGone):  # every namespace of it deleted: status's line, in the caller's words
        gone = gone.said_for(exc.api)
    exc.taken_down = None if gone is None else str(gone)  # a `down` at work, or done since: no fault to repair
    if gone is not None:
        exc.exit_code = gone.exit_code  # as the line it says: exit 3 for a lab that is gone
    return exc


def lab_netns_gone(netns: str, lab: str, reconfigure: Callable[[LabState], bool] | None = None) -> NetnsGone:
    """The error of lab ``lab``'s namespace ``netns`` found missing (not a namespace mount, or gone when entered):
    :func:`netns_gone` of it."""
    return netns_gone(NetnsGone(netns, netns_path(netns)), lab, reconfigure)
