"""A container's program is held to the rule of model/trust.py each time netlab starts it (kernel/spawning.spawn),
not only when `up -t FILE` or `validate` reads the file (model/command_trust): a repair `up --lab L`, `up` of the
only lab up and up --watch's restarts read the saved topology, no file, and restarted as root a program that had
become someone else's since the lab came up (QA review57 1)."""

from __future__ import annotations

import errno
import os

import pytest

from netlab.kernel import spawning

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root alone is held to the rule")


def _program(folder) -> str:
    os.chmod(folder, 0o755)
    path = folder / "prog"
    path.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(path, 0o755)
    return str(path)


def test_a_program_someone_else_can_change_is_not_started(tmp_path):
    os.chmod(tmp_path, 0o755)
    (tmp_path / "bin").mkdir()
    prog = _program(tmp_path / "bin")
    os.chmod(tmp_path / "bin", 0o777)  # since the lab came up: anyone may swap it now
    with pytest.raises(spawning.SpawnError) as caught:  # before any namespace is entered (none of that name)
        spawning.spawn([prog], netns="rv57-no-such-netns", uts_path=None, log_path=os.devnull, env={"PATH": "/bin"})
    assert caught.value.errno == errno.EACCES
    assert caught.value.strerror == (f"{prog}: netlab runs as root and would run it as root, but its folder "
                                     f"{tmp_path}/bin is writable by everyone (mode 777); "
                                     + caught.value.strerror.split("; ", 1)[1])


def test_a_relative_program_is_checked_from_the_containers_folder(tmp_path, monkeypatch):
    """``bin/x`` runs from / (the container's working folder): the file checked is /bin/x, not one below
    netlab's own working folder."""
    os.chmod(tmp_path, 0o755)
    (tmp_path / "bin").mkdir(mode=0o777)
    os.chmod(tmp_path / "bin", 0o777)
    _program(tmp_path / "bin")
    os.chmod(tmp_path / "bin", 0o777)
    monkeypatch.chdir(tmp_path)  # bin/prog here is someone else's; /bin/true is root's
    assert spawning.trusted_exe("bin/true") == os.path.realpath("/bin/true")
    with pytest.raises(spawning.SpawnError):
        spawning.trusted_exe(str(tmp_path / "bin" / "prog"))


def test_a_root_program_runs_as_the_file_it_resolves_to():
    assert spawning.trusted_exe("/bin/sh") == os.path.realpath("/bin/sh")
