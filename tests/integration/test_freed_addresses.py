"""An address a running lab frees and gives again, as a real cluster does it: the new owner announces itself.

A pod that leaves a node, or a node that leaves the lab, leaves its MAC in the neighbour tables of whoever talked
to it (REACHABLE for tens of seconds). The next pod of that node (the lowest free address: the same one), or the
next node (the same underlay address), is reached at once only because ``up`` sends a gratuitous ARP from its
interface once it has the address (lab/announce.py, kernel/garp.py): the tables are checked with ``ip -j neigh``
and real traffic, a probe right after ``up``. And what the running lab no longer has leaves no file behind: a
removed node's Flannel files, the cluster DNS's records folder once the last Service goes.
"""

from __future__ import annotations

import json
import os
import time
from ipaddress import IPv4Address

import pytest

from helpers import in_netns, ip_json, lab_up, netlab, probe_failures, state_path, unique_lab, write_topology

pytestmark = pytest.mark.root


def neigh(netns: str, dev: str, dst: str) -> list[dict]:
    """The kernel's neighbour entries for ``dst`` on ``dev`` (``ip -j neigh``)."""
    return [n for n in ip_json("neigh", "show", "dev", dev, netns=netns) if n["dst"] == dst]


def mac_of(netns: str, dev: str) -> str:
    (link,) = ip_json("link", "show", "dev", dev, netns=netns)
    return link["address"]


def probe_ok(lab: str) -> None:
    probe = netlab("probe", "--lab", lab, "-o", "json", check=False)
    assert probe.returncode == 0, probe_failures(json.loads(probe.stdout))


def pods_topology(lab: str, pods: list[tuple[str, str]]) -> str:
    body = "".join(f"  - {{name: {name}, node: {node}}}\n" for name, node in pods)
    return (f"name: {lab}\nnetwork: {{mode: vxlan, underlay: {{cidr: 192.168.77.0/24, mtu: 1500}}}}\n"
            f"nodes: [{{name: n1}}, {{name: n2}}]\npods:\n{body}")


def test_a_pod_given_a_moved_pods_address_is_reached_through_its_node_at_once(tmp_path):
    """p4 (10.244.0.3 on n1) moves to n2 while n1's cni0 has it REACHABLE; p7, added on n1 in the same edit,
    gets 10.244.0.3. Its gratuitous ARP replaces n1's entry with p7's MAC."""
    lab = unique_lab("fa")
    path = write_topology(tmp_path, pods_topology(lab, [("p1", "n1"), ("p3", "n2"), ("p4", "n1")]))
    with lab_up(path, lab):
        n1 = f"{lab}-n1"
        assert in_netns(f"{lab}-p3", "ping", "-c1", "-W1", "10.244.0.3").returncode == 0  # routed through n1
        old_mac = mac_of(f"{lab}-p4", "eth0")
        assert [(n["lladdr"], n["state"]) for n in neigh(n1, "cni0", "10.244.0.3")] == [(old_mac, ["REACHABLE"])]
        write_topology(tmp_path, pods_topology(lab, [("p1", "n1"), ("p3", "n2"), ("p4", "n2"), ("p7", "n1")]))
        netlab("up", "-t", path)
        assert ip_json("-4", "addr", "show", "dev", "eth0", netns=f"{lab}-p7")[0]["addr_info"][0]["local"] \
            == "10.244.0.3"
        new_mac = mac_of(f"{lab}-p7", "eth0")
        assert new_mac != old_mac
        assert [n["lladdr"] for n in neigh(n1, "cni0", "10.244.0.3")] == [new_mac]
        probe_ok(lab)  # right after up: p3 -> p7 and n1 -> p7 go to p7's MAC


