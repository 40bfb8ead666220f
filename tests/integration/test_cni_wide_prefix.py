"""A conflist whose host-local range gives pods an on-link prefix wider than their node's podCIDR (root, Debian's
bridge and host-local, given subnet 10.244.0.0/16 on every node with each node's /24 as its rangeStart..rangeEnd
and gateway): every address is inside its node's podCIDR, so nothing differs from the plan, but a pod takes the
pods of other nodes for neighbours on eth0 and ARPs for them, and nobody answers. `status` said "all as planned";
now it warns, naming the pod, its prefix, its node's podCIDR and why it fails, and still exits 0 (the kernel is as
the plugins made it). A /8 covers the Service CIDR too: pod a's TCP to a ClusterIP dies ARPing on eth0 while node
n2 reaches the same Service, and status names the ClusterIPs as well. The fake kernel's cases:
tests/unit/test_pod_prefix_wider.py, the words: tests/unit/test_pod_prefix_service_cidr.py."""

from __future__ import annotations

import json
import sys

import pytest

from helpers import in_netns, ip, ip_json, netlab, traced, wrapped_bridge_lab

pytestmark = pytest.mark.root

# Debian's bridge behind a wrapper that widens the node's range (the ipRanges capability's 10.244.N.0/24) to the
# cluster's /16, its addresses and gateway still the node's: the mistake of a conflist written for one subnet.
WRAPPER = r"""#!/bin/sh
jq -c 'if .runtimeConfig.ipRanges then .runtimeConfig.ipRanges |= map(map((.subnet | split("/")[0] | split(".")
       | .[0:3] | join(".")) as $n | {subnet: "10.244.0.0/16", rangeStart: ($n + ".2"), rangeEnd: ($n + ".254"),
       gateway: ($n + ".1")})) else . end' | /usr/lib/cni/bridge
"""


def wide(pod: str, ip: str, node: str, cidr: str, other: str, flannel: str) -> str:
    return (f"pod {pod}'s eth0 {ip}/16 (from its CNI plugins) is on-link wider than node {node}'s podCIDR {cidr}: "
            f"it ARPs on eth0 for the pods of node {other} in 10.244.0.0/16 and nobody answers (its node's bridge "
            f"carries only its own pods), so it reaches no pod of theirs, nor they it, nor those nodes themselves (a "
            f"node's own packets to a pod on another node, to a Service whose endpoint is there too, leave from its "
            f"flannel.1 address, {flannel}, inside the prefix) (the plugins' IPAM must give the node's podCIDR's "
            f"prefix, /24)")


WIDE = [wide("a", "10.244.0.2", "n1", "10.244.0.0/24", "n2 (10.244.1.0/24)", "10.244.1.0 on n2"),
        wide("b", "10.244.1.2", "n2", "10.244.1.0/24", "n1 (10.244.0.0/24)", "10.244.0.0 on n1")]


def test_a_pod_prefix_wider_than_its_nodes_pod_cidr_is_said_by_status(labs, tmp_path):
    lab = labs.name("wp")
    labs.up(wrapped_bridge_lab(tmp_path, "widebr", WRAPPER, lab, "wp")
            + "  - {name: a, node: n1}\n  - {name: b, node: n2}\n")
    got = {pod: ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-{pod}")[0]["addr_info"][0] for pod in "ab"}
    assert [(got[p]["local"], got[p]["prefixlen"]) for p in "ab"] == [("10.244.0.2", 16), ("10.244.1.2", 16)], got

    # the kernel as the plugins made it: a ARPs for b on its own node's bridge, and nobody answers
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W1", "10.244.1.2").returncode != 0
    neigh = ip_json("-4", "neigh", "show", "10.244.1.2", "dev", "eth0", netns=f"{lab}-a")
    assert neigh and "lladdr" not in neigh[0] and neigh[0]["state"][0] in ("INCOMPLETE", "FAILED"), neigh

    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 0 and "all as planned" in st.stdout, st.stdout + st.stderr  # nothing for up to repair
    said = [line for line in st.stderr.splitlines() if "on-link wider" in line]
    assert said == [f"netlab: warning: {line}" for line in WIDE], st.stderr
    js = json.loads(netlab("status", "--lab", lab, "-o", "json").stdout)
    assert js["ok"] and [w for w in js["warnings"] if "on-link wider" in w] == [w.removeprefix("netlab: warning: ")
                                                                             for w in said], js


# The same mistake wider still: host-local's subnet 10.0.0.0/8, which covers the Service CIDR (10.96.0.0/12) too.
WRAPPER_8 = WRAPPER.replace('"10.244.0.0/16"', '"10.0.0.0/8"')
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], 80), timeout=2).close()"


