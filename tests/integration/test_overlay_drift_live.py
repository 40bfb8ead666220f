"""Overlay drift that breaks traffic between nodes, on real namespaces (QA qa59f, fl59a).

Each case changes the VXLAN overlay of node minikube with `ip`/`bridge` inside the lab's namespace, as a
learner would, then: `status` names it (exit 1), one `up` repairs it, the kernel's own view (`bridge -j fdb`,
`ip -j -d link`, `ip -j neigh`) is Flannel's again, and the pods of the two nodes ping each other. Before, status
said "all as planned" of all of them (an FDB entry's port, VNI, device and state, the device's TTL, TOS, DF,
ageing and flags were never read), said the ARP entry made REACHABLE missing, and fought a default remote's
all-zeros FDB entry: every up failed and rolled back, each leaving one more all-zeros entry.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from breaking import assert_as_planned
from helpers import in_netns, ip_json, lab_up, netlab, sh, two_node_topology, unique_lab, write_topology

pytestmark = pytest.mark.root

PEER_IP, POD_1, POD_2 = "192.168.122.7", "10.244.0.2", "10.244.1.3"
ZEROS = "00:00:00:00:00:00"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("fa")
    path = write_topology(tmp_path_factory.mktemp("overlay"), two_node_topology(name, pods_per_node=1))
    with lab_up(path, name, in_process=True):
        yield name, path


def fdb(lab: str) -> list[dict]:
    """flannel.1's FDB on minikube, as `bridge -j fdb show` says it."""
    return json.loads(subprocess.run(["bridge", "-j", "-n", f"{lab}-minikube", "fdb", "show", "dev", "flannel.1"],
                                     capture_output=True, text=True, check=True).stdout)


def vtep_mac(lab: str) -> str:
    (link,) = ip_json("link", "show", "flannel.1", netns=f"{lab}-minikube-m02")
    return link["address"]


def flannel(lab: str) -> dict:
    (link,) = ip_json("-d", "link", "show", "flannel.1", netns=f"{lab}-minikube")
    return link


def replace_fdb(*words: str):
    return lambda L: sh("bridge", "-n", f"{L}-minikube", "fdb", "replace", vtep_mac(L), "dev", "flannel.1", "dst",
                        PEER_IP, *words)


def set_flannel(*words: str):
    return lambda L: sh("ip", "-n", f"{L}-minikube", "link", "set", "flannel.1", *words)


def pings(lab: str) -> bool:
    return all(in_netns(f"{lab}-{src}", "ping", "-c1", "-W2", dst).returncode == 0
               for src, dst in (("fedora-1", POD_2), ("fedora-2", POD_1)))


# (how it breaks, what status says of minikube's object, whether pods of the two nodes are cut off by it)
CASES = {
    # the frames go to UDP 4789, where no VXLAN device of minikube-m02 listens (its kernel answers port unreachable)
    "fdb entry to another port": (replace_fdb("port", "4789", "self", "permanent"),
                                  "(port 4789 (want flannel.1's own))", True),
    "fdb entry with another VNI": (replace_fdb("vni", "7", "self", "permanent"), "(vni 7 (want flannel.1's own))",
                                   True),
    "fdb entry via lo": (replace_fdb("via", "lo", "self", "permanent"), "(via lo (want none))", True),
    # forgotten after the device's ageing time (300 s), then nothing sends the frames to minikube-m02
    "fdb entry dynamic": (replace_fdb("self", "dynamic"), "(state dynamic (want permanent): the kernel forgets it "
                                                          "after flannel.1's ageing time)", False),
    "fdb entry static": (replace_fdb("self", "static"), "(state static (want permanent))", False),
    "vxlan ttl tos df ageing": (set_flannel("type", "vxlan", "ttl", "1", "tos", "0x10", "df", "set", "ageing", "30"),
                                "(ttl 1 (want auto), tos 0x10 (want 0), df set (want unset), ageing 30 (want 300))",
                                False),
    # every frame no entry names goes there; its all-zeros FDB entry is the device's, not another drift
    "vxlan remote": (set_flannel("type", "vxlan", "remote", PEER_IP), f"(remote {PEER_IP} (want none))", False),
    "flannel.1 arp off": (set_flannel("arp", "off"), "(arp off (want on))", False),
    "flannel.1 promisc on": (set_flannel("promisc", "on"), "(promisc on (want off))", False),
    "ARP entry reachable": (lambda L: sh("ip", "-n", f"{L}-minikube", "neigh", "replace", "10.244.1.0", "lladdr",
                                         vtep_mac(L), "dev", "flannel.1", "nud", "reachable"),
                            "(state reachable (want permanent))", False),
}


