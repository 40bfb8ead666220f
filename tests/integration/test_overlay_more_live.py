"""Overlay and route drift on real namespaces, helper fl60's items (the unit tests: tests/unit/test_overlay_more.py).

flannel.1's UDP checksums, source-port range and address limit (`noudpcsum`, `srcport`, `maxaddress`: the kernel
refuses to change any in place, so a learner makes the device again with them) are compared with what flanneld
leaves, the kernel's defaults, and one up makes the device again; its ageing changed by hand is set back in place
(the kernel changes IFLA_VXLAN_AGEING of a device that is up: `ip link set flannel.1 type vxlan ageing 30`); a route
with the plan's destination but a tos is another route, extra, and the plan's missing where it was replaced. Each
is checked in the kernel's own words (`ip -d -j link`, `ip -j route`) and by a ping between the nodes' pods.
"""

from __future__ import annotations


import pytest

from breaking import assert_as_planned
from helpers import in_netns, ip_json, lab_up, netlab, sh, two_node_topology, unique_lab, write_topology

pytestmark = pytest.mark.root

POD_1, POD_2 = "10.244.0.2", "10.244.1.3"
ROUTE = "10.244.1.0/24"  # minikube's route to minikube-m02's pods: via 10.244.1.0 dev flannel.1 onlink


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("fl")
    path = write_topology(tmp_path_factory.mktemp("overlay"), two_node_topology(name, pods_per_node=1))
    with lab_up(path, name, in_process=True):
        yield name, path


def flannel(lab: str) -> dict:
    (link,) = ip_json("-d", "link", "show", "flannel.1", netns=f"{lab}-minikube")
    return link


def pings(lab: str) -> bool:
    return all(in_netns(f"{lab}-{src}", "ping", "-c1", "-W2", dst).returncode == 0
               for src, dst in (("fedora-1", POD_2), ("fedora-2", POD_1)))


def drift_lines(lab: str) -> list[str]:
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1, st.stdout + st.stderr
    return [line.strip() for line in st.stdout.splitlines() if line.startswith("  ")]


