"""Where trace says a packet was lost, on real labs (root): the hop it names is the row that explains the loss.

Every lab is small and named hb...; the tests on two nodes share one (per xdist worker), each putting it back as
planned by the fix trace printed and asserting that status finds it so, the other has its own (the `labs` fixture takes it
down). Faults are made by hand, the way a learner would (`ip neigh del`, an iptables rule), and checked with real
packets.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest

from helpers import as_planned_here, in_netns, ip, left_as_found, module_lab, netlab, two_node_topology, wait_for
from netlab import Lab
from netlab.pytest_plugin import watch

pytestmark = pytest.mark.root

ROW = re.compile(r"^\s*(r?\d+)  ")


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """minikube (fedora-1) and minikube-m02 (fedora-2), VXLAN, for the module's tests (on each xdist worker)."""
    with module_lab(tmp_path_factory, "hb", lambda lab: two_node_topology(lab, pods_per_node=1)) as lab:
        yield lab


@pytest.fixture
def pair(two_nodes, request):
    """(name, path) of the module's lab, as planned and without the test's neighbour and conntrack entries after
    the test."""
    watch(request.node, Lab(two_nodes[0]))  # the plugin dumps it if the test fails
    with left_as_found(*two_nodes, request.session):
        yield two_nodes


def trace(lab: str, *args: str, ok: bool = False) -> tuple[dict, str]:
    """A lost packet's trace (``ok``: a delivered one's), as JSON and as text (exit 1 both; 0 when ok)."""
    js = netlab("trace", "--lab", lab, *args, "-o", "json", check=False, timeout=60)
    text = netlab("trace", "--lab", lab, *args, check=False, timeout=60)
    rc = 0 if ok else 1
    assert js.returncode == rc and text.returncode == rc, js.stdout + js.stderr + text.stderr
    return json.loads(js.stdout), text.stdout


def verdict(lab: str, *args: str, ok: bool = False) -> dict:
    """:func:`trace`'s JSON alone (exit 1; 0 when ok), where the test reads nothing of the text (each test's
    :func:`trace` calls check that the text's exit is the JSON's)."""
    js = netlab("trace", "--lab", lab, *args, "-o", "json", check=False, timeout=60)
    assert js.returncode == (0 if ok else 1), js.stdout + js.stderr
    return json.loads(js.stdout)


def problems(text: str) -> dict[str, str]:
    """The text's rows marked ``!!``: row label -> the problem under it."""
    out, row = {}, None
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            row = m.group(1)
        elif row and line.strip().startswith("!! "):
            out[row] = line.strip()[3:]
    return out


def test_the_lost_hop_is_the_row_marked_with_the_reason(pair):
    """A deleted ARP entry on flannel.1: the packet is not seen leaving by flannel.1 from the route row on, and
    the ARP row after it dropped it. trace said "LOST at hop 5" (the route, no "!!") with hop 6's reason."""
    lab, _ = pair
    n1 = f"{lab}-minikube"
    ip("neigh", "del", "10.244.1.0", "dev", "flannel.1", netns=n1)
    d, text = trace(lab, "fedora-1", "fedora-2")
    hop = d["lost"]["hop"]
    row = d["hops"][hop - 1]
    assert (row["index"], row["netns"], row["device"], row["kind"]) == (hop, n1, "flannel.1", "neigh"), d["lost"]
    assert row["problem"] == d["lost"]["reason"] and row["seen"] is False
    route = d["hops"][hop - 2]  # the route to flannel.1: not seen either, but nothing wrong with it
    assert (route["kind"], route["device"], route["seen"], route["problem"]) == ("route", "flannel.1", False, None)
    assert problems(text) == {str(hop): row["problem"]}
    assert f"result: LOST at hop {hop} ({n1} flannel.1): no ARP entry for 10.244.1.0 on flannel.1" in text
    subprocess.run(shlex.split(d["lost"]["fix"]), check=True, timeout=10)  # the fix, as a user types it
    assert verdict(lab, "fedora-1", "fedora-2", ok=True)["delivered"] and as_planned_here(lab)


