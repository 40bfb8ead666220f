"""One interface's IPv6 turned back on is drift (root, real sysctls): QA q62k 2.

netlab turns IPv6 off with all's and default's disable_ipv6; a hand writing one interface's back to 0 (cni0, a
pod's eth0, flannel.1) gives it an fe80:: address, router solicitations and MLD on the wire, and a pod that answers
IPv6 on its link, while status said the lab was as planned. Now status names the interface's switch, read from
the link dump, and up writes it back: the address goes and the pod no longer answers over IPv6.
"""

from __future__ import annotations

import pytest

from helpers import in_netns, ip_json, module_lab, netlab, two_node_topology, wait_for

pytestmark = pytest.mark.root


def link_local(ns: str, dev: str) -> list[str]:
    """The interface's fe80:: addresses that finished duplicate address detection."""
    return [a["local"] for i in ip_json("-6", "addr", "show", "dev", dev, netns=ns) for a in i.get("addr_info", [])
            if a["local"].startswith("fe80:") and not a.get("tentative")]


def switch(ns: str, dev: str) -> str:
    return in_netns(ns, "cat", f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6", check=True).stdout.strip()  # flannel.1


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with module_lab(tmp_path_factory, "fkb", lambda name: two_node_topology(name, pods_per_node=1)) as (name, _):
        st = netlab("status", "--lab", name, check=False)
        assert st.returncode == 0, st.stdout + st.stderr  # the links were made with it off: nothing to write
        yield name


@pytest.mark.parametrize("where,dev", [("minikube", "cni0"), ("minikube", "flannel.1"), ("fedora-1", "eth0")])
def test_an_interfaces_ipv6_turned_on_is_said_and_turned_off(lab, where, dev):
    ns = f"{lab}-{where}"
    shown = dev.replace(".", "/")
    assert switch(ns, dev) == "1" and link_local(ns, dev) == []
    in_netns(ns, "sysctl", "-qw", f"net.ipv6.conf.{shown}.disable_ipv6=0", check=True)
    assert wait_for(lambda: link_local(ns, dev) != [], timeout=5), "the kernel gave it no fe80:: address"
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1, st.stdout + st.stderr
    assert f"net.ipv6.conf.{shown}.disable_ipv6 in {ns}" in st.stdout and "is 0, want 1" in st.stdout, st.stdout
    up = netlab("up", "--lab", lab, check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    assert switch(ns, dev) == "1" and link_local(ns, dev) == [], "up left IPv6 on"
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 0, st.stdout + st.stderr


def test_a_pod_answers_ipv6_on_its_link_only_while_its_eth0_has_it(lab):
    node, pod = f"{lab}-minikube", f"{lab}-fedora-1"
    for ns, dev in ((node, "cni0"), (pod, "eth0")):
        in_netns(ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=0", check=True)
    assert wait_for(lambda: link_local(pod, "eth0") != [] and link_local(node, "cni0") != [], timeout=5)
    (addr,) = link_local(pod, "eth0")
    assert in_netns(node, "ping", "-6", "-c1", "-W2", f"{addr}%cni0").returncode == 0  # the behaviour: it answers
    assert netlab("up", "--lab", lab, check=False).returncode == 0
    assert in_netns(node, "ping", "-6", "-c1", "-W2", f"{addr}%cni0").returncode != 0
    assert netlab("status", "--lab", lab, check=False).returncode == 0