def up_lines(path: str) -> str:
    up = netlab("up", "-t", path, check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    return up.stdout


def remake_flannel(lab: str, *words: str) -> None:
    """flannel.1 deleted and made again by hand with ``words`` as well (`ip link add ... noudpcsum`), its MAC, MTU
    and address as before: what hung on it (routes, ARP and FDB entries) is gone with it."""
    ns, link = f"{lab}-minikube", flannel(lab)
    data = link["linkinfo"]["info_data"]
    (addr,) = [a for a in ip_json("addr", "show", "flannel.1", netns=ns)[0]["addr_info"] if a["family"] == "inet"]
    sh("ip", "-n", ns, "link", "del", "flannel.1")
    sh("ip", "-n", ns, "link", "add", "flannel.1", "address", link["address"], "mtu", str(link["mtu"]), "txqueuelen", "0", "type",
       "vxlan", "id", str(data["id"]), "local", data["local"], "dev", data["link"], "dstport", str(data["port"]),
       "nolearning", *words)
    sh("ip", "-n", ns, "addr", "add", f"{addr['local']}/{addr['prefixlen']}", "dev", "flannel.1")
    sh("ip", "-n", ns, "link", "set", "flannel.1", "up")


def assert_flannels_defaults(lab: str) -> None:
    data = flannel(lab)["linkinfo"]["info_data"]
    assert (data["udp_csum"], data["port_range"], data.get("limit"), data["ageing"]) == \
        (True, {"low": 0, "high": 0}, None, 300), data


# `ip link add flannel.1 type vxlan ... WORDS`: what status says of link flannel.1
REMADE = {
    "noudpcsum": (("noudpcsum",), "udpcsum off (want on)"),
    "srcport": (("srcport", "1000", "2000"), "srcport 1000 2000 (want 0 0)"),
    "maxaddress": (("maxaddress", "5"), "maxaddress 5 (want 0)"),
}


@pytest.mark.parametrize("case", list(REMADE))
def test_flannels_udpcsum_srcport_and_maxaddress_made_by_hand_are_named_and_the_device_made_again(lab, case):
    name, path = lab
    words, said = REMADE[case]
    remake_flannel(name, *words)
    (line,) = [d for d in drift_lines(name) if d.startswith("different: link flannel.1")]
    assert f"({said})" in line and f"in {name}-minikube" in line, line
    up = up_lines(path)  # made again: the kernel refuses to change any of them in place
    assert f"del link flannel.1 in {name}-minikube\n  add link flannel.1 in {name}-minikube" in up, up
    assert_as_planned(name, case)
    assert_flannels_defaults(name)
    assert pings(name)


def test_flannels_ageing_and_promisc_on_are_set_back_in_place_by_one_message(lab):
    """`ip link set flannel.1 promisc on type vxlan ageing 30`: up sets both back on the device as it is (the kernel
    changes the ageing in place), says which flags and setting it changed, and nothing on the device goes away.
    Before, the device was deleted and made again with everything on it, and the line said "set flags"."""
    name, path = lab
    ns = f"{name}-minikube"
    sh("ip", "-n", ns, "link", "set", "flannel.1", "promisc", "on", "type", "vxlan", "ageing", "30")
    (line,) = drift_lines(name)
    assert line == f"different: link flannel.1 in {ns} (promisc on (want off), ageing 30 (want 300))", line
    index = flannel(name)["ifindex"]
    up = up_lines(path)
    assert [ln.strip() for ln in up.splitlines() if ln.startswith("  ")] == \
        [f"set promisc off, ageing 300 of link flannel.1 in {ns}"], up
    link = flannel(name)
    assert link["ifindex"] == index and "PROMISC" not in link["flags"] and link["promiscuity"] == 0, link
    assert_flannels_defaults(name)
    (route,) = ip_json("route", "show", ROUTE, netns=ns)  # never taken away: the device was not made again
    assert (route["gateway"], route["dev"], route["flags"]) == ("10.244.1.0", "flannel.1", ["onlink"]), route
    assert_as_planned(name, "ageing")
    assert pings(name)


def planned_route_only(lab: str) -> None:
    """minikube's route to minikube-m02's pods as Flannel makes it, and none beside it, in `ip -j route`'s words."""
    routes = ip_json("route", "show", "table", "all", ROUTE, netns=f"{lab}-minikube")
    assert routes == [{"dst": ROUTE, "gateway": "10.244.1.0", "dev": "flannel.1", "flags": ["onlink"]}], routes


ROUTE_WITH_TOS = "ip route add 10.244.1.0/24 tos 0x10 via 10.244.1.0 dev flannel.1 onlink"


@pytest.mark.parametrize("replaced", [False, True], ids=["beside", "replaced"])
def test_a_route_with_the_plans_destination_and_a_tos_is_extra_and_taken_away(lab, replaced):
    """A route of the plan's destination with a tos is another route in the kernel's fib (looked up for packets of
    that TOS only): status says it extra, and the plan's missing where it was deleted (the pods' packets, TOS 0,
    then have no route to the other node's), one up deletes it and puts the plan's back. Before, the two were one
    in the comparison: the one with the tos, dumped first, stood for the plan's ("all as planned")."""
    name, path = lab
    ns = f"{name}-minikube"
    if replaced:
        sh("ip", "-n", ns, "route", "del", ROUTE)
    sh("ip", "-n", ns, *ROUTE_WITH_TOS.split()[1:])
    if replaced:
        assert not pings(name)
    lines = drift_lines(name)
    extra = f"extra: route {ROUTE} tos 0x10 via 10.244.1.0 dev flannel.1 onlink in {ns}"
    missing = f"missing: route {ROUTE} via 10.244.1.0 dev flannel.1 onlink in {ns}"
    assert sorted(lines) == ([extra, missing] if replaced else [extra]), lines
    up = up_lines(path)
    assert f"del route {ROUTE} tos 0x10 via 10.244.1.0 dev flannel.1 onlink in {ns}" in up, up
    planned_route_only(name)
    assert_as_planned(name, "route with a tos")
    assert pings(name)


def test_a_bridge_up_deletes_is_made_again_by_a_rollback_with_its_flags(lab):
    """`ip link add br9 type bridge; ip link set br9 promisc on arp off` in node minikube: extra, deleted by up.
    A run that fails after that makes it again (the journal's add of it as it was read) with its flags: before,
    without them (`ip -d -j link` said neither PROMISC nor NOARP)."""
    name, path = lab
    ns = f"{name}-minikube"
    sh("ip", "-n", ns, "link", "add", "br9", "type", "bridge")
    sh("ip", "-n", ns, "link", "set", "br9", "promisc", "on", "arp", "off", "up")
    deleted_at = None
    for at in range(1, 40):
        up = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_AT": str(at)})
        if up.returncode == 0:
            break
        assert "rolled back" in up.stderr, up.stderr
        if f"(del link br9 in {ns})" in up.stderr:
            deleted_at = at  # the next faults come after its deletion
        (link,) = ip_json("-d", "link", "show", "br9", netns=ns)
        assert {"PROMISC", "NOARP", "UP"} <= set(link["flags"]) and link["linkinfo"]["info_kind"] == "bridge", \
            (at, link)
    else:
        raise AssertionError("up never got past the injected faults")
    assert deleted_at is not None and at > deleted_at + 1, (deleted_at, at)
    assert ip_json("link", "show", netns=ns) and not [x for x in ip_json("link", "show", netns=ns)
                                                      if x["ifname"] == "br9"]
    assert_as_planned(name, "br9")