def test_a_problem_further_on_than_where_the_packet_vanished_is_not_its_reason(pair):
    """minikube's FORWARD drops the packet (an iptables rule), so minikube never sends the VXLAN packet, nor asks
    for the other node's underlay address, whose ARP entry is gone. The walk stops at that missing entry, further
    on; trace quoted it as the reason for a loss at the first row not seen. It is lost where it vanished, and the
    firewall there is what to look at: the rule the lab does not plan, which counted it (trace/extrarules)."""
    lab, _ = pair
    n1 = f"{lab}-minikube"
    # The ARP entries the walk of a packet to fedora-2 and of its reply needs: minikube-m02's for fedora-2 and
    # fedora-2's for its gateway (a ping), minikube's for minikube-m02 (written: a ping would leave minikube-m02
    # probing minikube's address later, and minikube making the entry again from that request).
    assert in_netns(f"{lab}-minikube-m02", "ping", "-c1", "-W2", "10.244.1.3").returncode == 0
    mac = json.loads(ip("-j", "link", "show", "eth0", netns=f"{lab}-minikube-m02").stdout)[0]["address"]
    ip("neigh", "replace", "192.168.122.7", "lladdr", mac, "dev", "eth0", "nud", "stale", netns=n1)
    rule = ["FORWARD", "-d", "10.244.1.3", "-j", "DROP"]
    drop = in_netns(n1, "iptables", "-I", *rule)
    assert drop.returncode == 0, drop.stderr
    # The walk finds nothing wrong and follows the packet to fedora-2; the capture says it never left minikube.
    d, text = trace(lab, "fedora-1", "fedora-2")
    dropped_by = "`-A FORWARD -d 10.244.1.3/32 -j DROP`"  # a rule the lab does not plan: trace names it (extrarules)
    assert (d["lost"]["netns"], d["lost"]["device"]) == (n1, "flannel.1"), d["lost"]
    assert dropped_by in d["lost"]["reason"], d["lost"]
    assert d["lost"]["fix"] == f"ip netns exec {n1} iptables -D {dropped_by[4:-1]}", d["lost"]
    assert list(problems(text)) == [str(d["lost"]["hop"])], text  # the rule, on the row where the packet ran it
    # fedora-2 never got the request, so it sent no reply: trace showed one, a reply walk of rows NOT SEEN
    # (one with a "!!": no ARP entry for fedora-2's gateway, which nothing had asked for).
    assert d["hops"][-1]["kind"] == "deliver" and d["hops"][-1]["seen"] is False
    assert d["reply_hops"] == [] and d["reply_lost"] is None and "\nreply " not in text
    ip("neigh", "del", "192.168.122.7", "dev", "eth0", netns=n1)
    d, text = trace(lab, "fedora-1", "fedora-2")
    lost = d["lost"]
    first_unseen = next(h for h in d["hops"] if h["seen"] is False)
    assert (lost["hop"], lost["netns"], lost["device"]) == (first_unseen["index"], n1, "flannel.1"), lost
    assert d["hops"][lost["hop"] - 2]["seen"] is True  # cni0: the packet came up to minikube's IP layer
    assert dropped_by in lost["reason"], lost  # the rule that counted it, not what the walk met further on
    # the missing ARP entry further on is still shown, on its row, after the rule's
    (at, _), (label, problem) = problems(text).items()
    assert int(at) == lost["hop"] and int(label) > lost["hop"] and "no ARP entry for 192.168.122.7 on eth0" in problem
    assert problem not in lost["reason"]
    assert f"result: LOST at hop {lost['hop']} ({n1} flannel.1): a rule netlab did not write" in text, text
    counters = in_netns(n1, "iptables", "-L", "FORWARD", "-v", "-n", "-x").stdout
    assert re.search(r"^\s*[1-9]\d*\s+\d+\s+DROP\s", counters, re.M), counters  # the rule did drop it
    in_netns(n1, "iptables", "-D", *rule, check=True)
    assert verdict(lab, "fedora-1", "fedora-2", ok=True)["delivered"] and as_planned_here(lab)


