"""A state folder whose lab's control socket path (<folder>/<lab>/echo.sock) is longer than an AF_UNIX address
holds (sun_path: 108 bytes with its NUL).

Under a state folder of 73 characters or more (a 24-character lab name), `up` made the lab with every pod's echo
container failed ("could not start the echo server: AF_UNIX path too long"), exit 1, `status` then advised to fix
the command in the file, and the doctor said the folder was fine. The socket is now bound and reached through its
folder's descriptor: any folder the doctor takes works, `up`, `probe`, `status` and `down` alike.
"""

from __future__ import annotations

import os
import stat

import pytest

from helpers import lab_namespaces, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root


def test_a_lab_under_a_state_folder_of_100_characters_and_more_serves_its_echo_containers(tmp_path):
    lab = unique_lab("sa")
    state = str(tmp_path / ("s" * 100))
    assert len(state) >= 100
    control = os.path.join(state, lab, "echo.sock")
    assert len(control.encode()) >= 108  # no AF_UNIX address holds it
    own = {"NETLAB_STATE_DIR": state}
    topo = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}, {{name: n2, ip: 192.168.122.8}}]\n"
                                    "pods: [{name: a, node: n1}, {name: b, node: n2}]\n")
    try:
        up = netlab("up", "-t", topo, env=own, check=False)
        assert (up.returncode, up.stderr) == (0, ""), up
        assert "2 containers started" in up.stdout, up
        assert stat.S_ISSOCK(os.lstat(control).st_mode)  # at its own path, in the lab's folder

        probe = netlab("probe", "--lab", lab, env=own, check=False)
        assert probe.returncode == 0, probe
        assert "probes as expected" in probe.stdout and "not as expected" not in probe.stdout, probe

        status = netlab("status", "--lab", lab, env=own, check=False)
        assert (status.returncode, status.stderr) == (0, ""), status
        assert status.stdout.endswith("all as planned\n"), status

        down = netlab("down", "--lab", lab, env=own, check=False)
        assert down.returncode == 0 and down.stdout.startswith(f"lab {lab} is down ("), down
        assert lab_namespaces(lab) == [] and not os.path.lexists(os.path.join(state, lab))
    finally:
        if lab_namespaces(lab) or os.path.lexists(os.path.join(state, lab)):
            netlab("down", "--lab", lab, check=False, env=own)
