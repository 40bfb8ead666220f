"""Root's state directory, seen by a program that is not root: netlab needs root (exit 3), as up says, not
"owned by uid 0, not by us; remove it and retry" (advice that would destroy everyone's labs on a shared machine).
"""

from __future__ import annotations

import os

import pytest

from netlab.errors import EnvironmentNotReady
from netlab.realize import state_dir


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a directory root owns, made by root")
def test_roots_state_directory_to_someone_else_says_netlab_needs_root(tmp_path, monkeypatch):
    root_owned = tmp_path / "netlab"
    root_owned.mkdir(mode=0o700)
    state_dir._check_dir(str(root_owned))  # root's own: fine for root
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(EnvironmentNotReady) as err:
        state_dir._check_dir(str(root_owned))
    assert str(err.value) == (f"netlab needs root: a lab is made of network namespaces, and its state in "
                              f"{root_owned} is root's; run it with sudo")
    assert err.value.exit_code == 3 and "remove it" not in str(err.value)
    os.chown(root_owned, 1001, 1001)  # another user's, not root's: still refused, with the fix
    with pytest.raises(EnvironmentNotReady, match="is owned by uid 1001, not by us; remove it and retry"):
        state_dir._check_dir(str(root_owned))



def test_a_state_directory_the_user_named_is_not_to_be_removed(tmp_path, monkeypatch):
    """NETLAB_STATE_DIR names a symlink or a file: "remove it and retry" would remove what the user named (their
    file, /proc/self); the fix is another directory. A lab's own folder under it is netlab's: removing it stays."""
    target = tmp_path / "real"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(target)
    afile = tmp_path / "afile"
    afile.write_text("someone's")
    for path, problem in ((link, "is a symlink"), (afile, "is not a directory")):
        monkeypatch.setattr(state_dir, "STATE_ROOT", str(path))
        with pytest.raises(EnvironmentNotReady) as err:
            state_dir._check_dir(str(path))
        assert problem in str(err.value) and "point NETLAB_STATE_DIR at a directory" in str(err.value)
        assert "remove it" not in str(err.value)
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path))
    with pytest.raises(EnvironmentNotReady, match="is a symlink; refusing to use it \\(remove it and retry\\)"):
        state_dir._check_dir(str(link))  # a lab's folder under the state directory
