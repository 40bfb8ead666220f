"""trace holds a conflist lab's routes against the plan as status does: the routes a user's CNI plugins made (on
the devices their results name, and every route in a pod's namespace) are theirs, not extra.

The ptp plugin routes each pod of its node by a /32 on the pod's veth (`10.244.0.5 dev vethXXXX scope host`),
more specific than the node's default route: trace marked each one `!!` ("a route the plan does not have (status
calls it extra) ... overrides the plan's default route") on flows that were delivered, while status said the lab
was as planned.
"""

from __future__ import annotations

import pytest

from netlab.kernel.rtnl_parse import LinkMsg
from netlab.plan.build import build_plan
from netlab.trace import strayroutes
from netlab.trace.labmap import LabMap
from test_trace_ptp_bypass import PTP, QNBR, lab_of


def _map(tmp_path, plugin, running=True):
    lab = lab_of(tmp_path, plugin, running)
    return lab, LabMap.from_lab(lab, build_plan(lab))


def test_ptps_host_routes_to_its_pods_are_the_plugins_not_extra(tmp_path):
    lab, m = _map(tmp_path, PTP)
    n1, web = lab.node("n1").netns, str(lab.pod("a-web").ip)
    veth = lab.attached["a-web"].host_veth
    assert strayroutes.extra_route(m, n1, web, None, veth, f"{web} dev {veth} scope host") is None
    # in the pod: its routes are the plugin's too (status leaves the pod's namespace to their CHECK)
    far = str(lab.pod("b-far").ip)
    assert strayroutes.extra_route(m, lab.pod("a-web").netns, far, "10.244.0.1", "eth0",
                                   "10.244.1.0/24 via 10.244.0.1 dev eth0") is None
    # a route added by hand on a device no plugin made is still extra, and blamed
    why, fix = strayroutes.extra_route(m, n1, web, None, "eth0", "10.244.0.0/25 dev eth0") or ("", "")
    assert "a route the plan does not have (status calls it extra)" in why, why
    assert fix == f"ip -n {n1} route del 10.244.0.0/25 dev eth0"


def test_a_bridge_plugins_routes_on_its_bridge_are_its_own(tmp_path):
    lab, m = _map(tmp_path, QNBR)
    n1, web = lab.node("n1").netns, str(lab.pod("a-web").ip)
    assert m.plugin_devs[n1] is not None and "qnbr0" in m.plugin_devs[n1]
    assert strayroutes.extra_route(m, n1, web, None, "qnbr0", "10.244.0.0/25 dev qnbr0") is None


def test_netlabs_own_pods_routes_are_held_against_the_plan(tmp_path):
    lab, m = _map(tmp_path, None, running=False)
    n1, web = lab.node("n1").netns, str(lab.pod("a-web").ip)
    assert m.plugin_devs == {}
    assert strayroutes.extra_route(m, n1, web, None, "eth0", "10.244.0.0/25 dev eth0") is not None


@pytest.mark.parametrize("running", [False, True])
def test_the_bridge_a_conflist_names_is_its_plugins_on_a_node_without_pods(tmp_path, running):
    # a node whose pods are all gone (or whose only ADD failed) keeps the bridge plugin's qnbr0 with its address
    # and route; no result names it there, the conflist does (up records it as the node's from the first ADD)
    lab, m = _map(tmp_path, QNBR, running)
    if running:
        lab = lab.with_attachments({p: a for p, a in lab.attached.items() if lab.pod(p).node != "n2"})
        m = LabMap.from_lab(lab, build_plan(lab))
    n2, far = lab.node("n2").netns, str(lab.pod("b-far").ip)
    assert "qnbr0" in (m.plugin_devs.get(n2) or ())
    assert strayroutes.extra_route(m, n2, far, None, "qnbr0", "10.244.1.0/25 dev qnbr0") is None
    # a route by hand on a device the conflist does not name stays extra
    assert strayroutes.extra_route(m, n2, far, None, "eth0", "10.244.1.0/25 dev eth0") is not None


def test_a_ptp_conflist_names_no_bridge_to_keep(tmp_path):
    lab, m = _map(tmp_path, PTP, running=False)
    assert m.plugin_devs[lab.node("n2").netns] == frozenset()


