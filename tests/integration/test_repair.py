"""Every kind of drift is reported by status and repaired by one up; a failed repair makes nothing worse.

One lab (the default two-node Flannel shape) is shared by the module: each
case breaks it with ordinary tools, as a learner would, checks that `status`
names the damage (exit 1), runs `up` once, and checks that `status` is clean
and traffic flows again, so the next case starts from a repaired lab.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from breaking import assert_as_planned
from helpers import (in_netns, ip, ip_json, lab_down_here, netlab, resolving, set_port_state, sh, state_path,
                     two_node_topology, unique_lab, wait_for, write_topology)
from netlab import Lab

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("rp")
    path = write_topology(tmp_path_factory.mktemp("repair"), two_node_topology(name, pods_per_node=2))
    try:
        Lab.up(path)  # the cases test status and up on it, not its first up
        yield name, path
    finally:
        lab_down_here(name)


def remote_vtep_mac(lab: str) -> str:
    (entry,) = [e for e in json.loads(subprocess.run(
        ["bridge", "-j", "-n", f"{lab}-minikube", "fdb", "show", "dev", "flannel.1"],
        capture_output=True, text=True, check=True).stdout) if e.get("dst")]
    return entry["mac"]


def pod_veth(lab: str, pod: str, node: str = "minikube") -> str:
    """The node-side veth of a pod: the link whose index the pod's eth0 names as its peer."""
    (eth0,) = ip_json("link", "show", "eth0", netns=f"{lab}-{pod}")
    (link,) = [x for x in ip_json("link", netns=f"{lab}-{node}") if x["ifindex"] == eth0["link_index"]]
    return link["ifname"]


