"""Paths that stray from the plan on real 3-node labs: trace blames what status names, and its printed fix, run
as printed, repairs the lab (real pings flow again).

- vxlan, flannel.1 deleted on n3: trace said "the overlay route is missing" and printed a route through the
  missing device (`Cannot find device "flannel.1"`); to n3 it named no VXLAN device listening and printed no fix;
- vxlan, n1's FDB entry for n3's VTEP MAC naming n2: the right diagnosis, no fix; then blamed only on n2, where the
  frame is dropped, not on n1's FDB row, where the mistake is;
- host-gw, b's route to a's pod CIDR via c: c masquerades what it forwards, so x2 -> x1 was "delivered" (with c's
  address as source: the no-NAT rule broken, exit 0), and x1 -> x2's reply, dropped by c as INVALID, was "seen
  on c eth0, never on c eth0 ... look at the firewall";
- an extra route more specific than the plan's (host-gw: b's 10.244.0.0/25 via c; vxlan: n1's 10.244.2.0/25 dev
  eth0) overrode it unblamed: the next-hop check compared only routes to the same CIDR.

The tests share one lab per mode (and xdist worker): each one's printed fix puts it back as planned.
"""

from __future__ import annotations

import json
import subprocess
from ipaddress import ip_address, ip_network

import pytest

from helpers import as_planned_here, in_netns, ip, left_as_found, module_lab, netlab
from netlab import Lab
from netlab.errors import netlab_command, netlab_words
from netlab.pytest_plugin import watch

pytestmark = pytest.mark.root


def trace(lab: str, *args: str) -> tuple[dict, int]:
    proc = netlab("trace", "--lab", lab, *args, "-o", "json", check=False, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout), proc.returncode


def pod_ip(netns: str) -> str:
    return json.loads(ip("-j", "addr", "show", "eth0", netns=netns).stdout)[0]["addr_info"][0]["local"]


def node_ip(netns: str) -> str:
    return json.loads(ip("-j", "addr", "show", "eth0", netns=netns).stdout)[0]["addr_info"][0]["local"]


def pings(netns: str, dst: str) -> bool:
    return in_netns(netns, "ping", "-c1", "-W2", dst).returncode == 0