def _link(index, name, kind=None, peer=None, nsid=None, master=None):
    return LinkMsg(index=index, name=name, kind=kind, up=True, mtu=1500, mac="", master=master, peer=peer,
                   peer_netnsid=nsid, alias=None, group=0, txqlen=1000)


def test_a_route_on_a_veth_no_result_names_is_the_plugins_and_one_on_a_hand_added_veth_is_not(tmp_path):
    """QA q24 #1: a 0.2.0 result names no interface; the route ptp puts on the pod's veth (its peer is the pod's
    eth0) is still the plugins' (status does not call it extra), while one on netlab's own eth0 stays extra. QA q29
    #1: a veth added by hand on the node (its peer there too) with a route hijacking a pod's address is extra, as
    status says, not the plugins'."""
    lab, m = _map(tmp_path, PTP, running=False)
    n2, pod = lab.node("n2").netns, lab.pods[-1].netns
    links = {n2: [_link(1, "lo"), _link(2, "eth0", "veth", 9, 0), _link(5, "veth0badc0de", "veth", 2, 3),
                  _link(6, "q29hand", "veth", 7), _link(7, "q29peer", "veth", 6)],
             pod: [_link(1, "lo"), _link(2, "eth0", "veth", 5, 0)]}
    m.plugins_live(lambda ns: links.get(ns, []), lambda ns, pods: {pod: 3} if ns == n2 and pod in pods else {})
    assert m.plugin_devs[n2] == {"veth0badc0de"}
    assert strayroutes.extra_route(m, n2, "10.244.1.9", None, "veth0badc0de", "10.244.1.9 dev veth0badc0de") is None
    assert strayroutes.extra_route(m, n2, "10.244.1.9", None, "eth0", "10.244.1.0/25 dev eth0") is not None
    why, fix = strayroutes.extra_route(m, n2, "10.244.1.9", None, "q29hand", "10.244.1.9 dev q29hand") or ("", "")
    assert "status calls it extra" in why and fix == f"ip -n {n2} route del 10.244.1.9/32 dev q29hand", (why, fix)


def test_trace_leaves_a_pod_by_the_veth_the_kernel_pairs_its_eth0_with_though_no_result_names_it(tmp_path):
    """QA q38 #1: a result that names only the pod's eth0 (or none: 0.2.0, 1.0.0 without ``interfaces``) gave
    trace no peer for it: "eth0 in POD leads nowhere the lab knows", while probe passed. The host end is the veth
    the kernel pairs with the pod's eth0 (by ifindex and the id the node gives the pod's namespace), as status
    takes it. QA q38 #2/#3: the bridge it is a port of (named nowhere) is the plugins', a hand's veth added as a
    port of it is not (its route is a stray one), nor a peer of anything."""
    lab, m = _map(tmp_path, PTP, running=False)
    n2, pod = lab.node("n2").netns, lab.pods[-1].netns
    assert (pod, "eth0") not in m.peers
    links = {n2: [_link(1, "lo"), _link(2, "eth0", "veth", 9, 0), _link(3, "q38hb0", "bridge"),
                  _link(5, "hb0badc0de", "veth", 2, 3, master=3), _link(6, "hx0", "veth", 2, 4, master=3)],
             pod: [_link(1, "lo"), _link(2, "eth0", "veth", 5, 0)]}
    m.plugins_live(lambda ns: links.get(ns, []), lambda ns, pods: {pod: 3} if ns == n2 and pod in pods else {})
    assert m.peers[(pod, "eth0")] == (n2, "hb0badc0de") and m.peers[(n2, "hb0badc0de")] == (pod, "eth0")
    assert (n2, "hx0") not in m.peers
    assert m.plugin_devs[n2] == {"q38hb0", "hb0badc0de"}
    assert strayroutes.extra_route(m, n2, "10.244.1.9", None, "q38hb0", "10.244.1.0/24 dev q38hb0") is None
    why, fix = strayroutes.extra_route(m, n2, "10.244.1.9", None, "hx0", "10.244.1.9 dev hx0") or ("", "")
    assert "status calls it extra" in why and fix == f"ip -n {n2} route del 10.244.1.9/32 dev hx0", (why, fix)