# (what breaks, how, what status must say)
CASES = {
    "namespace deleted": (lambda L: sh("ip", "netns", "del", f"{L}-fedora-2"), "missing: namespace {L}-fedora-2"),
    "link down": (lambda L: sh("ip", "-n", f"{L}-fedora-2", "link", "set", "eth0", "down"),
                  "link eth0 in {L}-fedora-2 (down)"),
    "link deleted": (lambda L: sh("ip", "-n", f"{L}-fedora-1", "link", "del", "eth0"), "missing: link veth"),
    "node veth down": (lambda L: sh("ip", "-n", f"{L}-minikube", "link", "set", pod_veth(L, "fedora-1"), "down"),
                       "(down)"),
    "address deleted": (lambda L: sh("ip", "-n", f"{L}-minikube", "addr", "del", "10.244.0.1/24", "dev", "cni0"),
                        "missing: address 10.244.0.1/24 on cni0 in {L}-minikube"),
    "route deleted": (lambda L: sh("ip", "-n", f"{L}-minikube", "route", "del", "10.244.1.0/24"),
                      "missing: route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in {L}-minikube"),
    "extra route in a node": (lambda L: sh("ip", "-n", f"{L}-minikube", "route", "add", "10.55.0.0/16", "dev", "eth0"),
                              "extra: route 10.55.0.0/16 dev eth0 in {L}-minikube"),
    "extra route in a pod": (lambda L: sh("ip", "-n", f"{L}-fedora-1", "route", "add", "10.55.0.0/16", "dev", "eth0"),
                             "extra: route 10.55.0.0/16 dev eth0 in {L}-fedora-1"),
    "route changed": (lambda L: sh("ip", "-n", f"{L}-fedora-1", "route", "replace", "default", "via", "10.244.0.3"),
                      "different: route default via 10.244.0.1 dev eth0 in {L}-fedora-1"),
    "ARP entry deleted": (lambda L: sh("ip", "-n", f"{L}-minikube", "neigh", "del", "10.244.1.0", "dev", "flannel.1"),
                          "missing: neighbour 10.244.1.0"),
    "FDB entry deleted": (lambda L: sh("bridge", "-n", f"{L}-minikube", "fdb", "del", remote_vtep_mac(L), "dev",
                                       "flannel.1", "dst", "192.168.122.7", "self"),
                          "missing: fdb"),
    "FDB entry changed": (lambda L: sh("bridge", "-n", f"{L}-minikube", "fdb", "replace", remote_vtep_mac(L), "dev",
                                       "flannel.1", "dst", "192.168.122.99", "self", "permanent"),
                          "dst 192.168.122.99 dev flannel.1 in {L}-minikube"),
    "ip_forward off": (lambda L: in_netns(f"{L}-minikube", "sysctl", "-qw", "net.ipv4.ip_forward=0", check=True),
                       "sysctl net.ipv4.ip_forward in {L}-minikube (is 0, want 1)"),
    "arp_ignore in a pod": (lambda L: in_netns(f"{L}-fedora-2", "sysctl", "-qw", "net.ipv4.conf.eth0.arp_ignore=8",
                                               check=True),
                            "sysctl net.ipv4.conf.eth0.arp_ignore in {L}-fedora-2 (is 8, want 0)"),
    # Put back through the pod's netlink batch (IFLA_INET_CONF), as up sets it; status reads it in the link dump.
    "arp_notify off in a pod": (lambda L: in_netns(f"{L}-fedora-3", "sysctl", "-qw",
                                                   "net.ipv4.conf.eth0.arp_notify=0", check=True),
                                "sysctl net.ipv4.conf.eth0.arp_notify in {L}-fedora-3 (is 0, want 1)"),
    "policy rule to a blackhole": (lambda L: (sh("ip", "-n", f"{L}-fedora-1", "route", "add", "blackhole", "default",
                                                "table", "100"),
                                             sh("ip", "-n", f"{L}-fedora-1", "rule", "add", "pref", "10", "lookup",
                                                "100")),
                                   "extra: rule 10: from all lookup 100 in {L}-fedora-1"),
    "default rule deleted": (lambda L: sh("ip", "-n", f"{L}-fedora-1", "rule", "del", "pref", "32766"),
                             "missing: rule 32766: from all lookup main in {L}-fedora-1"),
    "FORWARD DROP rule": (lambda L: in_netns(f"{L}-minikube", "iptables", "-I", "FORWARD", "-d", "10.244.0.0/16",
                                             "-j", "DROP", check=True),
                          "extra rule: -A FORWARD -d 10.244.0.0/16 -j DROP"),
    "FORWARD policy DROP": (lambda L: in_netns(f"{L}-minikube-m02", "iptables", "-P", "FORWARD", "DROP", check=True),
                            "policy of FORWARD is DROP, want ACCEPT"),
    "raw table DROP": (lambda L: in_netns(f"{L}-minikube", "iptables", "-t", "raw", "-A", "PREROUTING", "-j", "DROP",
                                          check=True),
                       "iptables raw rules in {L}-minikube (extra rule: -A PREROUTING -j DROP)"),
    "a lab chain's jump deleted": (lambda L: in_netns(f"{L}-minikube", "iptables", "-t", "nat", "-D", "POSTROUTING",
                                                      "-m", "comment", "--comment", "flanneld masq",
                                                      "-j", "FLANNEL-POSTRTG", check=True),
                                   'missing rule: -A POSTROUTING -m comment --comment "flanneld masq" '
                                   "-j FLANNEL-POSTRTG"),
    # The pod's veth pair is made from the node's side, its peer named eth0 in the pod: the stray eth0 must go
    # first (the kernel batches per namespace, node before pod; it failed with "already exists").
    "eth0 of another kind in a pod": (lambda L: (sh("ip", "-n", f"{L}-fedora-1", "link", "del", "eth0"),
                                                 sh("ip", "-n", f"{L}-fedora-1", "link", "add", "eth0", "type",
                                                    "bridge")),
                                      "different: link eth0 in {L}-fedora-1 (is a bridge, want a veth)"),
    "lo down in a pod": (lambda L: sh("ip", "-n", f"{L}-fedora-3", "link", "set", "lo", "down"),
                         "link lo in {L}-fedora-3 (down)"),
    # Its carrier (from its ports) comes back a moment after it is set up: up waits for it (lab/carrier.py).
    "bridge down": (lambda L: sh("ip", "-n", f"{L}-minikube-m02", "link", "set", "cni0", "down"),
                    "link cni0 in {L}-minikube-m02 (down)"),
    # A port's STP state set by hand (STP is off: the kernel never leaves forwarding by itself while the port
    # and its bridge are up, but brings listening and learning back to it when the forward delay timer of the
    # port's last enabling runs out: set_port_state waits for that); up sets it back (RTM_SETLINK, AF_BRIDGE).
    "pod's bridge port learning": (lambda L: set_port_state(f"{L}-minikube", pod_veth(L, "fedora-3"), "learning"),
                                   "bridge port of cni0 in state learning, want forwarding: cni0 forwards nothing "
                                   "to or from eth0 in {L}-fedora-3"),
    "node's underlay port disabled": (lambda L: set_port_state(f"{L}-underlay",
                                                               pod_veth(L, "minikube-m02", node="underlay"),
                                                               "disabled"),
                                      "bridge port of br0 in state disabled, want forwarding: br0 forwards nothing "
                                      "to or from eth0 in {L}-minikube-m02"),
}


