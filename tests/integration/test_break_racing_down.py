"""`netlab break` (and `quiz`) reading a lab while a real `netlab down` takes it away (QA: break racing down).

Before it breaks anything, break reads the lab as status does (api.internals.faults_before). A down that deletes
the lab's namespaces after break read the lab's state (phase up) and before it read the kernel made break say
StateGone's "none of its namespaces is there any more, yet its state file remains" (exit 3) beside a down that
finished; and a down done meanwhile made it say "taken down while status read it". The down is started from the
status read itself and held at its test hooks (``down-deleted``: namespaces deleted, phase deleting, lock held;
``down-stopped``: the pods' containers stopped, let go on to its end after the kernel was read): no sleep, no
timing.
"""

from __future__ import annotations

import os

import pytest

from helpers import lab_namespaces, state_path
from helpers_racing import lab_and_processes, paused_at

pytestmark = pytest.mark.root


def _status_with_down(monkeypatch, lab: str, procs: list, point: str) -> None:
    """The status read of a break starts lab ``lab``'s down first, held at test hook ``point``: at down-deleted
    (its namespaces gone) it is held on; at down-stopped (the pods' containers stopped, the namespaces there yet)
    it goes on to its end once the kernel is read."""
    from netlab.api import lifecycle

    real = lifecycle.status

    def status_beside_down(state, kernel=None):
        down = paused_at(point, "down", "--lab", lab)
        procs.append(down)
        if point == "down-deleted":
            assert lab_namespaces(lab) == []
            return real(state, kernel)
        result = real(state, kernel)  # the containers the down stopped: drift, read before the down goes on
        out, err = down.communicate("\n", timeout=300)
        assert down.returncode == 0 and out.startswith(f"lab {lab} is down ("), (out, err)
        assert lab_namespaces(lab) == [] and not os.path.exists(state_path(lab))
        return result

    monkeypatch.setattr(lifecycle, "status", status_beside_down)


def test_break_meeting_a_down_at_work_says_it_is_being_taken_down(tmp_path, monkeypatch):
    from netlab.api.internals import faults_before
    from netlab.cli.base import attached

    with lab_and_processes(tmp_path, "bd", pods_per_node=1) as (lab, _, procs):
        _status_with_down(monkeypatch, lab, procs, "down-deleted")
        # the down's work half done, no fault (LabGoingDown, a LabBusy): break goes on to wait for the down's lock,
        # then says the lab is not up, taken down by that down (test_down_racing_commands)
        assert faults_before(attached(lab, None)) == 0
        out, err = procs[-1].communicate("\n", timeout=300)
        assert procs[-1].returncode == 0 and out.startswith(f"lab {lab} is down ("), (out, err)


def test_break_meeting_a_down_done_says_so_in_its_own_name(tmp_path, monkeypatch):
    from netlab.api.internals import faults_before
    from netlab.cli.base import attached
    from netlab.errors import UsageError

    with lab_and_processes(tmp_path, "bd", pods_per_node=1) as (lab, _, procs):
        _status_with_down(monkeypatch, lab, procs, "down-stopped")
        with pytest.raises(UsageError) as exc:  # exit 2
            faults_before(attached(lab, None))
        assert str(exc.value) == f"lab {lab} was taken down while break read it; it is not up", exc.value


def test_break_racing_a_down_says_the_lab_is_not_up(tmp_path, monkeypatch):
    """QA's race whole, through the CLI: the down deletes the namespaces as break reads them, and finishes before
    break's read is judged: break says the lab was taken down while it read it (exit 2), not StateGone's "its state
    file remains" (exit 3), and nothing of the lab is left."""
    from click.testing import CliRunner

    from netlab.api import lifecycle
    from netlab.cli import cli
    from netlab.errors import UsageError

    with lab_and_processes(tmp_path, "bd", pods_per_node=1) as (lab, _, procs):
        real = lifecycle.status

        def status_beside_down(state, kernel=None):
            down = paused_at("down-deleted", "down", "--lab", lab)
            procs.append(down)
            try:
                return real(state, kernel)
            finally:  # the down goes on to its end before break goes on
                out, err = down.communicate("\n", timeout=300)
                assert down.returncode == 0 and out.startswith(f"lab {lab} is down ("), (out, err)

        monkeypatch.setattr(lifecycle, "status", status_beside_down)
        out = CliRunner().invoke(cli, ["break", "--lab", lab, "bridge-port-down"])
        # the line netlab's launcher prints, with its exit status (CliRunner runs the click command alone)
        assert isinstance(out.exception, UsageError) and out.exception.exit_code == 2, (out.output, out.exception)
        assert str(out.exception) == f"lab {lab} was taken down while break read it; it is not up", out.exception
        assert lab_namespaces(lab) == [] and not os.path.exists(state_path(lab))
