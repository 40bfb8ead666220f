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
checked against it.

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
from flannel_e2e import FLANNEL_E2E_FORWARD, FLANNEL_E2E_POSTROUTING
from helpers import netlab, unique_lab, write_topology
from kube_proxy_golden import GOLDEN as KUBE_PROXY_GOLDEN, port_nat
from netlab.kernel.netns import create_netns, entered, make_tag, remove_netns
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import flannel
from netlab.plan.sysctls import COMMON_SYSCTLS, CONNTRACK_SYSCTLS, KERNEL_DEVCONF, restore_sysctls

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
IPV6 = ("netlab turns IPv6 off in every lab namespace (README, 'What is built, and where'): the real "
        "pod has ::1 on lo and an fe80:: link-local address on eth0")
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
    cni_node, cni_pod = f"cni{tag}-node", f"cni{tag}-pod"
    made: list[str] = []
    try:
        netlab("up", "-t", path)
        for ns in (cni_node, cni_pod):
            create_netns(ns, make_tag("fidelity-test", ns), REAL_NODE_IPV4)  # a real node's, and its pod's copy
            made.append(ns)
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


# --- the tutorial's outputs ---------------------------------------------------------------

MAC = re.compile(r"\b(?!ff:ff:ff:ff:ff:ff\b)(?!00:00:00:00:00:00\b)(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b")
TUTORIAL_POD_ROUTES = ("default via 10.244.0.1 dev eth0\n"
                       "10.244.0.0/24 dev eth0 proto kernel scope link src 10.244.0.2\n"
                       "10.244.0.0/16 via 10.244.0.1 dev eth0\n")
ARP_NOTIFY = ("net.ipv4.conf.eth0.arp_notify", "net.ipv4.conf.all.arp_notify", "net.ipv4.conf.default.arp_notify")
POD_FORWARDING = ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.default.forwarding",
                  "net.ipv4.conf.eth0.forwarding", "net.ipv4.conf.all.accept_redirects",
                  "net.ipv4.conf.all.route_localnet")
KUBE_PROXY_CONNTRACK = ("net.netfilter.nf_conntrack_tcp_timeout_established = 86400\n"
                        "net.netfilter.nf_conntrack_tcp_timeout_close_wait = 3600\n")
NODE_DEFAULT = ("the tutorial's minikube VM has its LAN on a second NIC, eth1, leased by DHCP (proto dhcp, "
                "src, metric); a netlab node has one NIC, eth0, with a static address, and Flannel's route "
                "protocol (boot, not printed)")
# kubernetes pkg/kubelet/kubelet_pods.go, managedHostsFileContent: a pod without hostname, subdomain or hostAliases.
KUBELET_HOSTS = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
                 "10.244.0.2\tfedora-1\n")
NETLAB_LINE = ("netlab adds one first line, a comment that says whose file it is (netlab rewrites and removes only "
               "files that begin with it, services/netns_files.py); the kubelet's text follows unchanged")


def normalize(text: str, names: dict[str, str]) -> str:
    """Mask what is random or named after the lab (MACs, ifindexes, veth suffixes, timers, namespaces);
    runs of blanks become one (``ip -br`` pads its columns to the longest name)."""
    for mine, shown in names.items():
        text = text.replace(mine, shown)
    text = MAC.sub("<mac>", text)
    text = re.sub(r"fe80::[0-9a-f:]+/64", "fe80::<from the mac>/64", text)
    text = re.sub(r"^\d+: ", "<n>: ", text, flags=re.M)
    text = re.sub(r"@if\d+", "@if<n>", text)
    text = re.sub(r"\bveth[0-9a-f]{8}\b", "veth<hex>", text)
    text = re.sub(r"(_timer)\s+[\d.]+", r"\1 <t>", text)
    text = re.sub(r"(bridge_id|designated_root|designated_bridge) 8000\.<mac>", r"\1 8000.<mac>", text)
    text = re.sub(r"8000\.(?:[0-9a-f]{1,2}:){5}[0-9a-f]{1,2}", "8000.<mac>", text)
    return "\n".join(re.sub(r"[ \t]+", " ", line).rstrip() for line in text.strip().splitlines()) + "\n"


def sh(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=30).stdout