def test_no_row_follows_a_node_that_rejected_the_packet(labs):
    """kube-proxy rejects a packet for a Service without endpoints at the client's node (ICMP port unreachable).
    trace blamed that node, then went on writing rows along the ClusterIP's route: the node's default route, and
    an ARP row for the underlay's gateway with a "!!" of its own, for a packet that no longer existed."""
    lab = labs.name("hb")
    labs.up_here(f"""name: {lab}
nodes: [{{name: n1}}]
pods: [{{name: client, node: n1}}]
services:
  - {{name: ghost, selector: {{app: none}}, ports: [{{port: 80, targetPort: 8080}}]}}
""")
    d, text = trace(lab, "client", "svc/ghost", "--proto", "tcp", "--port", "80")
    last = d["hops"][-1]
    assert (last["netns"], last["kind"], last["facts"].get("dropped_here")) == (f"{lab}-n1", "dnat", True), last
    assert d["lost"]["hop"] == last["index"] and d["lost"]["reason"] == last["problem"]
    assert problems(text) == {str(last["index"]): last["problem"]}
    assert any("port unreachable" in e["text"] for e in d["icmp_errors"]), d["icmp_errors"]  # the REJECT's answer


def _tx_errors(netns: str, dev: str) -> int:
    return json.loads(ip("-j", "-s", "link", "show", dev, netns=netns).stdout)[0]["stats64"]["tx"]["errors"]


