"""`sudo netlab exec NAME` without a command runs your $SHELL as root (QA sec58 5): a $SHELL someone other than
root and you can change was someone else's program run as root. It is passed over in a note line for bash or
sh, as netlab passes over nothing else: a container's command (model/command_trust.py) and exec's own program
given by its path are refused (tests/integration/test_command_trust_live.py)."""

from __future__ import annotations

import os
import pwd

import pytest

from netlab.cli import workload

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the rule is root's")
NOBODY = pwd.getpwnam("nobody").pw_uid


@pytest.fixture
def shell(tmp_path, monkeypatch):
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "myshell"
    path.write_text("#!/bin/sh\nexec /bin/sh \"$@\"\n")
    os.chmod(path, 0o755)
    monkeypatch.setenv("SHELL", str(path))
    monkeypatch.setattr(workload, "_stdin_is_terminal", lambda: False)
    return path


def test_a_shell_of_someone_elses_is_passed_over_with_a_note(shell, capsys):
    os.chown(shell, NOBODY, -1)
    assert workload._shell() == ["/bin/bash"]
    assert capsys.readouterr().err == (
        f"netlab: not your shell {shell}: netlab runs as root and would run it as root, but it is owned by nobody "
        "(mode 755), not by root or you; make it root's (or yours) and writable by no one else (chmod go-w), or "
        "copy it to a folder of yours; /bin/bash instead\n")


def test_your_own_shell_and_roots_are_run(shell, capsys, monkeypatch):
    assert workload._shell() == [str(shell)]
    os.chown(shell, NOBODY, -1)
    monkeypatch.setenv("SUDO_UID", str(NOBODY))  # the invoking user's own shell
    assert workload._shell() == [str(shell)]
    assert capsys.readouterr().err == ""
