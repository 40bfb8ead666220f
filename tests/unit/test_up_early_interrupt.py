"""A stop signal while `up` reads the topology (netlab/cli/lab.py up: before endings.up_stopped wraps the run).

It said a bare "netlab: interrupted", where the same Ctrl-C a moment later says "interrupted by SIGINT before it
changed anything; lab L is as it was (...)": a user could not tell whether the running lab was touched.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from netlab.cli import lab as cli_lab
from netlab.cli.base import cli


@pytest.mark.parametrize("args, which", [(["--lab", "fbx1"], "lab fbx1"), (["-t", "my.yaml"], "the lab of my.yaml")])
def test_an_interrupt_while_up_reads_the_topology_says_the_lab_is_as_it_was(monkeypatch, args, which):
    def stopped(*_a):
        raise KeyboardInterrupt("interrupted by SIGINT")

    monkeypatch.setattr(cli_lab, "_load_for_up", stopped)
    r = CliRunner().invoke(cli, ["up", *args])
    assert r.exception is not None and not isinstance(r.exception, KeyboardInterrupt), (r.output, r.exception)
    text = str(r.exception)
    assert text.startswith("interrupted by SIGINT") and f"{which} is as it was" in text, text
    assert "before it changed anything" in text and "not known yet" in text, text
    assert getattr(r.exception, "exit_code", None) == 130
