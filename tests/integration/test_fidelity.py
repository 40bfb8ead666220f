"""netlab's node and pod against the real components, field by field and line by line (root).

The proof: Debian's CNI reference plugins (``bridge`` + ``host-local`` +
``loopback``) build one pod inside a scratch node namespace, with exactly the
delegate config Flannel's CNI plugin hands ``bridge`` (netlab.plan.flannel)
and a host-local data directory inside the test's tmp dir; netlab builds the
same pod (the default lab's minikube/fedora-1). ``ip -j -d link``, ``ip -j -d
addr`` and ``ip -j -d route`` of both pods, the host veth, ``cni0`` and
``bridge -j -d link`` are compared field by field, and so are the pods' IPv4
settings of ``eth0``, ``all`` and ``default`` (``sysctl -a``: the plugin sets
``arp_notify`` on the pod's interface, and the kernel then announces the pod
with a gratuitous ARP whenever its eth0 comes up, which both pods are seen to
do): only what the real plugin leaves to chance (MACs and the bridge ids made
of them, the veth name's suffix, ifindexes and netns ids, the namespaces'
ownership tags) and time (timers) may differ, and every other difference is
one of KNOWN, named with its reason.

The tutorial's outputs: on netlab's default lab, the commands of the Red Hat
tutorial and of the network model, normalized (MACs, ifindexes, the lab's
name masked), against golden/fidelity/*.txt, and against what the real
components print (the CNI pod above; the tutorial's own lines; Flannel's and
kube-proxy's rule text from their sources). docs/fidelity.md is the table of
these results, written by this test (NETLAB_REGEN_GOLDEN=1) and otherwise
checked against it. The rows (each command, netlab's output, the real one, where it comes from and why they
differ) and the table's text are fidelity_rows.py's.

Cluster DNS: in a lab of topologies/services.yaml, questions from the client pod
to the DNS Service's ClusterIP (tests/dns_query.py, shown as dig shows them),
against what CoreDNS answers with kubeadm's and minikube's Corefile, read from
its plugin/kubernetes (tests/integration/test_cluster_dns.py says more).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import uuid
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from fidelity_dns import dns_lab, dns_rows
from fidelity_env import env_lab, env_rows
from fidelity_rows import IPV6, render_doc, rows, same
from helpers import netlab, unique_lab, write_topology
from netlab.kernel.netns import create_netns, entered, make_tag, remove_netns
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import flannel
from netlab.plan.sysctls import COMMON_SYSCTLS, KERNEL_DEVCONF, restore_sysctls

pytestmark = pytest.mark.root

ROOT = Path(__file__).parent.parent.parent
DEFAULT = (ROOT / "topologies" / "default-2node.yaml").read_text()
GOLDEN = Path(__file__).parent / "golden" / "fidelity"
DOC = ROOT / "docs" / "fidelity.md"
CNI_BIN = "/usr/lib/cni"
REGEN = bool(os.environ.get("NETLAB_REGEN_GOLDEN"))

# Fields the real plugin leaves to chance or to the clock, by their last key.
RANDOM = {"address": "MAC", "perm_address": "MAC", "bridge_id": "made of the bridge's MAC",
          "root_id": "made of the bridge's MAC", "designated_root": "made of the bridge's MAC",
          "designated_bridge": "made of the bridge's MAC", "ifindex": "ifindex", "link_index": "ifindex",
          "link_netnsid": "netns id", "gc_timer": "a timer", "forward_delay_timer": "a timer",
          "hello_timer": "a timer", "tcn_timer": "a timer", "topology_change_timer": "a timer",
          "hold_timer": "a timer", "message_age_timer": "a timer",
          "tag": "the namespace's ownership tag (kernel/netns.py: netlab's on its pod, the test's on the CNI pod)"}
# The CNI pod's node namespace starts with the kernel's own IPv4 all/default settings, as on a node whose host
# is left at them (a new namespace copies the host's, which netlab sets back in its own: README, "What is built,
# and where"), so that the pods compare on any host; then the node's own: ip_forward=1 (the network model's node;
# kubeadm's preflight requires it; writing it, the kernel sets all and default forwarding 1 and
# all.accept_redirects 0) and kube-proxy's route_localnet=1 (iptables mode, the default lab's). The CNI pod's
# namespace gets the same: a real runtime makes it on its node, and a new namespace copies init_net's (the node's)
# all/default settings (devconf_inherit_init_net=0).
REAL_NODE_IPV4 = (*((k, v) for k, v in COMMON_SYSCTLS if k.startswith("net.ipv4.")),
                  *restore_sysctls(tuple(KERNEL_DEVCONF)), ("net.ipv4.ip_forward", "1"),
                  ("net.ipv4.conf.all.route_localnet", "1"))
# Every other difference, named: (object, field path pattern) -> why.
KNOWN = {("pod addr", r"^\[\d\]\.addr_info\[1\]\.\w+$"): IPV6}


def _json(*argv: str) -> list:
    out = subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=30).stdout
    return json.loads(out or "[]")


def _flat(obj, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_flat(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = obj
    return out


def kernel_view(node: str, pod: str, veth: str) -> dict[str, list]:
    """What the kernel says about a pod, its host veth and its bridge, as ip/bridge/sysctl print it."""
    return {"pod link": _json("ip", "-j", "-d", "-n", pod, "link"),
            "pod addr": _json("ip", "-j", "-d", "-n", pod, "addr"),
            "pod route": _json("ip", "-j", "-d", "-n", pod, "route"),
            "pod sysctls": [pod_ipv4_conf(pod)],
            "host veth": _json("ip", "-j", "-d", "-n", node, "link", "show", veth),
            "cni0": _json("ip", "-j", "-d", "-n", node, "link", "show", "cni0"),
            "bridge link": _json("bridge", "-j", "-d", "-n", node, "link")}


def pod_ipv4_conf(pod: str) -> dict[str, str]:
    """The pod's IPv4 settings of eth0, all and default, as ``sysctl -a`` prints them (key -> value)."""
    out = subprocess.run(["ip", "netns", "exec", pod, "sysctl", "-a"], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    conf = dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)
    mine = {k: v for k, v in conf.items() if re.match(r"net\.ipv4\.conf\.(eth0|all|default)\.", k)}
    assert len(mine) > 60 and "net.ipv4.conf.eth0.arp_notify" in mine, sorted(conf)[:5]
    return mine


