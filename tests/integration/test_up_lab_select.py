"""`netlab up` without -t FILE repairs the lab the user means, as every command picks it (root, the real CLI on
real labs): the lab $NETLAB_LAB names, else the only lab up. `netlab break` teaches plain `sudo netlab up` as the
repair; with $NETLAB_LAB set it built the built-in lab 'demo' (exit 0) and left the broken lab broken.
The choice itself, every case, without root: tests/unit/test_cli_up_lab.py.

Each test keeps its labs in a state directory of its own (NETLAB_STATE_DIR): "the labs that are up" are its
own, and whatever a run made there ('demo' too, were `up` to make it again) is taken down at the end."""

from __future__ import annotations

import os
import shlex

import pytest

from helpers import lab_namespaces, netlab, two_node_topology, unique_lab, write_topology

pytestmark = pytest.mark.root

BROKEN = "missing: neighbour 10.244.1.0 "  # what status says of vxlan-arp-missing: minikube's ARP entry for the VTEP


@pytest.fixture
def own_state(tmp_path):
    """The environment of netlab commands whose labs are this test's alone; every lab made there comes down."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    env = {"NETLAB_STATE_DIR": str(state), "NETLAB_LAB": ""}  # an empty $NETLAB_LAB names no lab
    yield env
    for name in sorted(os.listdir(state)):
        netlab("down", "--lab", name, env=env, check=False)
        assert not lab_namespaces(name), f"lab {name} left namespaces"


def up_lab(tmp_path, env: dict) -> str:
    name = unique_lab("ul")
    netlab("up", "-t", write_topology(tmp_path, two_node_topology(name, pods_per_node=1), f"{name}.yaml"), env=env)
    return name


def test_a_plain_up_repairs_the_lab_netlab_lab_names_with_another_lab_up(tmp_path, own_state):
    broken, other = up_lab(tmp_path, own_state), up_lab(tmp_path, own_state)
    env = {**own_state, "NETLAB_LAB": broken}
    netlab("break", "vxlan-arp-missing", env=env)
    drift = netlab("status", env=env, check=False)
    assert drift.returncode == 1 and BROKEN in drift.stdout, drift.stdout
    up = netlab("up", env=env)
    assert up.stdout.startswith(f"lab {broken} is up (1 object added, changed or repaired)"), up.stdout
    assert netlab("status", env=env).returncode == 0
    assert netlab("status", "--lab", other, env=own_state).returncode == 0  # the other lab untouched
    assert sorted(os.listdir(own_state["NETLAB_STATE_DIR"])) == sorted([broken, other])  # no 'demo' made


def test_a_plain_up_repairs_the_only_lab_up(tmp_path, own_state):
    name = up_lab(tmp_path, own_state)
    netlab("break", "vxlan-arp-missing", env=own_state)
    up = netlab("up", env=own_state)
    assert up.stdout.splitlines()[:2] == [
        f"no -t FILE nor --lab: lab {name}, the only lab up, converges to its saved topology (`sudo "
        f"NETLAB_STATE_DIR={shlex.quote(own_state['NETLAB_STATE_DIR'])} netlab up --lab demo` makes the built-in "
        "default lab)",
        f"lab {name} is up (1 object added, changed or repaired): 2 nodes, 2 pods, 0 services; VXLAN overlay "
        "(flannel.1, UDP 8472)"], up.stdout
    assert netlab("status", env=own_state).returncode == 0
    assert os.listdir(own_state["NETLAB_STATE_DIR"]) == [name]  # no 'demo' made