def test_a_node_given_a_removed_nodes_underlay_address_is_reached_at_once_and_its_files_go(tmp_path):
    """n3 (192.168.77.4) goes, n4 comes and gets its address: n1's eth0 had n3's MAC REACHABLE (VXLAN packets
    to n4's pods would go to a dead MAC). n4's gratuitous ARP replaces it. n3's Flannel files go with it."""
    lab = unique_lab("fn")

    def topology(last: str) -> str:
        return (f"name: {lab}\nnetwork: {{mode: vxlan, underlay: {{cidr: 192.168.77.0/24, mtu: 1500}}}}\n"
                f"nodes: [{{name: n1}}, {{name: n2}}, {{name: {last}}}]\n"
                f"pods:\n  - {{name: p1, node: n1}}\n  - {{name: p3, node: {last}}}\n")

    path = write_topology(tmp_path, topology("n3"))
    with lab_up(path, lab):
        n1 = f"{lab}-n1"
        assert in_netns(f"{lab}-p1", "ping", "-c1", "-W1", "10.244.2.2").returncode == 0  # VXLAN n1 -> n3
        old_mac = mac_of(f"{lab}-n3", "eth0")
        assert [(n["lladdr"], n["state"]) for n in neigh(n1, "eth0", "192.168.77.4")] == [(old_mac, ["REACHABLE"])]
        n3_files = [state_path(lab, "nodes", "n3", *p) for p in (("run", "flannel", "subnet.env"),
                                                                  ("etc", "cni", "net.d", "10-flannel.conflist"))]
        assert all(os.path.isfile(f) for f in n3_files)
        write_topology(tmp_path, topology("n4"))
        netlab("up", "-t", path)
        assert ip_json("-4", "addr", "show", "dev", "eth0", netns=f"{lab}-n4")[0]["addr_info"][0]["local"] \
            == "192.168.77.4"
        new_mac = mac_of(f"{lab}-n4", "eth0")
        assert [n["lladdr"] for n in neigh(n1, "eth0", "192.168.77.4")] == [new_mac]
        probe_ok(lab)  # right after up: p1 -> p3 (now on n4) over VXLAN to n4's eth0
        assert not os.path.lexists(state_path(lab, "nodes", "n3"))
        assert sorted(os.listdir(state_path(lab, "nodes"))) == ["n1", "n2", "n4"]


def test_the_cluster_dns_records_folder_goes_with_the_last_service(tmp_path):
    lab = unique_lab("fd")
    pod = "  - {name: w1, node: n1, labels: {app: web}}\n"
    service = "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n"
    path = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n{pod}{service}")
    with lab_up(path, lab):
        assert os.path.isfile(state_path(lab, "dns", "hosts"))
        write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n{pod}")
        netlab("up", "-t", path)
        assert not os.path.lexists(state_path(lab, "dns"))
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 0, status.stdout + status.stderr


def test_a_gratuitous_arp_overrides_an_entry_within_its_locktime(tmp_path):
    """The kernel fact the announcement relies on (net/ipv4/arp.c arp_process: ``override = ... || is_garp``):
    an entry confirmed a moment ago takes a gratuitous ARP's MAC at once, though its neighbour locktime (1 s)
    has not passed; so ``up`` needs not delete the entries a removed pod leaves."""
    from netlab.kernel import garp

    lab = unique_lab("fl")
    path = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n"
                                    "  - {name: a, node: n1}\n  - {name: b, node: n1}\n")
    with lab_up(path, lab):
        n1, b_ip = f"{lab}-n1", "10.244.0.3"
        locktime = in_netns(n1, "cat", "/proc/sys/net/ipv4/neigh/cni0/locktime", check=True).stdout
        assert int(locktime) == 100  # USER_HZ: a second, the kernel's default
        start = time.monotonic()
        assert in_netns(n1, "ping", "-c1", "-W1", b_ip).returncode == 0
        assert [n["lladdr"] for n in neigh(n1, "cni0", b_ip)] == [mac_of(f"{lab}-b", "eth0")]
        garp.announce(f"{lab}-a", "eth0", IPv4Address(b_ip))  # a claims b's address
        assert time.monotonic() - start < 1.0  # within the locktime of the entry the ping made
        assert [n["lladdr"] for n in neigh(n1, "cni0", b_ip)] == [mac_of(f"{lab}-a", "eth0")]