def test_a_pod_prefix_covering_the_service_cidr_reaches_no_clusterip_and_status_says_so(labs, tmp_path):
    lab = labs.name("ws")
    labs.up(wrapped_bridge_lab(tmp_path, "widebr", WRAPPER_8, lab, "ws")
            + "  - {name: a, node: n1}\n  - {name: b, node: n2, labels: {app: web}}\n"
            + "services:\n  - {name: web, clusterIP: 10.96.0.50, selector: {app: web}, "
              "ports: [{port: 80, targetPort: 8080}]}\n")
    addr = ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-a")[0]["addr_info"][0]
    assert (addr["local"], addr["prefixlen"]) == ("10.244.0.2", 8), addr

    # the Service works (node n2 reaches it, its endpoint b on its own bridge, through kube-proxy's DNAT), but not
    # from pod a: it ARPs on eth0 for the ClusterIP
    assert in_netns(f"{lab}-n2", sys.executable, "-I", "-c", CONNECT, "10.96.0.50").returncode == 0
    assert in_netns(f"{lab}-a", sys.executable, "-I", "-c", CONNECT, "10.96.0.50").returncode != 0
    neigh = ip_json("-4", "neigh", "show", "10.96.0.50", "dev", "eth0", netns=f"{lab}-a")
    assert neigh and "lladdr" not in neigh[0] and neigh[0]["state"][0] in ("INCOMPLETE", "FAILED"), neigh

    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 0 and "all as planned" in st.stdout, st.stdout + st.stderr
    said = [line for line in st.stderr.splitlines() if "pod a's eth0" in line]
    assert said == ["netlab: warning: pod a's eth0 10.244.0.2/8 (from its CNI plugins) is on-link wider than node "
                    "n1's podCIDR 10.244.0.0/24: it ARPs on eth0 for the pods of node n2 (10.244.1.0/24) and the "
                    "Services' ClusterIPs (cluster.serviceCIDR 10.96.0.0/12) in 10.0.0.0/8 and nobody answers (its "
                    "node's bridge carries only its own pods; a ClusterIP is no host's address: kube-proxy DNATs it "
                    "on the node, which only a packet sent to the pod's gateway reaches), so it reaches no pod of "
                    "theirs, nor they it, nor those nodes themselves (a node's own packets to a pod on another node, "
                    "to a Service whose endpoint is there too, leave from its flannel.1 address, 10.244.1.0 on n2, "
                    "inside the prefix), and no Service by its ClusterIP (the plugins' IPAM must give the node's "
                    "podCIDR's prefix, /24)"], st.stderr


def test_a_nodes_own_traffic_to_a_service_whose_endpoint_has_the_wide_prefix_dies_and_up_says_why(labs, tmp_path):
    """Node n1's own connection to a ClusterIP whose one endpoint, b, is on n2: the DNAT sends it by the overlay
    (10.244.1.0/24 via flannel.1, longer than cni0's connected 10.244.0.0/16, so cni0's prefix is not what breaks
    it), kube-proxy masquerades it to flannel.1's address 10.244.0.0, and b, whose own /16 covers that address,
    answers it on eth0, ARPing, not through its gateway: nobody answers. up said nothing of it; now it warns."""
    lab = labs.name("wn")
    _, proc = labs.up(wrapped_bridge_lab(tmp_path, "widebr", WRAPPER, lab, "wn")
                      + "  - {name: a, node: n1}\n  - {name: b, node: n2, labels: {app: web}}\n"
                      + "services:\n  - {name: web, clusterIP: 10.96.0.50, selector: {app: web}, "
                        "ports: [{port: 80, targetPort: 8080}]}\n")
    said = [line for line in proc.stderr.splitlines() if "on-link wider" in line and "kube-dns" not in line]
    assert said == [f"netlab: warning: {line}" for line in WIDE], proc.stderr  # (the cluster DNS pod's line too)
    cni0 = ip_json("-4", "addr", "show", "cni0", netns=f"{lab}-n1")[0]["addr_info"][0]
    assert (cni0["local"], cni0["prefixlen"]) == ("10.244.0.1", 16), cni0  # the bridge plugin's, as the pods'
    route = ip_json("-4", "route", "get", "10.244.1.2", netns=f"{lab}-n1")[0]
    assert (route["dev"], route["prefsrc"]) == ("flannel.1", "10.244.0.0"), route  # the overlay, not cni0

    assert in_netns(f"{lab}-n2", sys.executable, "-I", "-c", CONNECT, "10.96.0.50").returncode == 0
    assert in_netns(f"{lab}-n1", sys.executable, "-I", "-c", CONNECT, "10.96.0.50").returncode != 0
    neigh = ip_json("-4", "neigh", "show", "10.244.0.0", "dev", "eth0", netns=f"{lab}-b")
    assert neigh and "lladdr" not in neigh[0] and neigh[0]["state"][0] in ("INCOMPLETE", "FAILED"), neigh
    # trace: b answered; its reply waits on the ARP request nothing answers, said so (it said "sent no reply")
    rc, d = traced(lab, "n1", "svc/web", "--proto", "tcp", "--port", "80")
    assert rc == 1 and d["delivered"] and not d["reply_received"], d["lost"]
    lost = d["reply_lost"]
    assert (lost["netns"], lost["device"]) == (f"{lab}-b", "eth0"), lost
    assert lost["reason"].startswith("pod b answered, but its reply waits on ARP for 10.244.0.0: no ARP answer for "
                                     "10.244.0.0 on eth0 (INCOMPLETE)"), lost["reason"]
    assert "its route `10.244.0.0/16 dev eth0 " in lost["reason"] and "sent no reply" not in lost["reason"], lost