def traffic_flows(lab: str) -> list[str]:
    """Every pod pings every other pod (both nodes); returns the pairs that failed."""
    pods = {"fedora-1": "10.244.0.2", "fedora-2": "10.244.1.3", "fedora-3": "10.244.0.3", "fedora-4": "10.244.1.4"}
    bad = []
    for src in pods:
        for dst, addr in pods.items():
            if src != dst and in_netns(f"{lab}-{src}", "ping", "-c1", "-W2", addr).returncode != 0:
                bad.append(f"{src}->{dst}")
    return bad


@pytest.mark.parametrize("case", list(CASES))
def test_drift_is_named_and_one_up_repairs_it(lab, case):
    name, path = lab
    breaker, expect = CASES[case]
    breaker(name)
    st = netlab("status", "--lab", name, check=False)
    assert st.returncode == 1, st.stdout + st.stderr
    assert expect.format(L=name) in st.stdout, st.stdout
    up = netlab("up", "-t", path, check=False)
    assert up.returncode == 0, up.stderr
    assert "nothing to change" not in up.stdout
    assert "warning" not in up.stderr, up.stderr  # among them: every link it brought up runs (lab/carrier.py)
    assert_as_planned(name)
    assert traffic_flows(name) == []


def port_state(lab: str, pod: str) -> str:
    """The state of the pod's port on minikube's cni0, as `bridge -j link` shows it."""
    name = pod_veth(lab, pod)
    (port,) = json.loads(in_netns(f"{lab}-minikube", "bridge", "-j", "link", "show", "dev", name, check=True).stdout)
    return port["state"]