def run_fix(fix: str) -> None:
    """The fix as printed: a netlab command through the CLI, anything else pasted into a shell."""
    words = netlab_words(fix)  # under a state folder of the user's own too (errors.netlab_command)
    if words is not None:
        netlab(*words)
        return
    proc = subprocess.run(["sh", "-c", fix], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, (fix, proc.stderr)


def topology(lab: str, mode: str) -> str:
    underlay = "{cidr: 192.168.78.0/24, mtu: 1500}"
    return f"""name: {lab}
network: {{mode: {mode}, underlay: {underlay}}}
nodes: [{{name: n1}}, {{name: n2}}, {{name: n3}}]
pods: [{{name: p1, node: n1}}, {{name: p2, node: n2}}, {{name: p3, node: n3}}]
"""


def four_pods(lab: str) -> str:
    """host-gw, p1 and p4 on n1."""
    return topology(lab, "host-gw").replace("{name: p3, node: n3}]", "{name: p3, node: n3}, {name: p4, node: n1}]")


# One lab of each mode for the module (on each xdist worker that runs one of its tests): every test breaks it by
# hand, runs the printed fix and asserts that status finds it as planned again (Lab.status, in this process);
# left_as_found forgets the neighbour and conntrack entries its traffic made (and puts the lab back after a test
# that failed).
@pytest.fixture(scope="module")
def vxlan_lab(tmp_path_factory):
    with module_lab(tmp_path_factory, "sp", lambda lab: topology(lab, "vxlan")) as lab:
        yield lab


@pytest.fixture(scope="module")
def host_gw_lab(tmp_path_factory):
    with module_lab(tmp_path_factory, "sp", four_pods) as lab:
        yield lab


def _lab(shared: tuple[str, str], request):
    watch(request.node, Lab(shared[0]))  # the plugin dumps it if the test fails
    with left_as_found(*shared, request.session):
        yield shared


@pytest.fixture
def vxlan(vxlan_lab, request):
    """(name, path) of the module's VXLAN lab: p1, p2, p3 on n1, n2, n3."""
    yield from _lab(vxlan_lab, request)


@pytest.fixture
def host_gw(host_gw_lab, request):
    """(name, path) of the module's host-gw lab: p1 and p4 on n1, p2 on n2, p3 on n3."""
    yield from _lab(host_gw_lab, request)


def test_vxlan_fdb_entry_naming_another_node_is_fixed_as_printed(vxlan):
    lab, _ = vxlan
    n1, n3 = f"{lab}-n1", f"{lab}-n3"
    p3 = pod_ip(f"{lab}-p3")
    assert pings(f"{lab}-p1", p3)

    # n1's FDB entry for n3's VTEP MAC names n2: n2 drops the inner frame (not its MAC).
    mac = json.loads(ip("-j", "link", "show", "flannel.1", netns=n3).stdout)[0]["address"]
    subprocess.run(["bridge", "-n", n1, "fdb", "replace", mac, "dev", "flannel.1", "dst", node_ip(f"{lab}-n2"),
                    "self", "permanent"], check=True)
    assert not pings(f"{lab}-p1", p3)
    d, rc = trace(lab, "p1", "p3")
    lost = d["lost"]
    n2_ip, n3_ip = node_ip(f"{lab}-n2"), node_ip(n3)
    # Blamed on n1's FDB row (marked !!), where the mistake is; n2's drop is its consequence.
    fdb = next(h for h in d["hops"] if h["index"] == lost["hop"])
    assert rc == 1 and lost["netns"] == n1 and fdb["kind"] == "fdb" and fdb["device"] == "flannel.1", lost
    assert fdb["problem"] == f"node n1's FDB entry for {mac} on flannel.1 sends the frame to {n2_ip} (n2), the " \
        f"plan's to {n3_ip} (n3)", fdb
    assert lost["fix"] == f"bridge -n {n1} fdb replace {mac} dev flannel.1 dst {n3_ip} self permanent", lost
    drop = d["hops"][-1]
    assert drop["netns"] == f"{lab}-n2" and drop["device"] == "flannel.1", drop
    assert drop["problem"].endswith(f"the consequence of node n1's FDB entry for {mac} on flannel.1, which sends it "
                                    f"here, not to {n3_ip} (n3) as the plan's does"), drop
    assert f"(it went on as it was and was lost in {lab}-n2 flannel.1: " in lost["reason"], lost
    text = netlab("trace", "--lab", lab, "p1", "p3", check=False).stdout
    assert f"\n               !! {fdb['problem']}\n" in text, text
    run_fix(lost["fix"])
    assert pings(f"{lab}-p1", p3) and trace(lab, "p1", "p3")[0]["delivered"]
    assert as_planned_here(lab)


def test_vxlan_deleted_device_is_blamed_and_repaired_by_the_labs_up(vxlan):
    lab, path = vxlan
    n3 = f"{lab}-n3"
    p1, p3 = pod_ip(f"{lab}-p1"), pod_ip(f"{lab}-p3")
    assert pings(f"{lab}-p3", p1)
    # flannel.1 deleted on n3, and its routes, ARP and FDB entries with it.
    ip("link", "del", "flannel.1", netns=n3)
    status = Lab.attach(lab).status()  # the drift `netlab status` lists, one line each, and exits 1 on
    assert not status.ok and any(f"missing: link flannel.1 in {n3}" in line for line in status.drift), status.drift
    d, rc = trace(lab, "p3", "p1")
    lost = d["lost"]
    # out of n3's eth0 by its default route (that row says why), lost at the underlay's gateway, which forwards
    # nothing: both name the deleted device
    assert rc == 1 and lost["netns"] == f"{lab}-underlay", lost
    [row] = [h for h in d["hops"] if h["netns"] == n3 and h.get("problem")]
    assert row["device"] == "eth0", row
    for said in (row["problem"], lost["reason"]):
        assert "flannel.1, the device the overlay route goes out of, is missing there" in said, said
    # The route through it is what trace printed before: the kernel refuses it.
    old = subprocess.run(["ip", "-n", n3, "route", "add", "10.244.0.0/24", "via", "10.244.0.0", "dev", "flannel.1",
                          "onlink"], capture_output=True, text=True)
    assert old.returncode != 0 and "Cannot find device" in old.stderr, old
    assert lost["fix"] == netlab_command(f"up -t {path}") == d["repair"], lost
    d, rc = trace(lab, "p1", "p3")
    lost = d["lost"]
    assert rc == 1 and lost["netns"] == n3 and "(flannel.1, the lab's VXLAN device there, is missing)" in \
        lost["reason"], lost
    assert lost["fix"] == d["repair"], lost
    run_fix(lost["fix"])
    assert pings(f"{lab}-p1", p3) and pings(f"{lab}-p3", p1)
    assert trace(lab, "p3", "p1")[0]["delivered"]
    assert as_planned_here(lab)


def test_host_gw_route_via_a_third_node_is_blamed_and_its_masquerade_fails_the_trace(host_gw):
    lab, _ = host_gw
    n2 = f"{lab}-n2"
    p1, p2 = pod_ip(f"{lab}-p1"), pod_ip(f"{lab}-p2")
    n1_ip, n3_ip = node_ip(f"{lab}-n1"), node_ip(f"{lab}-n3")
    d, rc = trace(lab, "p2", "p1")
    assert rc == 0 and d["nat"] is None and d["delivered"], d
    ip("route", "replace", "10.244.0.0/24", "via", n3_ip, "dev", "eth0", netns=n2)

    d, rc = trace(lab, "p2", "p1")
    assert d["delivered"] and rc == 1, d
    # The capture's proof: p1 got the packet with n3's address as its source.
    last = d["hops"][-1]
    assert last["kind"] == "deliver" and last["seen"] is True, last
    assert last["observe"]["flow"].startswith(f"{n3_ip} → "), last
    nat = d["nat"]
    assert nat["source"] == n3_ip and "pods reach pods without NAT is broken" in nat["text"], nat
    assert f"the route to 10.244.0.0/24 (n1's pod CIDR) in {n2} goes via {n3_ip} (n3)" in nat["cause"], nat
    assert nat["fix"] == f"ip -n {n2} route replace 10.244.0.0/24 via {n1_ip} dev eth0", nat
    text = netlab("trace", "--lab", lab, "p2", "p1", check=False)
    assert text.returncode == 1 and "\nNAT: p1 got the packet from " in text.stdout, text.stdout

    # The other way, the reply goes through n3, which never saw the request: dropped there as INVALID.
    d, rc = trace(lab, "p1", "p2")
    lost = d["reply_lost"]
    assert lost is not None and lost["netns"] == n2 and "the plan's goes via" in lost["reason"], lost
    assert f"not seen leaving by {lab}-n3 eth0" in lost["reason"] and "look at the firewall" not in lost["reason"]
    assert lost["fix"] == nat["fix"], lost
    assert not pings(f"{lab}-p1", p2)

    run_fix(nat["fix"])
    assert pings(f"{lab}-p1", p2) and pings(f"{lab}-p2", p1)
    d, rc = trace(lab, "p2", "p1")
    assert rc == 0 and d["nat"] is None, d
    assert as_planned_here(lab)


def test_host_gw_extra_route_more_specific_than_the_plans_is_blamed_and_deleted_as_printed(host_gw):
    lab, _ = host_gw
    n2 = f"{lab}-n2"
    p1, p2 = pod_ip(f"{lab}-p1"), pod_ip(f"{lab}-p2")
    n1_ip, n3_ip = node_ip(f"{lab}-n1"), node_ip(f"{lab}-n3")
    assert ip_address(p1) in ip_network("10.244.0.0/25")
    ip("route", "add", "10.244.0.0/25", "via", n3_ip, "dev", "eth0", netns=n2)
    status = Lab.attach(lab).status()  # the drift `netlab status` lists, one line each
    assert any(f"extra: route 10.244.0.0/25 via {n3_ip} dev eth0 in {n2}" in line for line in status.drift), \
        status.drift

    d, rc = trace(lab, "p2", "p1")
    assert d["delivered"] and rc == 1, d
    nat = d["nat"]
    assert nat["source"] == n3_ip, nat
    assert nat["cause"].startswith(f"the route to {p1} in {n2} is 10.244.0.0/25, a route the plan does not have "
                                   "(status calls it extra), more specific than the plan's route to 10.244.0.0/24 "
                                   f"(n1's pod CIDR), which it overrides: it goes via {n3_ip} (n3) dev eth0, but "
                                   f"the plan's goes via {n1_ip} (n1) dev eth0"), nat
    assert nat["fix"] == f"ip -n {n2} route del 10.244.0.0/25 via {n3_ip} dev eth0", nat
    route = next(h for h in d["hops"] if h["index"] == nat["cause_hop"])
    assert route["netns"] == n2 and route["kind"] == "route" and route["problem"] == nat["cause"], route

    run_fix(nat["fix"])
    assert pings(f"{lab}-p1", p2) and pings(f"{lab}-p2", p1)
    d, rc = trace(lab, "p2", "p1")
    assert rc == 0 and d["nat"] is None, d
    assert as_planned_here(lab)


def test_vxlan_extra_route_out_of_eth0_more_specific_than_the_overlays_is_blamed_and_deleted_as_printed(vxlan):
    lab, _ = vxlan
    n1 = f"{lab}-n1"
    p3 = pod_ip(f"{lab}-p3")
    assert ip_address(p3) in ip_network("10.244.2.0/25") and pings(f"{lab}-p1", p3)
    ip("route", "add", "10.244.2.0/25", "dev", "eth0", netns=n1)
    assert not pings(f"{lab}-p1", p3)

    d, rc = trace(lab, "p1", "p3")
    lost = d["lost"]
    assert rc == 1 and lost["netns"] == n1 and lost["device"] == "eth0", lost
    assert lost["reason"] == (f"the route to {p3} in {n1} is 10.244.2.0/25, a route the plan does not have (status "
                              "calls it extra), more specific than the plan's route to 10.244.2.0/24 (n3's pod CIDR), "
                              "which it overrides: it goes directly dev eth0, but the plan's goes via 10.244.2.0 (n3 "
                              "flannel.1) dev flannel.1"), lost
    assert lost["fix"] == f"ip -n {n1} route del 10.244.2.0/25 dev eth0", lost

    run_fix(lost["fix"])
    assert pings(f"{lab}-p1", p3) and trace(lab, "p1", "p3")[0]["delivered"]
    assert as_planned_here(lab)


def test_a_nodes_packet_delivered_by_a_route_via_a_third_node_fails_as_astray_and_passes_once_fixed(host_gw):
    """n2's route to n1's pod CIDR via n3: n2 -> p1 was delivered (n3 masquerades a node's packet too, but that is
    no pod's), its `!!` row shown, and trace exited 0."""
    lab, _ = host_gw
    n2 = f"{lab}-n2"
    n1_ip, n3_ip = node_ip(f"{lab}-n1"), node_ip(f"{lab}-n3")
    d, rc = trace(lab, "n2", "p1")
    assert rc == 0 and d["ok"] and d.get("astray") is None, d
    ip("route", "replace", "10.244.0.0/24", "via", n3_ip, "dev", "eth0", netns=n2)

    d, rc = trace(lab, "n2", "p1")
    assert d["delivered"] and d["reply_received"] and d["nat"] is None, d
    assert rc == 1 and d["ok"] is False, d
    astray = d["astray"]
    route = d["hops"][0]
    assert route["kind"] == "route" and route["netns"] == n2 and route["facts"]["gateway"] == n3_ip, route
    fix = f"ip -n {n2} route replace 10.244.0.0/24 via {n1_ip} dev eth0"
    assert astray == {"hop": 1, "label": "1", "direction": "forward", "netns": n2, "device": "eth0",
                      "text": f"p1 got the packet, but by a path the lab did not plan: astray at hop 1 ({n2} eth0)",
                      "reason": route["problem"], "fix": fix}, astray
    assert route["problem"].startswith(f"the route to 10.244.0.0/24 (n1's pod CIDR) in {n2} goes via {n3_ip} (n3)")
    text = netlab("trace", "--lab", lab, "n2", "p1", check=False)
    assert text.returncode == 1, text.stdout
    assert "\nresult: delivered to p1 (TTL 62 on arrival), but NOT by the planned path (astray at hop 1); reply " \
           "received" in text.stdout, text.stdout
    assert f"\nastray: {astray['text']}: {route['problem']}\n  fix: {fix}   (or: " in text.stdout, text.stdout

    run_fix(astray["fix"])
    d, rc = trace(lab, "n2", "p1")
    assert rc == 0 and d["ok"] and d["astray"] is None and not any(h["problem"] for h in d["hops"]), d
    assert as_planned_here(lab)


def test_a_pods_routes_that_are_not_the_plans_are_blamed_and_fixed_as_printed(host_gw):
    """Only nodes' routes were held against the plan: a pod's extra route through its node to a pod of the same node
    was delivered unblamed (exit 0), and a blackhole in a pod read "no route ... Invalid argument", with no fix."""
    lab, _ = host_gw
    p1 = f"{lab}-p1"
    p2, p4 = pod_ip(f"{lab}-p2"), pod_ip(f"{lab}-p4")
    gw = json.loads(ip("-j", "route", "show", "default", netns=p1).stdout)[0]["gateway"]
    for dst in ("p2", "p4"):
        d, rc = trace(lab, "p1", dst)
        assert rc == 0 and d["ok"] and not any(h["problem"] for h in d["hops"] + d["reply_hops"]), d

    # Through n1's cni0 and back out, to p4 on the same link: delivered, no NAT, but not the plan's path.
    ip("route", "add", f"{p4}/32", "via", gw, "dev", "eth0", netns=p1)
    assert pings(p1, p4)
    d, rc = trace(lab, "p1", "p4")
    route = d["hops"][0]
    assert d["delivered"] and d["nat"] is None and rc == 1, d
    assert route["netns"] == p1 and route["kind"] == "route" and route["problem"] == (
        f"the route to {p4} in {p1} is {p4}/32, a route the plan does not have (status calls it extra), more "
        f"specific than the plan's route to 10.244.0.0/24 (n1's pod CIDR), which it overrides: it goes via {gw} (n1 "
        f"cni0) dev eth0, but the plan's goes directly dev eth0: the packet takes a detour through {gw} (n1 cni0)"), \
        route
    assert d["astray"]["hop"] == 1 and d["astray"]["fix"] == f"ip -n {p1} route del {p4}/32 via {gw} dev eth0", d
    run_fix(d["astray"]["fix"])
    d, rc = trace(lab, "p1", "p4")
    assert rc == 0 and d["astray"] is None, d

    # A blackhole to n2's pod CIDR: lost in p1, with the route that drops it and its deletion.
    ip("route", "add", "blackhole", "10.244.1.0/24", netns=p1)
    assert not pings(p1, p2)
    d, rc = trace(lab, "p1", "p2")
    lost = d["lost"]
    assert rc == 1 and lost["netns"] == p1 and lost["hop"] == 1, lost
    assert lost["reason"] == (f"the route to {p2} in {p1} is `blackhole 10.244.1.0/24`, a route the plan does not "
                              "have (status calls it extra), which it overrides (the plan's route to 10.244.0.0/16 "
                              f"goes via {gw} (n1 cni0) dev eth0): the kernel drops the packet without a word (route "
                              "get says: Invalid argument)"), lost
    assert lost["fix"] == f"ip -n {p1} route del blackhole 10.244.1.0/24", lost
    run_fix(lost["fix"])
    assert pings(p1, p2)

    # The plan's route to the cluster replaced, via p4, a pod, which forwards as a real one does (ip_forward=1, its
    # node's, as its namespace starts with a copy of the node's): delivered by a detour through p4, blamed on p1's.
    ip("route", "replace", "10.244.0.0/16", "via", p4, "dev", "eth0", netns=p1)
    assert in_netns(f"{lab}-p4", "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    assert pings(p1, p2)
    d, rc = trace(lab, "p1", "p2")
    route = d["hops"][0]
    assert rc == 1 and d["delivered"] and d["astray"]["hop"] == 1, d
    assert route["netns"] == p1 and route["problem"].startswith(
        f"the route to 10.244.0.0/16 in {p1} goes via {p4} (p4) dev eth0, but the plan's goes via {gw} (n1 cni0) dev "
        f"eth0: the packet takes a detour through {p4} (p4)"), route
    assert d["astray"]["fix"] == f"ip -n {p1} route replace 10.244.0.0/16 via {gw} dev eth0", d
    # p4 made not to forward (by hand): lost in p4, blamed on p1's route (it was blamed on p4's ip_forward, with a
    # sysctl for a pod as the fix), and the plan's put back.
    in_netns(f"{lab}-p4", "sysctl", "-qw", "net.ipv4.ip_forward=0", check=True)
    assert not pings(p1, p2)
    d, rc = trace(lab, "p1", "p2")
    lost = d["lost"]
    assert rc == 1 and lost["netns"] == p1 and lost["hop"] == 1, lost
    assert lost["reason"].startswith(f"the route to 10.244.0.0/16 in {p1} goes via {p4} (p4) dev eth0, but the "
                                     f"plan's goes via {gw} (n1 cni0) dev eth0"), lost
    assert f"(it went on as it was and was lost in {lab}-p4 eth0: " in lost["reason"], lost
    assert lost["fix"] == f"ip -n {p1} route replace 10.244.0.0/16 via {gw} dev eth0", lost
    run_fix(lost["fix"])
    in_netns(f"{lab}-p4", "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
    assert pings(p1, p2)
    for dst in ("p2", "p4"):
        d, rc = trace(lab, "p1", dst)
        assert rc == 0 and d["ok"], d
    assert as_planned_here(lab)
