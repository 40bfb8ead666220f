"""The pytest plugin's labs whose pytest process is gone (killed with SIGKILL: nothing of it ran to take them
down): the labs of an xdist worker that crashed, which its controller takes down, and the labs an earlier run
left up, which a run names at its start and at its end (netlab.pytest_plugin's hooks call these).

Every lab the plugin brings up records its process (netlab/realize/owner.py). Only such a lab, and only when
its process is provably gone, is ever named here; a lab made by hand, or by a run that is still going (another
user's, another checkout's), has no record or a live one, and is left alone.

An earlier run's labs are named, not taken down: a run killed on purpose (a hung test, killed to look at its
lab) or a lab ``--netlab-keep`` kept, is what its user may be reading when the next run starts. Each is named
with the command that takes it down.

The plugin registers this module for its hooks (the xdist controller's and the run's start and end).
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from netlab.errors import down_command
from netlab.realize import owner

LEFT_UP = pytest.StashKey[list[str]]()  # what the run's start said of labs earlier runs left up
CRASHED = pytest.StashKey[list[str]]()  # the labs of crashed xdist workers, taken down
_worker_owners: dict[str, dict[str, Any]] = {}  # xdist gateway id -> the owner record its labs carry


def plugin_labs() -> list[tuple[str, dict[str, Any]]]:
    """(lab, owner record) of every lab up that the plugin brought up; none when the state directory cannot be
    read (not root: the plugin skips lab tests then)."""
    from netlab.errors import NetlabError
    from netlab.realize.state import iter_states
    from netlab.realize.state_errors import StateCorrupt

    found = []
    try:
        for st in iter_states():
            if isinstance(st, StateCorrupt):  # a corrupt state: `netlab list` says it
                continue
            record = owner.of(st.extra)
            if record is not None and record.get("by") == owner.PYTEST:
                found.append((st.lab, record))
    except (NetlabError, OSError):
        return []
    return found


def left_up() -> list[tuple[str, dict[str, Any]]]:
    """The plugin's labs whose pytest process has ended."""
    return [(lab, record) for lab, record in plugin_labs() if owner.gone(record)]


def left_up_line(lab: str, record: dict[str, Any]) -> str:
    if _half_made(lab):  # the run was killed as its up made the lab: nothing --netlab-keep keeps
        return (f"lab {lab} is half made: the pytest run that was bringing it up, {owner.describe(record)}, ended "
                f"before its up finished (killed); take it away with: {down_command(lab)}")
    return (f"lab {lab} is still up: the pytest run that brought it up, {owner.describe(record)}, has ended "
            f"without taking it down (killed, or the lab kept by --netlab-keep); take it down with: "
            f"{down_command(lab)}")


def _half_made(lab: str) -> bool:
    """Whether the lab's state says an up was making it (phase creating) and nobody is at work on it now."""
    from netlab.errors import NetlabError
    from netlab.realize.interrupted import stalled
    from netlab.realize.state import load_state

    try:
        st = load_state(lab)
    except (NetlabError, OSError):
        return False
    return st is not None and st.phase == "creating" and stalled(st) is not None


def take_down_workers_labs(worker: dict[str, Any]) -> list[str]:
    """The crashed xdist worker ``worker`` (its owner record, read when it started): its labs taken down, a line
    each. Nothing while the process is still there (its labs are its own)."""
    from netlab.api import Lab

    if not owner.gone(worker):
        return []
    said = []
    for lab, record in plugin_labs():
        if not owner.same_process(record, worker):
            continue
        try:
            Lab(lab).down()
        except Exception as exc:  # noqa: BLE001 - the others still go down; said with the command
            said.append(f"lab {lab}: taking it down failed ({exc}); take it down with: {down_command(lab)} --force")
        else:
            said.append(f"lab {lab}: taken down")
    return said


# --- hooks -------------------------------------------------------------------------------------


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_newgateway(gateway: Any) -> None:
    """In the xdist controller: a worker process was started; its owner record is read while it runs (its
    start time tells it from a later process given its pid)."""
    popen = getattr(getattr(gateway, "_io", None), "popen", None)
    if isinstance(popen, subprocess.Popen):
        record = owner.identity(popen.pid)
        if record is not None:
            _worker_owners[str(getattr(gateway, "id", ""))] = record


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object | None) -> None:
    """In the xdist controller: a worker ended; ``error`` when it crashed (SIGKILL, the OOM killer, a segfault)
    with its labs up. Exactly that process's labs go down (their states name it), once it is provably gone."""
    if error is None:
        return
    gateway = str(getattr(getattr(node, "gateway", None), "id", ""))
    record = _worker_owners.pop(gateway, None)
    if record is None:
        return
    said = [f"xdist worker {gateway} crashed: {line}" for line in take_down_workers_labs(record)]
    node.config.stash.setdefault(CRASHED, []).extend(said)
    _say(node.config, said)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Labs earlier runs of the plugin left up are named, each with the command that takes it down: in the one
    process of a run that reports (the xdist controller, or pytest without xdist)."""
    config = session.config
    if hasattr(config, "workerinput") or os.geteuid() != 0:
        return
    said = config.stash[LEFT_UP] = [left_up_line(lab, record) for lab, record in left_up()]
    _say(config, said)


def _say(config: pytest.Config, lines: list[str]) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for line in lines:
        if reporter is not None:
            reporter.write_line(f"netlab: {line}")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for title, lines in (("netlab: labs of crashed xdist workers", config.stash.get(CRASHED, [])),
                         ("netlab: labs left up by earlier runs", config.stash.get(LEFT_UP, []))):
        if lines:
            terminalreporter.section(title, sep="-")
            for line in lines:
                terminalreporter.line(line)