def test_a_bridge_port_state_set_by_hand_is_named_once_and_up_sets_it_back(lab):
    """`bridge link set dev PORT state listening`: fedora-1 is cut off (its node's cni0 forwards nothing to or
    from it), status names the port, its bridge, its state and whose eth0 it serves; up sets the state (one op,
    the veth is not made again). The same by hand, then the pod's eth0 down: the kernel disables the port
    itself and makes it forwarding once the link is up, so status names the link, not the port too."""
    name, path = lab
    port = pod_veth(name, "fedora-1")
    set_port_state(f"{name}-minikube", port, "listening")
    assert port_state(name, "fedora-1") == "listening"
    assert in_netns(f"{name}-fedora-1", "ping", "-c1", "-W1", "10.244.0.3").returncode != 0  # cut off
    st = netlab("status", "--lab", name, check=False)
    assert st.returncode == 1, st.stdout
    assert st.stdout.splitlines()[1:-1] == [
        f"  different: link {port} in {name}-minikube (bridge port of cni0 in state listening, want forwarding: "
        f"cni0 forwards nothing to or from eth0 in {name}-fedora-1)"], st.stdout
    up = netlab("up", "-t", path)
    assert f"  set port_state of link {port} in {name}-minikube\n" in up.stdout, up.stdout
    assert "add link" not in up.stdout and "del link" not in up.stdout, up.stdout
    assert port_state(name, "fedora-1") == "forwarding" and pod_veth(name, "fedora-1") == port
    assert_as_planned(name)
    # The ping of the cut-off check left fedora-1's ARP for fedora-3 resolving: a ping queued behind it fails when
    # its last request goes unanswered, although the port forwards now; the next resolution goes through.
    assert wait_for(lambda: not resolving(f"{name}-fedora-1", "eth0"), timeout=30)
    assert traffic_flows(name) == []
    # A hand's state, then the pod's eth0 down: the port is disabled by the kernel, the link is the one fault.
    set_port_state(f"{name}-minikube", port, "learning")
    sh("ip", "-n", f"{name}-fedora-1", "link", "set", "eth0", "down")
    # The bridge disables the port on the carrier event linkwatch sends, which can come after the command returns.
    assert wait_for(lambda: port_state(name, "fedora-1") == "disabled"), port_state(name, "fedora-1")
    st = netlab("status", "--lab", name, check=False)
    assert st.returncode == 1 and f"different: link eth0 in {name}-fedora-1 (down)" in st.stdout, st.stdout
    assert "bridge port" not in st.stdout and port not in st.stdout, st.stdout
    up = netlab("up", "-t", path)
    assert "port_state" not in up.stdout, up.stdout
    assert port_state(name, "fedora-1") == "forwarding"
    assert_as_planned(name)
    assert traffic_flows(name) == []


def test_a_repair_that_fails_halfway_leaves_the_lab_as_it_found_it(lab):
    """Break several things, then fail `up` at each operation of its repair in turn: status is unchanged."""
    name, path = lab
    sh("ip", "-n", f"{name}-fedora-2", "link", "set", "eth0", "down")
    sh("ip", "-n", f"{name}-minikube", "route", "add", "10.55.0.0/16", "dev", "eth0")
    sh("ip", "-n", f"{name}-fedora-1", "rule", "add", "pref", "10", "lookup", "100")
    in_netns(f"{name}-minikube", "iptables", "-I", "FORWARD", "-j", "DROP", check=True)
    in_netns(f"{name}-fedora-4", "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=8", check=True)
    # status's judgement in this process (the rollback is the point here, not the command's start): `status -o
    # json`'s "drift", one line per difference
    before = Lab(name).status()
    assert not before.clean
    drift = before.drift
    # eth0 down in fedora-2 (1) takes its two routes with it (2: the pod CIDR and the default),
    # then the extra route, the rule, the FORWARD rule and the sysctl.
    assert len(drift) == 7
    for k in range(1, 30):
        up = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_AT": str(k)})
        if up.returncode == 0:
            break  # past the last operation: the repair completed
        assert up.returncode == 4 and "injected fault" in up.stderr and "rolled back" in up.stderr, up.stderr
        assert Lab(name).status().drift == drift, f"fault at {k} changed the lab"
    else:
        raise AssertionError("up never got past the injected faults")
    assert k > 6  # every repair operation was a fault point
    assert_as_planned(name)
    assert traffic_flows(name) == []