def test_a_node_whose_cni0_is_down_is_named_where_the_underlay_drops_it(pair):
    """minikube-m02's cni0 set down: the kernel takes its route to the node's own pod CIDR with it, and routes
    fedora-2's packets down the default route to the underlay's gateway, which drops them (it does not forward).
    trace blamed the underlay ("net.ipv4.ip_forward = 0") alone; the fault, and its fix, is minikube-m02's cni0,
    named there as why the packet came, as for a missing pod-CIDR route (it was LOST at the cni0 row, '-', though
    the capture saw the packet leave eth0 and reach the underlay). Then
    minikube's eth0 set down: the VXLAN packet has no outer route and flannel.1 drops it (its TX errors count it);
    that row named device "-"."""
    lab, path = pair
    n1, n2, pod1 = f"{lab}-minikube", f"{lab}-minikube-m02", f"{lab}-fedora-1"
    assert in_netns(pod1, "ping", "-c1", "-W2", "10.244.1.3").returncode == 0
    ip("link", "set", "cni0", "down", netns=n2)
    # The kernel's view: no route to its own pods but the default one; real traffic dies.
    [route] = json.loads(ip("-j", "route", "get", "10.244.1.3", netns=n2).stdout)
    assert (route["dev"], route.get("gateway")) == ("eth0", "192.168.122.1"), route
    assert in_netns(pod1, "ping", "-c1", "-W1", "10.244.1.3").returncode != 0
    for src in ("fedora-1", "minikube-m02"):  # a packet the node forwards, and the node's own
        d, text = trace(lab, src, "fedora-2")
        lost = d["lost"]
        assert (lost["netns"], lost["device"]) == (f"{lab}-underlay", "br0"), lost
        assert f"it came here because cni0 in {n2} is down, and a link set down loses its routes: the route " \
               "to 10.244.1.0/24" in lost["reason"], lost
        assert lost["fix"] == f"ip -n {n2} link set cni0 up"
        assert f"result: LOST at hop {lost['hop']} ({lab}-underlay br0): " in text
        # The link row names it, and the rows after it are the path the kernel really took: seen leaving by eth0.
        [link] = [h for h in d["hops"] if h["kind"] == "link"]
        assert (link["netns"], link["device"]) == (n2, "cni0") and link["problem"].startswith(f"cni0 in {n2}")
        out = d["hops"][link["index"]]
        assert (out["netns"], out["device"], out["kind"], out["seen"]) == (n2, "eth0", "route", True), out
    subprocess.run(lost["fix"].split(), check=True, timeout=10)
    assert wait_for(lambda: in_netns(pod1, "ping", "-c1", "-W1", "10.244.1.3").returncode == 0)
    assert verdict(lab, "fedora-1", "fedora-2", ok=True)["delivered"]

    # The source node's cni0 down: the pod's frame dies at the bridge, the node's own packet takes the default route.
    ip("link", "set", "cni0", "down", netns=n1)
    assert in_netns(pod1, "ping", "-c1", "-W1", "10.244.1.3").returncode != 0
    # Where the pod's packet dies hangs on its ARP entry for its gateway as the kernel finds it, which that ping
    # left probing (failed 8 s later): a usable one (REACHABLE, STALE, DELAY, PROBE) sends it at once, to die at
    # the disabled bridge port; none makes the pod hold it and ask, and the question dies there. Pinned, each way.
    gw_mac = json.loads(ip("-j", "link", "show", "cni0", netns=n1).stdout)[0]["address"]
    ip("neigh", "replace", "10.244.0.1", "lladdr", gw_mac, "dev", "eth0", "nud", "stale", netns=pod1)
    lost = verdict(lab, "fedora-1", "fedora-2")["lost"]
    assert (lost["netns"], lost["device"], lost["fix"]) == (n1, "cni0", f"ip -n {n1} link set cni0 up"), lost
    # The entry's probes fail while trace waits for a reply (DELAY 5 s, then 3 probes 1 s apart): the walk reads
    # FAILED after the packet, which had left by the STALE entry; trace blamed the pod's ARP, as if it had not.
    ip("neigh", "replace", "10.244.0.1", "lladdr", gw_mac, "dev", "eth0", "nud", "stale", netns=pod1)
    js = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "--timeout", "12", "-o", "json", check=False, timeout=60)
    [entry] = json.loads(ip("-j", "neigh", "show", "10.244.0.1", "dev", "eth0", netns=pod1).stdout)
    assert entry["state"] == ["FAILED"], entry  # the kernel gave up on it while trace waited
    lost = json.loads(js.stdout)["lost"]
    assert (lost["netns"], lost["device"], lost["fix"]) == (n1, "cni0", f"ip -n {n1} link set cni0 up"), lost
    ip("neigh", "del", "10.244.0.1", "dev", "eth0", netns=pod1)
    lost = verdict(lab, "fedora-1", "fedora-2")["lost"]
    assert (lost["netns"], lost["device"], lost["fix"]) == (pod1, "eth0", f"ip -n {n1} link set cni0 up"), lost
    assert lost["reason"].startswith("no ARP answer for 10.244.0.1 on eth0 (") and "of cni0 in" in lost["reason"], lost
    lost = verdict(lab, "minikube", "fedora-1")["lost"]  # out of eth0 by the default route, as from m02
    assert (lost["netns"], lost["fix"]) == (f"{lab}-underlay", f"ip -n {n1} link set cni0 up"), lost
    assert f"it came here because cni0 in {n1} is down" in lost["reason"], lost
    Lab.up(path)  # repairs it, as `netlab up -t PATH` does
    assert wait_for(lambda: in_netns(pod1, "ping", "-c1", "-W1", "10.244.1.3").returncode == 0)

    # minikube's eth0 down: flannel.1 counts the VXLAN packets it cannot route as TX errors.
    ip("link", "set", "eth0", "down", netns=n1)
    before = _tx_errors(n1, "flannel.1")
    assert in_netns(pod1, "ping", "-c1", "-W1", "10.244.1.3").returncode != 0
    assert _tx_errors(n1, "flannel.1") > before
    d, text = trace(lab, "fedora-1", "fedora-2")
    lost = d["lost"]
    row = d["hops"][lost["hop"] - 1]
    assert (row["netns"], row["device"], row["kind"]) == (n1, "flannel.1", "drop"), lost
    # The link up alone leaves the node without its default route: the fix puts it back too.
    assert "eth0 is down there" in lost["reason"] and lost["fix"] == (f"ip -n {n1} link set eth0 up && ip -n {n1} "
                                                                       "route add default via 192.168.122.1 dev eth0")
    assert f"result: LOST at hop {lost['hop']} ({n1} flannel.1): no route to 192.168.122.7" in text
    subprocess.run(["sh", "-c", lost["fix"]], check=True, timeout=10)  # the fix, as printed
    assert wait_for(lambda: in_netns(pod1, "ping", "-c1", "-W1", "10.244.1.3").returncode == 0)
    assert as_planned_here(lab)