def rows(world) -> list[dict]:
    """Every compared object: netlab's output, the real one, where the real one comes from, and why they differ."""
    veth = world.resolved.pod("fedora-1").host_veth
    node, pod = world.ns("minikube"), world.ns("fedora-1")
    names = {world.cni_node: "demo-minikube", world.cni_pod: "demo-fedora-1", f"{world.lab}-": "demo-"}

    def both(cmd, real_cmd):
        return normalize(sh(*cmd), names), normalize(sh(*real_cmd), names)

    cni = "the pod Debian's CNI bridge plugin made (test above), on this machine"
    out = []

    def row(obj, cmd_text, mine, real, source, known=None):
        out.append({"object": obj, "command": cmd_text, "netlab": mine, "real": real, "source": source,
                    "known": known})

    mine, real = both(["ip", "-n", pod, "route"], ["ip", "-n", world.cni_pod, "route"])
    row("pod routes", "ip route (in the pod)", mine, real, f"{cni}; the tutorial prints the same three lines")
    assert real == TUTORIAL_POD_ROUTES
    mine, real = both(["ip", "-n", pod, "addr", "show", "eth0"], ["ip", "-n", world.cni_pod, "addr", "show", "eth0"])
    row("pod eth0 addresses", "ip addr show eth0 (in the pod)", mine, real, cni, IPV6)
    mine, real = both(["ip", "-n", pod, "-br", "addr"], ["ip", "-n", world.cni_pod, "-br", "addr"])
    row("pod addresses, brief", "ip -br addr (in the pod)", mine, real, cni, IPV6)
    lab_line = {**names, f"# netlab {world.lab}:": "# netlab demo:"}
    mine = normalize(netlab("exec", "--lab", world.lab, "fedora-1", "--", "cat", "/etc/hosts").stdout, lab_line)
    row("pod hosts file", "cat /etc/hosts (netlab exec, in the pod)", mine, normalize(KUBELET_HOSTS, names),
        "kubernetes pkg/kubelet/kubelet_pods.go, managedHostsFileContent (the file the kubelet bind-mounts "
        "over /etc/hosts)", NETLAB_LINE)
    assert mine.split("\n", 1)[1] == normalize(KUBELET_HOSTS, names)
    mine = normalize(netlab("exec", "--lab", world.lab, "fedora-1", "--", "hostname", "-i").stdout, names)
    row("pod's own address", "hostname -i (netlab exec, in the pod)", mine, "10.244.0.2\n",
        "the kubelet's hosts file: the pod's hostname (its name) maps to its IP")
    mine = normalize(netlab("exec", "--lab", world.lab, "minikube", "--", "hostname").stdout, names)
    row("node hostname", "hostname (netlab exec, in the node)", mine, "minikube\n",
        "the tutorial's node is the minikube VM, whose hostname is the node's name")
    mine, real = both(["ip", "-n", pod, "-d", "link", "show", "eth0"],
                      ["ip", "-n", world.cni_pod, "-d", "link", "show", "eth0"])
    row("pod eth0", "ip -d link show eth0 (in the pod)", mine, real, cni)
    mine, real = both(["ip", "-n", node, "-d", "link", "show", veth],
                      ["ip", "-n", world.cni_node, "-d", "link", "show", world.cni_veth])
    row("host veth", "ip -d link show veth<hex> (in the node)", mine, real, cni)
    mine, real = both(["bridge", "-n", node, "-d", "link", "show", "dev", veth],
                      ["bridge", "-n", world.cni_node, "-d", "link", "show", "dev", world.cni_veth])
    row("cni0 port", "bridge -d link show dev veth<hex> (in the node)", mine, real, cni)
    mine, real = both(["ip", "-n", node, "-d", "link", "show", "cni0"],
                      ["ip", "-n", world.cni_node, "-d", "link", "show", "cni0"])
    row("cni0", "ip -d link show cni0 (in the node)", mine, real, cni)
    mine, real = both(["ip", "netns", "exec", pod, "sysctl", *ARP_NOTIFY],
                      ["ip", "netns", "exec", world.cni_pod, "sysctl", *ARP_NOTIFY])
    row("pod arp_notify", "sysctl net.ipv4.conf.{eth0,all,default}.arp_notify (in the pod)", mine, real,
        f"{cni}: the bridge plugin's cmdAdd sets it on the pod's interface only")
    mine, real = both(["ip", "netns", "exec", pod, "sysctl", *POD_FORWARDING],
                      ["ip", "netns", "exec", world.cni_pod, "sysctl", *POD_FORWARDING])
    row("pod forwarding", "sysctl net.ipv4.ip_forward net.ipv4.conf.{all,default,eth0}.forwarding "
        "net.ipv4.conf.all.{accept_redirects,route_localnet} (in the pod)", mine, real,
        f"{cni}, its namespace made with its node's settings: a new namespace copies the all/default settings of "
        "the one the runtime makes it from, its node's (init_net): ip_forward=1, and kube-proxy's route_localnet=1 "
        "(iptables mode)")

    # Node objects: what the tutorial and Flannel's source say; the lines netlab's output must hold.
    mine = normalize(sh("ip", "-n", node, "route"), names)
    cni0_route = normalize(sh("ip", "-n", world.cni_node, "route"), names)
    real = ("default via 192.168.122.1 dev eth1 proto dhcp ...\n" + cni0_route
            + "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink\n")
    row("node routes", "ip route (in the node)", mine, real,
        "the tutorial (default, flannel.1 lines); the CNI bridge plugin's node (cni0 line)", NODE_DEFAULT)
    mine = normalize(sh("ip", "-n", node, "-d", "link", "show", "flannel.1"), names)
    row("flannel.1", "ip -d link show flannel.1 (in the node)", mine,
        "<n>: flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 ... group default\n"
        "vxlan id 1 local 192.168.122.215 dev eth0 ... dstport 8472 nolearning ...\n",
        "Flannel pkg/backend/vxlan (VNI 1, port 8472, Learning false, MTU of eth0 - 50, TxQLen 0: no qlen) "
        "and the tutorial")
    assert "qlen" not in mine
    mine = normalize(sh("ip", "netns", "exec", node, "arp", "-an"), names)
    row("ARP (neighbours)", "arp -an (in the node)", mine, "? (10.244.1.0) at <mac> [ether] PERM on flannel.1\n",
        "Flannel's static entry for the remote VTEP (network model: 10.244.1.0 lladdr <remote MAC> PERMANENT)")
    mine = normalize(sh("bridge", "-n", node, "fdb", "show", "dev", "flannel.1"), names)
    row("flannel.1 FDB", "bridge fdb show dev flannel.1 (in the node)", mine,
        "<mac> dst 192.168.122.7 self permanent\n", "Flannel's FDB entry for the remote VTEP (network model)")
    mine = normalize(sh("ip", "-n", node, "-br", "addr"), names)
    row("node addresses, brief", "ip -br addr (in the node)", mine,
        "cni0 UP 10.244.0.1/24\nflannel.1 UNKNOWN 10.244.0.0/32\n",
        "the CNI bridge plugin's cni0 (isGateway) and Flannel's VTEP address (.0/32)")
    for table, chains in (("nat", ("POSTROUTING", "FLANNEL-POSTRTG")), ("filter", ("FORWARD", "FLANNEL-FWD"))):
        saved = sh("ip", "netns", "exec", node, "iptables", "-t", table, "-S")
        mine = "".join(line + "\n" for line in saved.splitlines()
                       if line.split()[:2] in (["-A", c] for c in chains) and ("FLANNEL" in line or table == "filter"))
        real = _flannel_e2e(table)
        row(f"Flannel rules ({table})", f"iptables -t {table} -S (in the node)", mine, real,
            "flannel-io/flannel e2e/rules.go (iptablesPostroutingRules, iptablesForwardRules)")
    mine = normalize(sh("ip", "netns", "exec", node, "sysctl", *(key for key, _ in CONNTRACK_SYSCTLS)), names)
    row("node conntrack timeouts", "sysctl net.netfilter.nf_conntrack_tcp_timeout_{established,close_wait} (in the "
        "node)", mine, KUBE_PROXY_CONNTRACK,
        "kube-proxy's defaults (conntrack.tcpEstablishedTimeout 24h, tcpCloseWaitTimeout 1h), which it writes on its "
        "node at start in every mode (pkg/proxy/conntrack setSysctls); the kernel's are 432000 and 60")
    case = "internal_traffic_policy_cluster"
    row("kube-proxy nat payload", "the iptables-restore input of one Service (ns1/svc1, 3 endpoints)",
        port_nat(case), (KUBE_PROXY_GOLDEN / f"{case}.nat").read_text(),
        "kubernetes proxier_test.go TestInternalTrafficPolicyE2E, rendered with its fake proxier's mark and "
        "iptables (tests/unit/test_kube_proxy_golden.py)")
    case = "internal_traffic_policy_local"
    row("kube-proxy nat payload, internalTrafficPolicy Local", "the iptables-restore input of one Service (ns1/svc1, "
        "internalTrafficPolicy: Local, 1 endpoint on this node of 3)", port_nat(case),
        (KUBE_PROXY_GOLDEN / f"{case}.nat").read_text(),
        "kubernetes proxier_test.go TestInternalTrafficPolicyE2E, case \"internalTrafficPolicy is local and there is "
        "non-zero local endpoints\": only the node's own endpoint, through KUBE-SVL (tests/unit/test_kube_proxy_golden.py)")
    case = "overall_external_ip"
    row("kube-proxy nat payload, externalIPs", "the iptables-restore input of one Service (ns4/svc4, externalIPs: "
        "[192.168.99.33], 2 endpoints)", port_nat(case, "ns4"), (KUBE_PROXY_GOLDEN / f"{case}.nat").read_text(),
        "kubernetes proxier_test.go TestOverallIPTablesRules, its lines for ns4/svc4: the external IP's jump to "
        "KUBE-EXT, masqueraded there (tests/unit/test_kube_proxy_golden.py)")
    row("policy REJECT", "iptables-save -t filter (in the node): a policy-isolated pod's REJECT rules",
        policy_rejects(), KUBE_ROUTER_REJECT,
        "kube-router pkg/controllers/netpol (its pod firewall chain's last rule: -m mark ! --mark 0x10000/0x10000 "
        "-j REJECT, whose default iptables-save prints)", TCP_RESET)
    return out


