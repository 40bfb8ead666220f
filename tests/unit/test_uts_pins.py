"""The files pods' UTS namespaces are mounted on (workload/uts.py), without root: hard links of one empty file."""

from __future__ import annotations

import errno
import os

import pytest

from netlab.kernel import mountinfo
from netlab.workload import uts


def test_a_pin_is_a_new_link_of_the_template_or_the_file_already_there(tmp_path):
    template, pin = tmp_path / uts.TEMPLATE, tmp_path / "fedora-1"
    uts._make_file(str(template))
    uts._pin_file(str(template), str(pin))
    assert os.stat(pin).st_ino == os.stat(template).st_ino and os.stat(template).st_nlink == 2
    left = tmp_path / "fedora-2"
    left.write_bytes(b"")  # a pin a crash left unmounted: used as it is
    uts._pin_file(str(template), str(left))
    assert os.stat(left).st_ino != os.stat(template).st_ino and os.stat(template).st_nlink == 2


def test_a_symlink_where_a_pin_or_the_template_goes_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    (tmp_path / "fedora-1").symlink_to(target)
    (tmp_path / uts.TEMPLATE).symlink_to(target)
    with pytest.raises(OSError) as info:
        uts._make_file(str(tmp_path / uts.TEMPLATE))
    assert info.value.errno == errno.ELOOP
    with pytest.raises(OSError) as info:
        uts._pin_file(str(target), str(tmp_path / "fedora-1"))
    assert info.value.errno == errno.ELOOP  # never mounted through a link that points elsewhere


def test_a_file_of_its_own_when_the_template_has_too_many_links(tmp_path, monkeypatch):
    def link(src, dst):
        raise OSError(errno.EMLINK, "Too many links")

    template, pin = tmp_path / uts.TEMPLATE, tmp_path / "fedora-1"
    uts._make_file(str(template))
    monkeypatch.setattr(uts.os, "link", link)
    uts._pin_file(str(template), str(pin))
    assert pin.is_file() and os.stat(pin).st_ino != os.stat(template).st_ino


def test_the_template_goes_when_no_pin_is_left_beside_it(tmp_path, monkeypatch):
    monkeypatch.setattr(uts, "uts_dir", lambda lab: str(tmp_path))
    uts._make_file(str(tmp_path / uts.TEMPLATE))
    (tmp_path / "fedora-1").write_bytes(b"")
    uts.remove_template("lab")
    assert (tmp_path / uts.TEMPLATE).exists()
    (tmp_path / "fedora-1").unlink()
    uts.remove_template("lab")
    assert not any(tmp_path.iterdir())
    uts.remove_template("lab")  # nothing left: nothing to do


def test_a_folder_is_the_labs_tmpfs_of_pins_only_while_that_tmpfs_is_the_last_mounted_on_it(tmp_path, monkeypatch):
    """is_pins_fs reads /proc/self/mountinfo (here a copy; its mount point written as the kernel escapes it): the
    tmpfs netlab-uts on the folder itself, not on a folder above it, and no one else's mount on top of it (down
    would unmount theirs)."""
    udir = os.path.realpath(tmp_path) + "/my lab/uts"
    escaped = udir.replace(" ", "\\040")
    table = tmp_path / "mountinfo"
    table.write_text(f"22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
                     f"801 22 0:61 / {escaped} rw,nosuid - tmpfs netlab-uts rw,size=64k,mode=700\n")
    monkeypatch.setattr(mountinfo, "MOUNTINFO", str(table))
    monkeypatch.setattr(uts.os.path, "ismount", lambda path: True)
    assert uts.is_pins_fs(udir)
    assert not uts.is_pins_fs(os.path.dirname(udir))  # on / (ext4): a plain folder of it
    with open(table, "a") as f:
        f.write(f"900 801 0:70 / {escaped} rw - tmpfs other rw\n")
    assert not uts.is_pins_fs(udir)


def test_pins_this_run_made_with_their_hostnames_are_not_entered_again_but_the_others_are(tmp_path, monkeypatch):
    """A fresh lab's pins, made by the early echo start a moment before: `up`'s container start takes them as
    they are (500 pods: a setns and uname each, for nothing); a pin it did not make now is read, and renamed."""
    from netlab.kernel import netns as nsmod

    monkeypatch.setattr(uts, "uts_dir", lambda lab, make=False: str(tmp_path))
    monkeypatch.setattr(uts, "is_uts_mount", lambda path: True)  # every pin is there
    monkeypatch.setattr(uts, "_in_thread", lambda fn: fn())
    monkeypatch.setattr(nsmod, "current_fd", lambda kind: os.open(os.devnull, os.O_RDONLY))
    entered, named = [], []
    monkeypatch.setattr(nsmod, "setns", lambda fd, kind: entered.append(os.readlink(f"/proc/self/fd/{fd}")))
    monkeypatch.setattr(nsmod, "sethostname", named.append)
    for pod in ("a", "b"):
        (tmp_path / pod).write_bytes(b"")
    paths, made, renamed = uts.ensure_uts("lab", {"a": "a", "b": "b-new"}, unchanged=["a"])
    assert paths == {"a": str(tmp_path / "a"), "b": str(tmp_path / "b")} and made == []
    assert entered == [str(tmp_path / "b"), os.devnull]  # b's pin, then home: a's is not entered
    assert renamed == ["b"] and named == ["b-new"]
