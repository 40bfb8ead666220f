"""CNI plugins removed after `up` (QA q50 #5): `status` said it was drift (exit 1) and named `up` as the repair, which
the doctor's check refuses. It is the machine's, as a missing iptables-save is: the doctor's `tool CNI plugins`
line with its fix, exit 3. The real machine: tests/integration/test_cni_plugins_gone_live.py."""

from __future__ import annotations

import shutil

import pytest

from cni_fakes import cni_topo, cni_world, lab_of, up
from netlab.cni import conf as cni_conf, lifecycle
from netlab.errors import EXIT_ENVIRONMENT, EnvironmentNotReady
from netlab.kernel.fake import FakeKernel
from netlab.realize import state as state_mod

TOPO = cni_topo("fkpg") + """\
  - {name: a, node: n1, ip: 10.244.0.2}
"""


@pytest.fixture
def attached(tmp_path, monkeypatch):
    from test_cni_reattach import Plugins

    debians = tmp_path / "usr-lib-cni"  # Debian's folder, after the lab's binDir in CNI_PATH
    debians.mkdir()
    monkeypatch.setattr(cni_conf, "CNI_BIN_DIR", str(debians))
    with cni_world(tmp_path, monkeypatch, TOPO, Plugins()):
        lab = lab_of(tmp_path)
        up(lab, FakeKernel())
        yield lab, tmp_path


def test_plugins_gone_since_up_are_the_doctors_line_not_drift(attached):
    lab, folder = attached
    assert lifecycle.drift(lab, state_mod.load_state(lab.name)) == []  # status's CHECK: as attached
    kept = folder / "kept"
    shutil.move(folder / "bin", kept)
    (folder / "bin").mkdir()  # the plugins removed: an empty folder
    with pytest.raises(EnvironmentNotReady) as info:
        lifecycle.drift(lab, state_mod.load_state(lab.name))
    line = str(info.value)
    assert line.startswith("FAIL  tool CNI plugins: plugin 'loopback' not found in ") and "'chain' not found" in line \
        and "; fix: " in line and "\n" not in line, line
    assert info.value.exit_code == EXIT_ENVIRONMENT
    (folder / "bin").rmdir()
    shutil.move(kept, folder / "bin")
    assert lifecycle.drift(lab, state_mod.load_state(lab.name)) == []