# kube-router's pod chain's last rule for the same pod, as iptables-save prints it (its chain's hash <hash>)
KUBE_ROUTER_REJECT = ('-A KUBE-POD-FW-<hash> -m comment --comment "rule to REJECT traffic destined for POD name:web '
                      'namespace: default" -m mark ! --mark 0x10000/0x10000 -j REJECT --reject-with '
                      'icmp-port-unreachable\n')
TCP_RESET = ("the chain and its comment are netlab's own (NETPOL-IN-*, naming the policies); and netlab rejects a denied TCP packet with a reset first (--reject-with tcp-reset, plan/policy.py), where "
             "kube-router's one plain REJECT answers TCP with ICMP port unreachable too: a client's connect() fails "
             "with ECONNREFUSED either way (Linux takes that ICMP error of a SYN as fatal), but tcpdump and `trace` "
             "see a TCP RST from the node instead of an ICMP error, and the kernel rate-limits ICMP errors "
             "(net.ipv4.icmp_ratelimit), not resets: under a burst of denied SYNs a kube-router client may wait for "
             "a retransmission where netlab's is refused at once; UDP and the rest get ICMP port unreachable in both")
REJECT_LAB = """\
name: fidelity
nodes: [{name: n1}]
pods: [{name: web, node: n1}]
networkPolicies: [{name: deny-in, spec: {podSelector: {}, policyTypes: [Ingress]}}]
"""