def test_a_node_namespace_deleted_but_not_yet_freed_is_made_again(lab):
    """`ip netns del` of a node: the kernel frees the namespace asynchronously (later under load, and never
    while something holds it), and until then its pods' eth0 stand, paired with veths in a namespace without a
    name. up made the node's veths again with their peers named eth0 and was refused ("add link ... already
    exists": up --watch's repair failed in CI). Held open here by a file descriptor, as the kernel's delay."""
    import os

    name, path = lab
    node = f"{name}-minikube-m02"
    held = os.open(f"/run/netns/{node}", os.O_RDONLY)
    try:
        sh("ip", "netns", "del", node)
        pod_eth0 = ip_json("link", "show", "dev", "eth0", netns=f"{name}-fedora-2")
        assert pod_eth0 and pod_eth0[0].get("link_netnsid") is not None  # still paired, with the old namespace
        assert not Lab(name).status().clean
        up = netlab("up", "-t", path, check=False)
        assert up.returncode == 0, up.stderr
    finally:
        os.close(held)
    assert_as_planned(name)
    assert traffic_flows(name) == []


def test_a_path_mtu_the_kernel_learned_is_no_route(lab):
    """A ping too big for a node's lowered eth0 makes the kernel learn a path MTU: an exception in its route cache
    (``ip route show cache``), which a route dump also holds. It is no route: status called it an extra one and
    up, unable to delete it, could not repair the lab (exit 4) for the ten minutes it lives."""
    name, path = lab
    node = f"{name}-minikube"
    sh("ip", "-n", node, "link", "set", "eth0", "mtu", "1400")
    try:
        in_netns(f"{name}-fedora-1", "ping", "-M", "do", "-s", "1422", "-c2", "-W1", "10.244.1.3")
    finally:
        sh("ip", "-n", node, "link", "set", "eth0", "mtu", "1500")
    cache = subprocess.run(["ip", "-n", node, "route", "show", "cache"], capture_output=True, text=True).stdout
    assert "10.244.1.3 via 10.244.1.0 dev flannel.1" in cache and "mtu 1350" in cache, cache
    assert_as_planned(name)
    assert "10.244.1.3" not in netlab("inspect", "--lab", name, "minikube", "-s", "routes").stdout
    assert "nothing to change" in netlab("up", "-t", path).stdout
    assert traffic_flows(name) == []


def test_a_bridge_without_ports_set_up_again_is_not_waited_for(labs):
    """A node whose last pod went: its cni0 stays (as the bridge plugin's after its last DEL) with no port, so no
    carrier (``ip link``: NO-CARRIER, state DOWN once set down and up); up sets it up and returns without waiting
    for a carrier that cannot come, or warning. (A node no pod ran on has no cni0.)"""
    name = labs.name("np")
    labs.up_here(two_node_topology(name, pods_per_node=1))
    path = labs.up_here(two_node_topology(name, pods_per_node=1).replace(
        "  - {name: fedora-2, node: minikube-m02, ip: 10.244.1.3}\n", ""))
    sh("ip", "-n", f"{name}-minikube-m02", "link", "set", "cni0", "down")
    up = netlab("up", "-t", path, check=False)
    assert up.returncode == 0 and "set up of link cni0" in up.stdout, up.stdout + up.stderr
    assert "warning" not in up.stderr, up.stderr
    (cni0,) = ip_json("link", "show", "cni0", netns=f"{name}-minikube-m02")
    assert "UP" in cni0["flags"] and "NO-CARRIER" in cni0["flags"], cni0  # up, and still without a carrier
    assert_as_planned(name)


def test_up_works_where_new_namespaces_start_with_fallback_tunnels(labs):
    """On hosts with sit/ipip loaded every new namespace holds sit0, tunl0 ... (a test hook stands in)."""
    name = labs.name("fb")
    env = {"NETLAB_TEST_FALLBACK_LINKS": "1"}
    path, _ = labs.up(two_node_topology(name, pods_per_node=1), env=env)
    links = [link["ifname"] for link in ip_json("link", netns=f"{name}-fedora-1")]
    assert links[:3] == ["lo", "sit0", "tunl0"] and "eth0" in links
    assert_as_planned(name)
    assert in_netns(f"{name}-fedora-1", "ping", "-c1", "-W2", "10.244.1.3").returncode == 0
    # A repair in such a namespace numbers its links after the kernel's too.
    ip("link", "del", "eth0", netns=f"{name}-fedora-1")
    netlab("up", "-t", path, env=env)
    assert_as_planned(name)
    assert in_netns(f"{name}-fedora-1", "ping", "-c1", "-W2", "10.244.1.3").returncode == 0


