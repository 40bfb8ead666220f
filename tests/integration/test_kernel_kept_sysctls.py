"""The TTL and the ping answer a learner measures are the kernel's, and kept so (root, real sysctls): QA q62k 3.

A hand's net.ipv4.ip_default_ttl=50 in a pod made its pings arrive with another TTL than the tutorial's 64 (62
across two routers), and net.ipv4.icmp_echo_ignore_all=1 in a pod or a node made it stop answering ping, while
status said the lab was as planned. Now status names each and up writes the kernel's value back; a lab just made
needed neither written (the kernel gives a new namespace 64 and 0).
"""

from __future__ import annotations

import re

import pytest

from helpers import in_netns, module_lab, netlab, two_node_topology

pytestmark = pytest.mark.root

TTL = re.compile(r"ttl=(\d+)")


def ping(ns: str, dst: str) -> tuple[int, int | None]:
    """ping's exit and the TTL of the answer it printed."""
    out = in_netns(ns, "ping", "-c1", "-W2", dst)
    m = TTL.search(out.stdout)
    return out.returncode, int(m.group(1)) if m else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with module_lab(tmp_path_factory, "fkb", lambda name: two_node_topology(name, pods_per_node=1)) as (name, _):
        st = netlab("status", "--lab", name, check=False)
        assert st.returncode == 0, st.stdout + st.stderr
        yield name


def test_a_pods_default_ttl_is_said_and_set_back(lab):
    client, server = f"{lab}-fedora-1", f"{lab}-fedora-2"  # fedora-2 on the other node: two routers between
    assert ping(client, "10.244.1.3") == (0, 62)
    in_netns(server, "sysctl", "-qw", "net.ipv4.ip_default_ttl=50", check=True)
    assert ping(client, "10.244.1.3") == (0, 48)  # the kernel's view: the answer leaves with 50
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1 and f"net.ipv4.ip_default_ttl in {server}" in st.stdout, st.stdout
    assert "is 50, want 64" in st.stdout, st.stdout
    assert netlab("up", "--lab", lab, check=False).returncode == 0
    assert in_netns(server, "sysctl", "-n", "net.ipv4.ip_default_ttl", check=True).stdout.strip() == "64"
    assert ping(client, "10.244.1.3") == (0, 62)
    assert netlab("status", "--lab", lab, check=False).returncode == 0


@pytest.mark.parametrize("where,dst", [("fedora-2", "10.244.1.3"), ("minikube-m02", "192.168.122.7")])
def test_a_namespace_that_ignores_ping_is_said_and_answers_again(lab, where, dst):
    ns, client = f"{lab}-{where}", f"{lab}-fedora-1"
    in_netns(ns, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1", check=True)
    assert ping(client, dst)[0] != 0  # the behaviour: no answer
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1 and f"net.ipv4.icmp_echo_ignore_all in {ns}" in st.stdout, st.stdout
    assert netlab("up", "--lab", lab, check=False).returncode == 0
    assert in_netns(ns, "sysctl", "-n", "net.ipv4.icmp_echo_ignore_all", check=True).stdout.strip() == "0"
    assert ping(client, dst)[0] == 0
    assert netlab("status", "--lab", lab, check=False).returncode == 0