def policy_rejects() -> str:
    """The REJECT rules of a pod isolated for ingress, from netlab's plan of its node's filter table."""
    from netlab.model.load import parse_yaml, validate_source
    from netlab.plan.iptables import Ruleset
    from netlab.plan.policy import node_filter

    lab = resolve(validate_source(parse_yaml(REJECT_LAB, "fidelity.yaml")))
    rules = node_filter(lab, lab.nodes[0], Ruleset("filter")).rules()
    return "".join(line + "\n" for line in rules if "-j REJECT" in line)


def _flannel_e2e(table: str) -> str:
    """flannel's e2e golden for node minikube (lease 10.244.0.0/24, network 10.244.0.0/16)."""
    lines = FLANNEL_E2E_POSTROUTING if table == "nat" else FLANNEL_E2E_FORWARD
    return "".join(line.format(pod="10.244.0.0/24", net="10.244.0.0/16") + "\n" for line in lines)


@pytest.fixture(scope="module")
def dns_world(tmp_path_factory):
    yield from dns_lab(tmp_path_factory)


@pytest.fixture(scope="module")
def env_world(tmp_path_factory):
    yield from env_lab(tmp_path_factory)


def same(r: dict) -> bool:
    """Equal text; for a partial reference ('...'), each of its lines is in netlab's output, in order."""
    if r["netlab"] == r["real"]:
        return True
    mine = r["netlab"].splitlines()
    for want in r["real"].splitlines():
        parts = [p.strip() for p in want.split("...") if p.strip()]
        if not any(all(p in line for p in parts) for line in mine):
            return False
    return "..." in r["real"] or all(line in mine for line in r["real"].splitlines())


def render_doc(rs: list[dict]) -> str:
    out = ["# netlab next to the real components", "",
           "Written by `tests/integration/test_fidelity.py` from what it ran (regenerate with",
           "`NETLAB_REGEN_GOLDEN=1`; the test fails when this file and the lab disagree). Outputs are",
           "normalized: MACs `<mac>`, ifindexes `<n>`, the veth suffix `veth<hex>`, timers `<t>`, the",
           "lab's name `demo`. \"Real\" is what Debian's CNI plugins print on this machine for the same",
           "pod, or what the tutorial and the components' own sources print; `...` stands for text the",
           "source leaves out.", "",
           "| object | the real command output | netlab's output | same? |", "|---|---|---|---|"]

    def cell(text: str) -> str:
        return "<pre>" + text.rstrip("\n").replace("|", "&#124;").replace("<", "&lt;").replace(">", "&gt;") \
            .replace("\n", "<br>") + "</pre>"

    for r in rs:
        verdict = "yes" if same(r) else f"no: {r['known']}"
        if same(r) and r["known"] and r["netlab"] != r["real"]:  # every line of the real output, and more
            verdict = f"yes, but {r['known']}"
        out.append(f"| {r['object']}: `{r['command']}` | {cell(r['real'])}<br>({r['source']}) | "
                   f"{cell(r['netlab'])} | {verdict} |")
    return "\n".join(out) + "\n"


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
