"""Commands of a lab whose `up` was killed before its first state write (`netlab list`: interrupted, with a line
that a plain `down` removes its folder; QA qa59m 3), on the fake kernel, in a private state directory.

status, get, probe, exec, logs, up --lab and impair said "lab 'L' is not up (labs up: ...)", exit 2, as of a lab
never made: list's line now (README: impair of it is refused with that line), exit 2.
"""

from __future__ import annotations

import pytest
from cli_inprocess import run_cli
from test_up_killed_early import LAB, folder

from netlab.api import lifecycle
from netlab.kernel.fake import FakeKernel
from netlab.realize.interrupted import interrupted_up


@pytest.mark.parametrize("words", [["status"], ["status", "-o", "json"], ["get", "pods"], ["get", "nodes"],
                                   ["probe"], ["exec", "a", "--", "true"], ["logs", "a"], ["up"],
                                   ["impair", "a:eth0", "--delay", "10ms"], ["trace", "a", "b"]])
def test_a_command_of_an_interrupted_lab_says_lists_line(monkeypatch, words):
    folder()
    line = interrupted_up(LAB)
    assert line is not None and line.endswith(f"netlab down --lab {LAB}` removes it"), line
    for where in ("lab", "get", "probe", "trace", "impair", "workload"):
        monkeypatch.setattr(f"netlab.cli.{where}.require_root", lambda: None)
    monkeypatch.setattr(lifecycle, "live_kernel", FakeKernel)
    got = run_cli(words[0], "--lab", LAB, *words[1:])
    assert got.returncode == 2 and got.stderr == f"netlab: {line}\n", got
    assert "is not up" not in got.stderr
