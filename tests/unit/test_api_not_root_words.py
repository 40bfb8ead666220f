"""``Lab.up`` by a user who is not root, with a NETLAB_STATE_DIR of their own (so no "state is root's" refusal comes
first). QA q22 4: it said the doctor's line for root in an unprivileged container, with its "FAIL  " column
("FAIL  host capabilities: root without CAP_NET_ADMIN and CAP_SYS_ADMIN ... a container run with --privileged"),
where `netlab up`, `netlab doctor` and the pytest plugin say "needs root ... sudo". The real user: `runuser -u nobody`
in tests/integration/test_api_not_root_live.py."""

from __future__ import annotations

import os

import pytest
from test_capless_root_and_state_dir import cap_eff, no_live_kernel
from test_doctor import DEFAULT, install_machine

from netlab import doctor
from netlab.errors import EnvironmentNotReady

NOBODY = 65534
LINE = "netlab needs root: a lab is made of network namespaces; run it with sudo"


@pytest.fixture
def nobody(tmp_path, monkeypatch, state_root):
    """Not root, CapEff 0 (as a user's process has), and the state folder the user's own."""
    install_machine(tmp_path, monkeypatch)
    cap_eff(tmp_path, monkeypatch, "0000000000000000")
    os.chown(state_root, NOBODY, NOBODY)
    monkeypatch.setattr(os, "geteuid", lambda: NOBODY)
    no_live_kernel(monkeypatch)


def test_the_machines_gate_says_needs_root_in_one_line(nobody):
    with pytest.raises(EnvironmentNotReady) as caught:
        doctor.require_for(DEFAULT)
    assert str(caught.value) == LINE

