"""The rows of the fidelity table (test_fidelity.py, docs/fidelity.md) of netlab's default lab beside the CNI pod
test_fidelity.py makes: each compared object's command, netlab's output and the real one (normalized: MACs,
ifindexes, veth suffixes, timers, the lab's name), where the real one comes from, and why they differ; and the
table's text."""

from __future__ import annotations

import re
import subprocess

from flannel_e2e import FLANNEL_E2E_FORWARD, FLANNEL_E2E_POSTROUTING
from helpers import netlab
from kube_proxy_golden import GOLDEN as KUBE_PROXY_GOLDEN, port_nat
from netlab.model.lab import resolve
from netlab.plan.sysctls import CONNTRACK_SYSCTLS

IPV6 = ("netlab turns IPv6 off in every lab namespace (README, 'What is built, and where'): the real "
        "pod has ::1 on lo and an fe80:: link-local address on eth0")


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
        "flannel.1 UNKNOWN 10.244.0.0/32\ncni0 UP 10.244.0.1/24\n",
        "Flannel's VTEP address (.0/32) and the CNI bridge plugin's cni0 (isGateway), in a real node's order: "
        "flanneld makes flannel.1 before the first pod's ADD makes cni0")
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
    return "\n".join(out) + "\n" + NOTES


# What the table's rows do not show (docs/fidelity.md's last section)
NOTES = """
## Beside the table

- A node's interfaces are made in a real Flannel node's order, so `ip link` lists them and numbers them
  (ifindex) as it does: `lo`, `eth0` (the NIC), `flannel.1` (flanneld starts before any pod), `cni0`
  (the bridge plugin makes it at the first pod's CNI ADD), then the pods' veths; in host-gw mode `lo`,
  `eth0`, `cni0`, the veths (`tests/integration/test_node_link_order_live.py`).
- What `status` does not compare, because it changes no forwarding (a real node's links have none of it,
  and `up` leaves it as it is): a link's alias (`ip link set X alias foo`, `ifalias`), its group
  (`ip link set X group 7`), a neighbour entry's `router` flag and `protocol`. "All as planned" means the
  objects that carry or decide traffic are as planned, not that these are absent: `ip -d link` shows them.
"""