def differences(real: dict[str, list], mine: dict[str, list]) -> list[tuple[str, str, object, object]]:
    """(object, field, real value, netlab's value) for every field that differs."""
    out = []
    for what in real:
        a, b = _flat(real[what]), _flat(mine[what])
        for key in sorted(set(a) | set(b)):
            if a.get(key, "<absent>") != b.get(key, "<absent>"):
                out.append((what, key, a.get(key, "<absent>"), b.get(key, "<absent>")))
    return out


def explain(what: str, key: str, real: object) -> str | None:
    """Why a field may differ (None: it may not)."""
    last = re.sub(r"\[\d+\]$", "", key.rsplit(".", 1)[-1])
    if last in RANDOM:
        return RANDOM[last]
    if last == "ifname" and str(real).startswith("veth") and len(str(real)) == 12:
        return "the veth name's suffix"
    for (obj, pattern), why in KNOWN.items():
        if obj == what and re.match(pattern, key):
            return why
    return None


# --- the world: netlab's default lab and a CNI-made pod ---------------------------------


class World:
    def __init__(self, lab, path: str, cni_node: str, cni_pod: str, result: dict):
        self.resolved, self.lab, self.path = lab, lab.name, path
        self.cni_node, self.cni_pod, self.result = cni_node, cni_pod, result
        self.cni_veth = next(i["name"] for i in result["interfaces"] if i["name"].startswith("veth"))

    def ns(self, name: str) -> str:
        return f"{self.lab}-{name}"


