"""A bridge's settings, its ports' and a static FDB entry a hand adds, on a real lab: status names each, one up
sets it back in place, and pods reach each other again.

One lab (the default two-node shape, two pods a node) is shared by the module. Each case breaks it with
`ip`/`bridge` inside the lab's namespaces, as a learner would, and checks that traffic is cut, that `status`
names the setting (exit 1), that `up` changes it back (seen with `ip -d -j link`, `bridge -d -j link` and
`bridge -j fdb` in the namespace) and that every pod pings every other one again. Unit tests with the fake
kernel: tests/unit/test_lab_fake_bridge_settings.py.
"""

from __future__ import annotations

import json

import pytest

from breaking import assert_as_planned
from helpers import in_netns, ip_json, lab_up, netlab, sh, two_node_topology, unique_lab, write_topology

pytestmark = pytest.mark.root

PODS = {"fedora-1": "10.244.0.2", "fedora-2": "10.244.1.3", "fedora-3": "10.244.0.3", "fedora-4": "10.244.1.4"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("brs")
    path = write_topology(tmp_path_factory.mktemp("bridge"), two_node_topology(name, pods_per_node=2))
    with lab_up(path, name, in_process=True):
        yield name, path


def pod_veth(lab: str, pod: str, node: str = "minikube") -> str:
    """The veth on ``node`` whose peer is the pod's eth0 (a node's underlay veth: pod = the node's name)."""
    (eth0,) = ip_json("link", "show", "eth0", netns=f"{lab}-{pod}")
    (link,) = [x for x in ip_json("link", netns=f"{lab}-{node}") if x["ifindex"] == eth0["link_index"]]
    return link["ifname"]


def mac_of(lab: str, pod: str) -> str:
    (eth0,) = ip_json("link", "show", "eth0", netns=f"{lab}-{pod}")
    return eth0["address"]


def bridge_json(netns: str, *args: str) -> list:
    return json.loads(in_netns(netns, "bridge", "-d", "-j", *args, check=True).stdout or "[]")


def forget_neighbours(lab: str) -> None:
    """Every pod's and node's ARP entries flushed: the next packet asks again (broadcast)."""
    for ns in [f"{lab}-{p}" for p in PODS] + [f"{lab}-minikube", f"{lab}-minikube-m02"]:
        sh("ip", "-n", ns, "neigh", "flush", "all")


def unreachable(lab: str) -> list[str]:
    bad = []
    for src in PODS:
        for dst, addr in PODS.items():
            if src != dst and in_netns(f"{lab}-{src}", "ping", "-c1", "-W2", addr).returncode != 0:
                bad.append(f"{src}->{dst}")
    return bad


def status_says(name: str) -> str:
    st = netlab("status", "--lab", name, check=False)
    assert st.returncode == 1, st.stdout + st.stderr
    return st.stdout


def repair(name: str, path: str) -> str:
    up = netlab("up", "-t", path, check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    assert_as_planned(name)
    return up.stdout


def test_a_pods_port_with_broadcast_flooding_off_is_named_and_set_back(lab):
    name, path = lab
    port = pod_veth(name, "fedora-1")
    sh("bridge", "-n", f"{name}-minikube", "link", "set", "dev", port, "bcast_flood", "off")
    forget_neighbours(name)
    # fedora-3's ARP request for fedora-1 (on the same cni0) is a broadcast cni0 no longer floods to its port (the
    # bridge's own broadcasts still go: br_flood)
    assert in_netns(f"{name}-fedora-3", "ping", "-c1", "-W2", PODS["fedora-1"]).returncode != 0
    trace = netlab("trace", "--lab", name, "fedora-3", "fedora-1", check=False).stdout
    assert f"the bridge port {port} of cni0 in {name}-minikube (veth peer of fedora-1's eth0) has bcast_flood off" \
        in trace, trace
    out = status_says(name)
    assert f"different: link {port} in {name}-minikube (bridge port of cni0: bcast_flood off (want on))" in out, out
    assert f"set port_settings of link {port} in {name}-minikube" in repair(name, path)
    (seen,) = bridge_json(f"{name}-minikube", "link", "show", "dev", port)
    assert seen["bcast_flood"] is True and seen["hairpin"] is True
    assert unreachable(name) == []


def test_every_underlay_port_isolated_is_named_and_set_back(lab):
    name, path = lab
    ports = [pod_veth(name, node, node="underlay") for node in ("minikube", "minikube-m02")]
    for port in ports:
        sh("bridge", "-n", f"{name}-underlay", "link", "set", "dev", port, "isolated", "on")
    assert in_netns(f"{name}-fedora-1", "ping", "-c1", "-W2", PODS["fedora-2"]).returncode != 0
    trace = netlab("trace", "--lab", name, "fedora-1", "fedora-2", check=False).stdout
    assert "the bridge forwards nothing between two isolated ports" in trace, trace
    out = status_says(name)
    for port in ports:
        assert f"different: link {port} in {name}-underlay (bridge port of br0: isolated on (want off))" in out, out
    repair(name, path)
    for port in ports:
        (seen,) = bridge_json(f"{name}-underlay", "link", "show", "dev", port)
        assert seen["isolated"] is False
    assert unreachable(name) == []


def test_a_bridge_with_stp_on_is_named_and_set_back(lab):
    """`stp_state 1`: a port made from then on (a pod's) listens and learns for twice the forward delay before
    it forwards anything (kernel/rtnl_bridge.py; this kernel may lack VLAN filtering, the other way to cut)."""
    name, path = lab
    sh("ip", "-n", f"{name}-minikube", "link", "set", "cni0", "type", "bridge", "forward_delay", "400",
       "stp_state", "1")
    out = status_says(name)
    assert (f"different: link cni0 in {name}-minikube (forward_delay 400 (want 1500), stp_state 1 (want 0))"
            in out), out
    assert f"set settings of link cni0 in {name}-minikube" in repair(name, path)
    (seen,) = ip_json("-d", "link", "show", "cni0", netns=f"{name}-minikube")
    data = seen["linkinfo"]["info_data"]
    assert data["stp_state"] == 0 and data["forward_delay"] == 1500
    assert unreachable(name) == []


@pytest.mark.parametrize("how", [("static", "sticky"), ("permanent",), ("dynamic", "sticky")])
def test_an_fdb_entry_pinning_a_pods_mac_to_another_port_is_extra_and_deleted(lab, how):
    """`static sticky`: frames for fedora-1 go out of fedora-3's port (a plain static entry moves when fedora-1
    sends); `permanent`: the node takes them as its own; `dynamic sticky`: the kernel refreshes it on each frame
    from fedora-1 but never moves it (learning never sets sticky: a hand's, QA fx61a 1). Each cuts fedora-1 off."""
    name, path = lab
    mac, other = mac_of(name, "fedora-1"), pod_veth(name, "fedora-3")
    # replace: the entry the bridge learned for the MAC is there already
    sh("bridge", "-n", f"{name}-minikube", "fdb", "replace", mac, "dev", other, "master", *how)
    assert in_netns(f"{name}-fedora-2", "ping", "-c1", "-W2", PODS["fedora-1"]).returncode != 0
    trace = netlab("trace", "--lab", name, "fedora-3", "fedora-1", check=False).stdout
    state = " ".join(how)  # `static sticky` as bridge -j fdb has it (trace said a static entry's sticky nowhere)
    assert f"but an FDB entry a hand added ({state}) pins it to port {other}" in trace, trace
    assert f"bridge -n {name}-minikube fdb del {mac} dev {other} master" in trace, trace
    out = status_says(name)
    assert f"extra: bridge fdb {mac} dev {other} master cni0 {' '.join(how)} in {name}-minikube" in out, out
    assert f"del bridge fdb {mac} dev {other} master cni0 {' '.join(how)} in {name}-minikube" in repair(name, path)
    entries = bridge_json(f"{name}-minikube", "fdb", "show", "br", "cni0")
    assert not [e for e in entries if e["mac"] == mac and e.get("ifname") == other], entries
    assert unreachable(name) == []
    # the kernel's own entries (learned, each port's MAC) are none of the lab's drift
    assert any(e.get("state") == "permanent" for e in entries) and netlab("status", "--lab", name).returncode == 0


def test_a_sticky_entry_up_deleted_is_put_back_sticky_by_its_runs_rollback(lab):
    """A run that fails after deleting a hand's `static sticky` entry adds it back as it was: sticky (it was put
    back a plain static entry, which moves to the port the MAC is next seen on)."""
    name, path = lab
    mac, other, port = mac_of(name, "fedora-1"), pod_veth(name, "fedora-3"), pod_veth(name, "fedora-4")
    sh("bridge", "-n", f"{name}-minikube", "fdb", "replace", mac, "dev", other, "master", "static", "sticky")
    sh("bridge", "-n", f"{name}-minikube", "link", "set", "dev", port, "bcast_flood", "off")
    before = status_says(name)
    failed = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_AT": "2"})
    assert failed.returncode == 4 and failed.stderr.strip().endswith("; rolled back"), failed.stderr
    assert "(del bridge fdb" not in failed.stderr  # the fault came after the entry's deletion
    (entry,) = [e for e in bridge_json(f"{name}-minikube", "fdb", "show", "br", "cni0") if e["mac"] == mac]
    assert entry.get("ifname") == other and entry.get("state") == "static" and "sticky" in entry.get("flags", [])
    assert status_says(name) == before
    # fedora-1 sends (a plain static entry would move to its port now): still cut off
    in_netns(f"{name}-fedora-1", "ping", "-c1", "-W1", PODS["fedora-3"])
    assert in_netns(f"{name}-fedora-2", "ping", "-c1", "-W2", PODS["fedora-1"]).returncode != 0
    assert f"del bridge fdb {mac} dev {other} master cni0 static sticky in {name}-minikube" in repair(name, path)
    assert not [e for e in bridge_json(f"{name}-minikube", "fdb", "show", "br", "cni0")
                if e["mac"] == mac and e.get("ifname") == other]
    assert unreachable(name) == []