def assert_flannels(lab: str) -> None:
    """minikube's overlay as flanneld makes it, in the kernel's own words."""
    assert fdb(lab) == [{"mac": vtep_mac(lab), "dst": PEER_IP, "flags": ["self"], "state": "permanent"}]
    link = flannel(lab)
    assert "NOARP" not in link["flags"] and "PROMISC" not in link["flags"] and link["promiscuity"] == 0, link
    data = link["linkinfo"]["info_data"]
    assert "remote" not in data and "tos" not in data, data
    assert (data["id"], data["port"], data["ttl"], data["df"], data["ageing"], data["learning"]) == \
        (1, 8472, 0, "unset", 300, False), data
    (neigh,) = ip_json("neigh", "show", "10.244.1.0", "dev", "flannel.1", netns=f"{lab}-minikube")
    assert (neigh["lladdr"], neigh["state"]) == (vtep_mac(lab), ["PERMANENT"]), neigh


@pytest.mark.parametrize("case", list(CASES))
def test_overlay_drift_is_named_and_one_up_puts_flannels_overlay_back(lab, case):
    name, path = lab
    breaker, words, cut = CASES[case]
    breaker(name)
    if cut:
        assert not pings(name)  # it breaks traffic: what status must not call "as planned"
    st = netlab("status", "--lab", name, check=False)
    assert st.returncode == 1, st.stdout + st.stderr
    drift = [line.strip() for line in st.stdout.splitlines() if line.startswith("  ")]
    assert len(drift) in (1, 2) and words in drift[0] and f"in {name}-minikube" in drift[0], st.stdout
    assert "extra: fdb" not in st.stdout, st.stdout  # a remote's own all-zeros entry is the device's
    up = netlab("up", "-t", path, check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "nothing to change" not in up.stdout
    assert_as_planned(name, case)
    assert_flannels(name)
    assert pings(name)


def test_a_failed_repair_of_a_remote_gives_the_device_back_its_remote_and_one_all_zeros_entry(lab):
    """flannel.1 with a default remote by hand; up made to fail at each of its changes in turn: each time the
    node is as it was (the remote, the all-zeros entry it makes, once, via eth0), and status says the same. Before,
    every up failed ("could not converge ... rolled back") and each left one more all-zeros entry."""
    name, path = lab
    set_flannel("type", "vxlan", "remote", PEER_IP)(name)
    before = sorted(json.dumps(e, sort_keys=True) for e in fdb(name))
    said = netlab("status", "--lab", name, check=False).stdout
    assert [e for e in fdb(name) if e["mac"] == ZEROS] == [{"mac": ZEROS, "dst": PEER_IP, "viaIf": "eth0",
                                                            "flags": ["self"], "state": "permanent"}]
    for at in range(1, 20):
        up = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_AT": str(at)})
        if up.returncode == 0:
            break
        assert "rolled back" in up.stderr, up.stderr
        assert sorted(json.dumps(e, sort_keys=True) for e in fdb(name)) == before, f"fault at {at}"
        assert flannel(name)["linkinfo"]["info_data"]["remote"] == PEER_IP
        assert netlab("status", "--lab", name, check=False).stdout == said, f"fault at {at}"
    else:
        raise AssertionError("up never got past the injected faults")
    assert at > 2  # the device deleted and made again, at least
    assert_as_planned(name)
    assert_flannels(name)
    assert pings(name)
