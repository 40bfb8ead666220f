"""services/netns_files.make_dir: the descriptor of the folder it just made is closed whatever its fchmod does
(QA caps58 defect 4: an fchmod that raised left it open, one descriptor lost per pod folder of a long `up --watch`)."""

from __future__ import annotations

import errno
import os

import pytest

from netlab.services import netns_files


def test_the_fresh_folders_descriptor_is_closed_when_fchmod_fails(tmp_path, monkeypatch):
    opened: list[int] = []
    closed: list[int] = []
    real_open, real_close = os.open, os.close

    def counting_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        opened.append(fd)
        return fd

    def counting_close(fd):
        closed.append(fd)
        real_close(fd)

    def refused(fd, mode):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(netns_files.os, "open", counting_open)
    monkeypatch.setattr(netns_files.os, "close", counting_close)
    monkeypatch.setattr(netns_files.os, "fchmod", refused)
    with pytest.raises(OSError) as caught:
        netns_files.make_dir(str(tmp_path / "made"))
    assert caught.value.errno == errno.EROFS
    assert opened and opened == closed, (opened, closed)


def test_a_made_folder_has_the_kubelets_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        assert netns_files.make_dir(str(tmp_path / "made")) is True
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "made").st_mode & 0o777 == netns_files.DIR_MODE
    assert netns_files.make_dir(str(tmp_path / "made")) is False