# ptp behind the same wrapper: eth0 10.244.0.2/16 too, but ptp deletes its connected route and routes the /16 via
# the gateway, the node's end of the veth, which routes on (its /32 to each pod of its own, flannel.1 to the others);
# host-local's default route too (ptp has no isDefaultGateway)
PTP = WRAPPER.replace("| /usr/lib/cni/bridge", """| jq -c '.ipam.routes = [{dst: "0.0.0.0/0"}]' | /usr/lib/cni/ptp""")


def test_a_wide_prefix_that_ptp_routes_via_its_gateway_works_and_is_not_said(labs, tmp_path):
    """up and status warned for every pod that it ARPed in vain on eth0 for the pods of n2; ptp's pods reach
    them all (the bridge plugin's, above, do not)."""
    lab = labs.name("wt")
    _, proc = labs.up(wrapped_bridge_lab(tmp_path, "wideptp", PTP, lab, "wt")
                      + "  - {name: a, node: n1}\n  - {name: c, node: n1}\n"
                      + "  - {name: b, node: n2, labels: {app: web}}\n"
                      + "services:\n  - {name: web, clusterIP: 10.96.0.50, selector: {app: web}, "
                        "ports: [{port: 80, targetPort: 8080}]}\n")
    assert "on-link wider" not in proc.stderr, proc.stderr
    addr = ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-a")[0]["addr_info"][0]
    assert (addr["local"], addr["prefixlen"]) == ("10.244.0.2", 16), addr
    routes = {(r["dst"], r.get("gateway"), r.get("scope")) for r in ip_json("-4", "route", "show", netns=f"{lab}-a")}
    assert ("10.244.0.0/16", "10.244.0.1", None) in routes and ("10.244.0.0/16", None, "link") not in routes, routes

    assert in_netns(f"{lab}-a", "ping", "-c1", "-W2", "10.244.1.2").returncode == 0  # n2's pod
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W2", "10.244.0.3").returncode == 0  # its own node's
    for ns in ("a", "n1", "n2"):  # the Service, its endpoint b on n2: node n1's masqueraded 10.244.0.0 too
        assert in_netns(f"{lab}-{ns}", sys.executable, "-I", "-c", CONNECT, "10.96.0.50").returncode == 0, ns

    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 0 and "all as planned" in st.stdout, st.stdout + st.stderr
    assert "on-link wider" not in st.stderr, st.stderr


def test_debians_host_local_refuses_its_own_range_beside_the_capabilitys_and_up_refuses_it_first(labs, tmp_path):
    """The note's old advice (declare the ipRanges capability) with the conflist's own /16 kept: Debian's host-local
    refuses every ADD (its own run here, as the runtime passes the node's range), and up rolled back after the
    first one failed; now up refuses it before any change, as validate does."""
    import os
    import subprocess

    own = {"type": "host-local", "dataDir": str(tmp_path / "leases"), "ranges": [[{"subnet": "10.244.0.0/16"}]]}
    conf = {"cniVersion": "1.0.0", "name": "ov", "type": "bridge", "ipam": own,
            "runtimeConfig": {"ipRanges": [[{"subnet": "10.244.0.0/24"}]]}}
    env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "x1", "CNI_NETNS": "/proc/self/ns/net",
           "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"}
    ran = subprocess.run(["/usr/lib/cni/host-local"], input=json.dumps(conf), env=env, capture_output=True,
                         text=True)
    assert ran.returncode != 0 and "range set 0 overlaps with 1" in ran.stdout, ran

    lab = labs.name("wo")
    (tmp_path / "bin").mkdir()
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "ov", "plugins": [
        {"type": "bridge", "isGateway": True, "capabilities": {"ipRanges": True}, "ipam": own}]}))
    (tmp_path / "t.yaml").write_text(
        f"name: {lab}\nnetwork: {{mode: vxlan, cni: {{conflist: net.conflist, binDir: bin}}}}\nnodes:\n"
        "  - {name: n1, podCIDR: 10.244.0.0/24}\n  - {name: n2, podCIDR: 10.244.1.0/24}\n"
        "pods:\n  - {name: a, node: n1}\n")
    up = netlab("up", "-t", str(tmp_path / "t.yaml"), check=False)
    assert up.returncode != 0 and "declares the ipRanges capability and its ipam.ranges[0][0].subnet 10.244.0.0/16 " \
        "overlaps the podCIDR of node n1 (10.244.0.0/24)" in up.stderr, up.stderr
    assert "rolled back" not in up.stderr and not [n for n in ip("netns", "list").stdout.split() if
                                                    n.startswith(f"{lab}-")], up.stderr