def run_plugin(plugin: str, conf: dict, node_ns: str | None, pod_ns: str, ifname: str, cid: str) -> dict:
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": cid, "CNI_NETNS": f"/run/netns/{pod_ns}",
           "CNI_IFNAME": ifname, "CNI_PATH": CNI_BIN, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    argv = [f"{CNI_BIN}/{plugin}"]
    if node_ns:  # bridge makes cni0 and the host veth in the namespace it runs in: the node's
        argv = ["ip", "netns", "exec", node_ns] + argv
    proc = subprocess.run(argv, input=json.dumps(conf), capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, f"{plugin}: {proc.stdout} {proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    tmp = tmp_path_factory.mktemp("fidelity")
    lab = unique_lab("fi")
    path = write_topology(tmp, DEFAULT.replace("name: demo", f"name: {lab}"))
    resolved = resolve(load_topology(path))
    tag = uuid.uuid4().hex[:6]
    cni_node, cni_pod, cni_lan = f"cni{tag}-node", f"cni{tag}-pod", f"cni{tag}-lan"
    made: list[str] = []
    try:
        netlab("up", "-t", path)
        for ns in (cni_node, cni_pod, cni_lan):
            create_netns(ns, make_tag("fidelity-test", ns), REAL_NODE_IPV4)  # a real node's, and its pod's copy
            made.append(ns)
        # What a real node holds before its first pod's ADD, in its order (ifindex 2 and 3): its NIC, and
        # flanneld's VTEP. `bridge link` names a port's peer by the index it has in the pod (veth@eth0).
        for argv in (["link", "add", "eth0", "type", "veth", "peer", "name", "lan0", "netns", cni_lan],
                     ["link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", "192.168.122.215", "dev",
                      "eth0", "dstport", "8472", "nolearning"], ["link", "set", "eth0", "up"],
                     ["link", "set", "flannel.1", "up"]):
            subprocess.run(["ip", "-n", cni_node, *argv], check=True, capture_output=True, timeout=30)
        subprocess.run(["ip", "-n", cni_lan, "link", "set", "lan0", "up"], check=True, capture_output=True, timeout=30)
        conf = flannel.delegate_config(resolved, resolved.node("minikube"))
        conf["ipam"]["dataDir"] = str(tmp / "host-local")  # private, not /var/lib/cni/networks
        result = run_plugin("bridge", conf, cni_node, cni_pod, "eth0", "fidelity")
        run_plugin("loopback", {"cniVersion": flannel.CNI_VERSION, "name": "lo", "type": "loopback"}, None,
                   cni_pod, "lo", "fidelity")
        yield World(resolved, path, cni_node, cni_pod, result)
    finally:
        for ns in made:
            remove_netns(ns)  # the pod's veth and the node's cni0 go with them
        netlab("down", "--lab", lab, check=False)


def test_cni_plugin_gives_the_pod_netlab_plans(world):
    """host-local hands out .2 first; the plugin's result names the routes of the delegate config."""
    assert world.result["ips"][0]["address"] == "10.244.0.2/24"
    assert [r.get("dst") for r in world.result["routes"]] == ["10.244.0.0/16", "0.0.0.0/0"]


def test_netlab_pod_differs_from_the_cni_pod_only_in_random_fields(world):
    veth = world.resolved.pod("fedora-1").host_veth
    # fedora-3 shares minikube's cni0 in netlab: compare the bridge ports of fedora-1 only.
    real = kernel_view(world.cni_node, world.cni_pod, world.cni_veth)
    mine = kernel_view(world.ns("minikube"), world.ns("fedora-1"), veth)
    mine["bridge link"] = [p for p in mine["bridge link"] if p["ifname"] == veth]
    unexplained = [(what, key, a, b) for what, key, a, b in differences(real, mine) if not explain(what, key, a)]
    assert not unexplained, "\n".join(f"{what}: {key}: real {a!r}, netlab {b!r}" for what, key, a, b in unexplained)
    # Each named difference is still there (else KNOWN is stale and says too much).
    named = {(what, pattern) for what, key, a, _ in differences(real, mine)
             for (obj, pattern), why in KNOWN.items() if obj == what and re.match(pattern, key)}
    assert named == set(KNOWN)


@pytest.fixture(scope="module")
def dns_world(tmp_path_factory):
    yield from dns_lab(tmp_path_factory)


@pytest.fixture(scope="module")
def env_world(tmp_path_factory):
    yield from env_lab(tmp_path_factory)


def test_tutorial_outputs_golden_and_fidelity_table(world, dns_world, env_world):
    rs = rows(world) + dns_rows(dns_world) + env_rows(env_world)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for r in rs:
        path = GOLDEN / (re.sub(r"[^a-z0-9]+", "-", r["object"].lower()).strip("-") + ".txt")
        if REGEN:
            path.write_text(r["netlab"])
        assert r["netlab"] == path.read_text(), f"{r['object']}: netlab's output changed ({path})"
        assert same(r) or r["known"], f"{r['object']} differs from the real output:\n{r['real']}\n{r['netlab']}"
    doc = render_doc(rs)
    if REGEN:
        DOC.write_text(doc)
    assert DOC.read_text() == doc, "docs/fidelity.md is stale: run this test with NETLAB_REGEN_GOLDEN=1"


# --- the kernel's own view of arp_notify: a gratuitous ARP ---------------------------------

# Every frame (as tcpdump asks): a bridge port's frames go to the bridge before any socket of one protocol
# sees them, only the taps of all protocols come first.
ETH_P_ALL = 0x0003


def announced(node: str, veth: str, pod: str, ip: IPv4Address) -> bool:
    """Take the pod's eth0 down and up again: does the node's end of its veth then receive the pod's
    gratuitous ARP (an ARP request from the pod's address for its own address)? Read with a packet socket in
    the node; the pod's routes, which went with eth0, are the caller's to put back."""
    with entered(node):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.bind((veth, ETH_P_ALL))  # Python puts the protocol in network order here (not in socket())
        sock.settimeout(0.2)
        for state in ("down", "up"):
            subprocess.run(["ip", "-n", pod, "link", "set", "eth0", state], check=True, timeout=10)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                frame = sock.recv(128)
            except TimeoutError:
                continue
            # Ethernet header (14 bytes, the type last), then ARP: op at 6, sender IP at 14, target IP at 24
            arp, request = frame[12:14] == b"\x08\x06", frame[20:22] == b"\x00\x01"
            if arp and request and frame[28:32] == frame[38:42] == ip.packed:
                return True
        return False
    finally:
        sock.close()


def test_both_pods_announce_themselves_when_their_eth0_comes_up(world):
    """arp_notify=1 on eth0, as the CNI bridge plugin sets it: the kernel sends a gratuitous ARP when eth0 comes
    up (net/ipv4/devinet.c, NETDEV_UP), so cni0 and the other pods learn the pod's MAC at once. The CNI pod does;
    netlab's does too (the kernel's 0 sends nothing). Then netlab's pod is repaired by up, the CNI pod's routes
    (the plugin's) put back by hand."""
    ip = IPv4Address("10.244.0.2")
    try:
        assert announced(world.cni_node, world.cni_veth, world.cni_pod, ip), "the CNI plugin's pod sent no GARP"
    finally:
        for dst in ("10.244.0.0/16", "default"):
            subprocess.run(["ip", "-n", world.cni_pod, "route", "replace", dst, "via", "10.244.0.1", "dev", "eth0",
                            "proto", "boot"], check=True, timeout=10)
    fedora = world.resolved.pod("fedora-1")
    try:
        assert announced(world.ns("minikube"), fedora.host_veth, world.ns("fedora-1"), ip), "netlab's pod sent none"
    finally:
        netlab("up", "-t", world.path)
    assert netlab("status", "--lab", world.lab, check=False).returncode == 0