def test_up_works_on_a_kernel_without_ipv6(labs):
    """A kernel booted with ipv6.disable=1 has no net/ipv6 sysctls at all (a test hook hides them from netlab
    here): IPv6 is off there already, which is all the lab asks, so up, status and a repair go as anywhere."""
    name = labs.name("v6")
    env = {"NETLAB_TEST_NO_IPV6": "1"}
    doctor = netlab("doctor", env=env)
    assert "info  host IPv6: not in this kernel (booted with ipv6.disable=1" in doctor.stdout, doctor.stdout
    path, _ = labs.up(two_node_topology(name, pods_per_node=1), env=env)
    pod = f"{name}-fedora-1"
    # The kernel's view: netlab wrote no disable_ipv6 (this kernel has IPv6, so it stays on under the hook).
    assert in_netns(pod, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6").stdout.strip() == "0"
    st = netlab("status", "--lab", name, env=env, check=False)
    assert st.returncode == 0, st.stdout
    assert in_netns(pod, "ping", "-c1", "-W2", "10.244.1.3").returncode == 0
    ip("link", "del", "eth0", netns=pod)
    netlab("up", "-t", path, env=env)
    assert netlab("status", "--lab", name, env=env).returncode == 0
    assert in_netns(pod, "ping", "-c1", "-W2", "10.244.1.3").returncode == 0
    # Where the kernel has the sysctls, status reads them: the same lab, seen without the hook, has IPv6 on.
    st = netlab("status", "--lab", name, check=False)
    assert st.returncode == 1 and f"net.ipv6.conf.all.disable_ipv6 in {pod}" in st.stdout, st.stdout


def test_a_host_tuned_for_ipvs_leaves_the_lab_as_the_tutorial_has_it(labs):
    """Linux copies the host's IPv4 all/default settings into every new namespace (unless
    net.core.devconf_inherit_init_net=2): a host tuned for IPVS or LVS (arp_ignore=1, arp_announce=2) must not make
    a lab answer ARP its way, nor status report it (a test hook gives each new namespace such a host's values)."""
    name = labs.name("dc")
    labs.up(two_node_topology(name, pods_per_node=1), env={"NETLAB_TEST_HOST_DEVCONF": "1"})
    for ns in (f"{name}-fedora-1", f"{name}-minikube"):
        for key in ("all/arp_ignore", "all/arp_announce", "all/arp_filter", "default/arp_ignore",
                    "default/arp_announce", "default/arp_filter", "all/rp_filter", "eth0/arp_ignore",
                    "eth0/arp_announce"):
            value = in_netns(ns, "cat", f"/proc/sys/net/ipv4/conf/{key}").stdout.strip()
            assert value == "0", f"{key} in {ns}: {value}"
    assert_as_planned(name)
    assert in_netns(f"{name}-fedora-1", "ping", "-c1", "-W2", "10.244.1.3").returncode == 0


def test_other_settings_a_host_gives_new_namespaces_are_set_back_and_checked(labs):
    """The same for the other IPv4 all/default settings (plan/sysctls.py, KERNEL_DEVCONF): a host that is a
    Kubernetes node (route_localnet=1), proxies ARP and sends no redirects gives every new namespace those;
    the lab sets them back to the kernel's values, records which, and status checks them."""
    name = labs.name("dc")
    hook = {"NETLAB_TEST_HOST_DEVCONF": "1"}
    path, _ = labs.up(two_node_topology(name, pods_per_node=1), env=hook)
    with open(state_path(name, "state.json")) as fh:
        assert json.load(fh)["extra"]["restored_devconf"] == ["proxy_arp", "route_localnet", "send_redirects"]
    want = {"route_localnet": "0", "proxy_arp": "0", "send_redirects": "1"}
    for ns, links in ((f"{name}-fedora-1", ("all", "default", "eth0")),
                      (f"{name}-minikube", ("all", "default", "cni0"))):
        for link in links:
            for key, value in want.items():
                if (link, key) == ("all", "route_localnet"):
                    value = "1"  # kube-proxy's, on its node (localhostNodePorts), and its pod's copy: kept
                got = in_netns(ns, "cat", f"/proc/sys/net/ipv4/conf/{link}/{key}").stdout.strip()
                assert got == value, f"{link}/{key} in {ns}: {got}"
    assert netlab("status", "--lab", name, check=False, env=hook).returncode == 0
    assert in_netns(f"{name}-fedora-1", "ping", "-c1", "-W2", "10.244.1.3").returncode == 0
    # Set by hand in a pod: drift that one up repairs.
    assert in_netns(f"{name}-fedora-1", "sysctl", "-qw", "net.ipv4.conf.default.route_localnet=1").returncode == 0
    st = netlab("status", "--lab", name, check=False)
    assert st.returncode == 1 and "net.ipv4.conf.default.route_localnet" in st.stdout, st.stdout
    netlab("up", "-t", path)
    assert_as_planned(name)


def test_a_pod_put_on_another_node_is_made_anew_there_and_a_failure_keeps_the_old_file(labs):
    """Kubernetes never moves a pod: it makes a new one on the other node. up failed instead ("add link veth...
    already exists": the pod's eth0 was still the old pair's end), and its rollback left the pod without its
    address and the state with the new file, so every later up failed the same way."""
    name = labs.name("mv")
    text = two_node_topology(name, pods_per_node=1)
    path, _ = labs.up(text)
    moved = text.replace("{name: fedora-2, node: minikube-m02, ip: 10.244.1.3}",
                         "{name: fedora-2, node: minikube, ip: 10.244.0.3}")
    write_topology(Path(path).parent, moved)
    # A fault at the second step (its new namespace): the old one is gone, the state keeps the old file, and the
    # rollback makes the pod again as that file has it (it was left missing until the next up).
    failed = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_AT": "2"})
    assert failed.returncode == 4 and failed.stderr.strip().endswith("; rolled back"), failed.stderr
    saved = json.loads(open(state_path(name, "state.json")).read())["topology"]["pods"]
    assert {p["name"]: p["node"] for p in saved}["fedora-2"] == "minikube-m02"
    assert_as_planned(name)
    assert ip_json("-4", "addr", "show", "eth0", netns=f"{name}-fedora-2")[0]["addr_info"][0]["local"] == "10.244.1.3"
    done = netlab("up", "-t", path)
    assert "pod fedora-2 moves from node minikube-m02 to minikube: made anew" in done.stdout, done.stdout
    assert_as_planned(name)
    # And from a running pod: made anew, the old pair gone from the old node, traffic flows.
    write_topology(Path(path).parent, text)
    again = netlab("up", "-t", path)
    assert "pod fedora-2 moves from node minikube to minikube-m02: made anew" in again.stdout, again.stdout
    assert_as_planned(name)
    assert [link["ifname"] for link in ip_json("link", netns=f"{name}-minikube") if link["ifname"].startswith("veth")
            ] == [pod_veth(name, "fedora-1")]
    assert ip_json("-4", "addr", "show", "eth0", netns=f"{name}-fedora-2")[0]["addr_info"][0]["local"] == "10.244.1.3"
    assert in_netns(f"{name}-fedora-1", "ping", "-c1", "-W2", "10.244.1.3").returncode == 0
