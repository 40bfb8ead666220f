"""A lab whose pods share no bridge: Debian's CNI ptp plugin, each pod's veth routed by its node alone (root, real
plugins and traffic, two nodes, three pods).

Two pods of one node are not switched past iptables there: their packets pass the node's FORWARD whatever
bridge-nf-call-iptables says. trace took them for ports of one bridge: with the sysctl 0 in the node and the
policy chain of the destination flushed, it said the flow a policy denies got through because "its bridge switches
the frame from pod to pod" (fix: the sysctl), where the node's flushed rules let it by (the trace's own SYN counted
in the node's FORWARD). And the all-pairs neighbour figure counted the pods of a node as resolving each other:
k*(k-1) entries per node that ptp never makes, on the table every lab of the machine shares.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from helpers import in_netns, ip_json, lab_namespaces, netlab, reject_counts

pytestmark = pytest.mark.root

PORT = 8080
CONFLIST = {"cniVersion": "1.0.0", "name": "ptp-net", "plugins": [
    {"type": "ptp", "mtu": 1450, "ipMasq": False, "capabilities": {"ips": True, "ipRanges": True},
     "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}]}}]}


def _topology(lab: str) -> str:
    return f"""name: {lab}
network: {{cni: {{conflist: ptp.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n1, labels: {{app: b}}}}
  - {{name: c, node: n2}}
networkPolicies:
  - {{name: deny-b, spec: {{podSelector: {{matchLabels: {{app: b}}}}, policyTypes: [Ingress]}}}}
"""


def _forward_packets(netns: str) -> int:
    """Packets the kernel counted through the FORWARD hook's first rule (the jump to NETPOL-FORWARD)."""
    out = in_netns(netns, "iptables", "-nvxL", "FORWARD", check=True).stdout.splitlines()
    return int(next(line for line in out if "NETPOL-FORWARD" in line).split()[0])


def _connect(netns: str, ip: str) -> str:
    code = ("import socket,sys\ns=socket.socket(); s.settimeout(3)\n"
            "try:\n s.connect((sys.argv[1], int(sys.argv[2]))); print('ok')\n"
            "except ConnectionRefusedError: print('refused')\nexcept OSError as e: print(type(e).__name__)\n")
    return in_netns(netns, "python3", "-c", code, ip, str(PORT), check=True).stdout.strip()


def test_a_ptp_labs_neighbours_and_a_same_node_flow_past_a_flushed_chain(labs, tmp_path):
    from netlab.api import load
    from netlab.probe.neighbours import full_mesh_entries

    (tmp_path / "ptp.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("pt")
    path, _ = labs.up(_topology(lab))
    model = load(path).lab
    n1, ips = f"{lab}-n1", {p.name: str(p.ip) for p in model.pods}

    # every pod and node sends to every pod (b's policy refuses the pods' pings in n1's FORWARD, after they
    # resolved their gateway; its node's own reach it): the kernel's dynamic entries, every namespace of the lab
    for src in [p.netns for p in model.pods] + [n.netns for n in model.nodes]:
        for ip in ips.values():
            in_netns(src, "ping", "-c1", "-W1", ip, check=False)
    dynamic = sum(1 for ns in lab_namespaces(lab) for e in ip_json("neigh", "show", netns=ns)
                  if not {"PERMANENT", "NOARP"} & set(e.get("state", [])))
    assert dynamic == full_mesh_entries(model) == 2 * 3 + 2  # a pod its gateway, the node each pod; n1 <-> n2

    chain = next(line.split()[-1] for line in in_netns(n1, "iptables-save", "-t", "filter", check=True)
                 .stdout.splitlines() if line.startswith(f"-A NETPOL-FORWARD -d {ips['b']}/32 "))
    flushed = [line for line in in_netns(n1, "iptables-save", "-t", "filter", check=True).stdout.splitlines()
               if line.startswith(f"-A {chain} ")]
    assert _connect(f"{lab}-a", ips["b"]) == "refused"  # the REJECT's reset, as planned
    in_netns(n1, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0", check=True)
    in_netns(n1, "iptables", "-F", chain, check=True)
    assert _connect(f"{lab}-a", ips["b"]) == "ok"  # the node's flushed rules let the denied flow through

    rejects, forwarded = reject_counts(n1), _forward_packets(n1)
    proc = netlab("trace", "--lab", lab, "a", "b", "--proto", "tcp", "--port", str(PORT), "-o", "json",
                  check=False, timeout=60)
    d = json.loads(proc.stdout)
    assert reject_counts(n1) == rejects and _forward_packets(n1) > forwarded  # its SYN passed FORWARD uncounted
    assert proc.returncode == 1 and d["delivered"] and d["reply_received"], proc.stdout
    [e] = d["policy"]
    assert (e["allowed"], e["stopped"], e["chain"], e["missing"], e["fix"]) == (False, False, chain, flushed,
                                                                                d["repair"]), e
    assert "bridge" not in e["text"] and f"missing from node n1's chain {chain}" in e["text"], e["text"]
    text = netlab("trace", "--lab", lab, "a", "b", "--proto", "tcp", "--port", str(PORT), check=False,
                  timeout=60).stdout
    assert re.search(r"ARP entry: 10\.244\.0\.1 \(n1 pod veths\) is at ", text), text  # the gateway, named
    assert "bridge-nf-call-iptables" not in text and "forwarded" in text, text
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)


def test_a_ptp_labs_own_host_routes_are_not_blamed_but_a_hand_made_one_is(labs, tmp_path):
    """ptp routes each pod of a node by a /32 on its veth, more specific than the node's default route: trace
    marked those `!!` ("status calls it extra") on flows that worked, while status said all was as planned. A route
    added by hand beside them is still the lab's fault, with its fix."""
    (tmp_path / "ptp.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("pt")
    labs.up(_topology(lab))
    n2 = f"{lab}-n2"
    assert netlab("status", "--lab", lab, check=False).returncode == 0

    def trace(src: str, dst: str) -> subprocess.CompletedProcess:
        return netlab("trace", "--lab", lab, src, dst, "--proto", "tcp", "--port", str(PORT), check=False,
                      timeout=60)

    for src, dst in (("a", "c"), ("c", "a")):  # ptp's /32 to the destination, in its node
        proc = trace(src, dst)
        assert proc.returncode == 0 and "!!" not in proc.stdout and "reply received" in proc.stdout, proc.stdout
    a_ip = next(r["dst"] for r in ip_json("route", "show", netns=f"{lab}-n1") if r.get("scope") == "host"
                and r["dst"].startswith("10.244.0."))
    in_netns(n2, "ip", "route", "add", f"{a_ip}/32", "dev", "eth0", check=True)  # by hand: a's packets out of eth0
    proc = trace("c", "a")
    assert proc.returncode == 1, proc.stdout
    blamed = [line for line in proc.stdout.splitlines() if line.strip().startswith("!! ")]
    assert blamed and f"route to {a_ip} in {n2} is {a_ip}/32, a route the plan does not have" \
        in blamed[0], proc.stdout  # the route first (a's ARP on eth0, unanswered, follows from it)
    fix = re.search(rf"fix: (ip -n {n2} route del {re.escape(a_ip)}/32 dev eth0)", proc.stdout)
    assert fix is not None, proc.stdout
    subprocess.run(fix.group(1).split(), check=True)
    proc = trace("c", "a")
    assert proc.returncode == 0 and "!!" not in proc.stdout, proc.stdout
