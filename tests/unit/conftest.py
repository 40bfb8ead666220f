"""The unit ring: no root, and nothing written outside temporary directories."""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile

import pytest
from hypothesis import configuration


def _hypothesis_home() -> str:
    """Hypothesis keeps its example database and caches (the Unicode tables ``st.text()`` needs,
    a second or two to rebuild) in ./.hypothesis by default, inside the checkout. Here they go
    to a directory of this user's own under the system's temporary directory, kept between
    runs; one that someone else made, or that others could write to, is not used: then a
    fresh one is, removed when the run ends."""
    path = os.path.join(tempfile.gettempdir(), f"netlab-unit-hypothesis-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        path = ""
    if path:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            return path
    fresh = tempfile.mkdtemp(prefix="netlab-unit-hypothesis-")
    atexit.register(shutil.rmtree, fresh, ignore_errors=True)
    return fresh


configuration.set_hypothesis_home_dir(_hypothesis_home())


@pytest.fixture
def state_root(tmp_path, monkeypatch):
    """A private state directory (tmp_path/state) in place of /run/netlab, for the labs a test saves."""
    from netlab.realize import state_dir

    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(path))
    state_dir._checked.clear()
    yield path
    state_dir._checked.clear()
