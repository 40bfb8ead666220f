"""A LoadBalancer Service on a real lab (root), in both kube-proxy modes: the reply to an internet host lost in that
host's own INPUT chain, and a node's (or a pod's) own packet to the LoadBalancer IP, which its node's kube-proxy
DNATs before it ever reaches the balancer.

(The internet's gateway routes the LoadBalancer IP to the nodes untranslated: a passthrough balancer.)

Internet host as the reply's destination: a DROP put by hand in its INPUT (``iptables -I INPUT -s <LB IP> ...``)
loses the reply of its connection to the Service; trace names that rule on the reply's last row with the
``iptables -D`` that takes it out; the rule's counter (``iptables-save -c``) counted the trace's reply, the
connection fails while the rule is there and works once the printed fix ran.

Node or pod to the LoadBalancer IP: trace took the address for the balancer's, an internet host ("delivered to
lb"), and named neither the Service nor kube-proxy's chains. It names them now (a ``path`` of the chains crossed,
the external chain's mark for the masquerade); the node's kube-proxy rule counted the packet and it never left the
node. With that rule deleted the packet really goes out to the gateway, which routes it back to a node (n1, its
route pinned there for the test: back to n2, which lacks the rule, it would loop): trace calls it astray (exit 1),
names the rule, and its fix brings the short-cut back.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest

from helpers import in_netns, lab_up, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

LB, NODE_PORT = "203.0.113.254", 30082
TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: c, node: n2}}
services:
  - {{name: web-lb, type: LoadBalancer, selector: {{app: web}}, loadBalancerIP: {lb},
     ports: [{{port: 80, targetPort: 8080, nodePort: {np}}}]}}
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: client, ip: 203.0.113.50}}]
"""


def _ip(netns: str) -> str:
    return in_netns(netns, "ip", "-4", "-br", "addr", "show", "eth0", check=True).stdout.split()[2].split("/")[0]


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def live(request, tmp_path_factory):
    lab = unique_lab("tr")
    text = TOPOLOGY.format(lab=lab, mode=request.param, lb=LB, np=NODE_PORT)
    path = write_topology(tmp_path_factory.mktemp("lb"), text, f"{lab}.yaml")
    with lab_up(path, lab, in_process=True):  # in this process: no test of the module asks anything of up's or down's CLI
        yield {"name": lab, "path": path, "mode": request.param, "web": _ip(f"{lab}-web"), "n1": _ip(f"{lab}-n1")}


def counter(netns: str, table: str, line: str) -> int:
    """Packets ``line`` (as iptables-save prints it) counted, from ``iptables-save -c``."""
    for row in in_netns(netns, "iptables-save", "-c", "-t", table, check=True).stdout.splitlines():
        m = re.match(r"^\[(\d+):\d+\] (.*)$", row)
        if m and m.group(2) == line:
            return int(m.group(1))
    raise AssertionError(f"no rule {line!r} in {netns}'s {table} table")


def curl(lab: str, who: str, url: str) -> int:
    return in_netns(f"{lab}-{who}", "curl", "-s", "-m", "2", "-o", "/dev/null", url, timeout=10).returncode


@pytest.mark.parametrize("to", ["svc/web-lb", "n1"])
def test_a_drop_in_the_internet_hosts_input_loses_the_reply_and_is_named_with_its_fix(repaired, to):
    lab = repaired["name"]
    ns = f"{lab}-client"
    # the reply comes from the address the client sent to: the LoadBalancer IP, or n1's for its nodePort
    src, port, url = (LB, 80, f"http://{LB}/") if to != "n1" else \
        (repaired["n1"], NODE_PORT, f"http://{repaired['n1']}:{NODE_PORT}/")
    rule = f"-A INPUT -s {src}/32 -p tcp -m tcp --sport {port} -j DROP"
    assert curl(lab, "client", url) == 0
    in_netns(ns, "iptables", "-I", *rule.split()[1:], check=True)
    assert curl(lab, "client", url) != 0  # real traffic: the connection fails
    before = counter(ns, "filter", rule)
    rc, d = traced(lab, "client", to, "--port", str(port))
    assert counter(ns, "filter", rule) > before  # the trace's reply came back, and that rule dropped it
    assert rc == 1 and d["delivered"] is True and d["reply_received"] is False and d["ok"] is False, d["reply_lost"]
    lost = d["reply_lost"]
    assert lost is not None and lost["netns"] == ns, lost
    assert lost["reason"].startswith("a rule netlab did not write in internet host client's filter chain INPUT "
                                     f"dropped the packet after it arrived, before any socket saw it: `{rule}`"), lost
    assert lost["fix"] == f"ip netns exec {ns} iptables -D {rule[3:]}", lost["fix"]
    assert lost["hop"] == d["reply_hops"][-1]["index"] and d["reply_hops"][-1]["kind"] == "deliver", lost
    assert d["endpoint"]["endpoint"] == "web", d["endpoint"]  # the request did reach the Service's endpoint
    subprocess.run(["bash", "-c", lost["fix"]], check=True)
    assert rule not in in_netns(ns, "iptables-save", "-t", "filter", check=True).stdout
    assert curl(lab, "client", url) == 0
    rc, d = traced(lab, "client", to, "--port", str(port))
    assert rc == 0 and d["reply_received"] and d["reply_lost"] is None, d["reply_lost"]


@pytest.mark.parametrize("source", ["n2", "c"])
def test_a_packet_to_the_lb_ip_from_inside_is_dnated_by_its_node_and_explained(repaired, source):
    lab, mode = repaired["name"], repaired["mode"]
    n2 = f"{lab}-n2"
    assert curl(lab, source, f"http://{LB}/") == 0
    rule = (f'-A KUBE-SERVICES -d {LB}/32 -p tcp -m comment --comment "default/web-lb loadbalancer IP" -m tcp '
            "--dport 80 -j KUBE-EXT-")
    kp = next((line for line in in_netns(n2, "iptables-save", "-t", "nat", check=True).stdout.splitlines()
               if line.startswith(rule)), None) if mode == "iptables" else None
    kp_before = counter(n2, "nat", kp) if kp else None
    rc, d = traced(lab, source, LB, "--port", "80")
    assert rc == 0 and d["delivered"] and d["reply_received"], (d["lost"], d["reply_lost"])
    assert (d["destination"]["kind"], d["destination"]["ip"], d["destination"]["service"]) == \
        ("service", LB, "web-lb"), d["destination"]
    ep = d["endpoint"]
    assert ep["endpoint"] == "web" and ep["endpoint_ip"] == repaired["web"], ep
    dnat = next(h for h in d["hops"] if h["kind"] == "dnat")
    assert dnat["netns"] == n2 and "Service default/web-lb picked endpoint web" in dnat["decision"], dnat
    own = source == "n2"
    assert ep["path"].startswith(f"{'the node' if own else 'a pod'}'s{' own' if own else ''} packet to the "
                                 f"LoadBalancer IP {LB}:80 never goes to the load balancer"), ep["path"]
    if mode == "iptables":
        hook = "OUTPUT" if own else "PREROUTING"
        assert re.search(rf": {hook} → KUBE-SERVICES → KUBE-EXT-\w+ → KUBE-SVC-\w+ → {ep['sep_chain']};",
                         ep["path"]), ep["path"]
        assert counter(n2, "nat", kp) > kp_before  # kube-proxy's LB IP rule took the trace's packet
    else:
        hook = "nat-output" if own else "nat-prerouting"
        assert re.search(rf": {hook} → services → external-\S+ → service-\S+ → {re.escape(ep['sep_chain'])};",
                         ep["path"]), ep["path"]
    assert "marks it for the masquerade" in ep["path"], ep["path"]
    # masqueraded as it leaves n2 for web on n1, as the external chain's mark asks
    assert any(h["kind"] == "snat" and h["netns"] == n2 and h["decision"].startswith("MASQUERADE")
               for h in d["hops"]), d["hops"]
    # it never left its node: no row in the gateway
    assert not any(h["netns"] == f"{lab}-gateway" for h in d["hops"]), d["hops"]
    if source == "c":
        return
    # Without kube-proxy's LB IP rule (entry) the node's packet goes out to the gateway and back to a node: n1, where
    # the gateway's route is pinned for this part (by its hash it may pick n2 itself, which would send it back out).
    gw = f"{lab}-gateway"
    [route] = json.loads(in_netns(gw, "ip", "-j", "route", "show", f"{LB}/32", check=True).stdout)
    was = [w for h in route["nexthops"] for w in ("nexthop", "via", h["gateway"], "dev", h["dev"])] \
        if "nexthops" in route else ["via", route["gateway"], "dev", route["dev"]]
    in_netns(gw, "ip", "route", "replace", f"{LB}/32", "via", repaired["n1"], "dev", "eth0", "proto", "boot",
             check=True)
    if mode == "iptables":
        in_netns(n2, "iptables", "-t", "nat", "-D", *shlex.split(kp)[1:], check=True)
    else:
        element = f"{LB} . tcp . 80"
        listing = in_netns(n2, "nft", "list", "map", "ip", "kube-proxy", "service-ips", check=True).stdout
        assert element in listing, listing
        in_netns(n2, "nft", "delete", "element", "ip", "kube-proxy", "service-ips", f"{{ {element} }}", check=True)
    try:
        assert curl(lab, "n2", f"http://{LB}/") == 0  # it does connect, the long way round
        rc, d = traced(lab, "n2", LB, "--port", "80")
        assert any(h["netns"] == gw for h in d["hops"]), d["hops"]  # out to the gateway this time
        assert rc == 1 and d["delivered"] and d["astray"] is not None, (d["lost"], d["astray"])
        astray = d["astray"]
        assert astray["netns"] == n2 and f"to the internet's gateway, which routes {LB} back to a node" in \
            astray["reason"], astray
        subprocess.run(["bash", "-c", astray["fix"]], check=True)
        rc, d = traced(lab, "n2", LB, "--port", "80")
        assert rc == 0 and d["astray"] is None and d["endpoint"]["path"], d["astray"]
    finally:  # the plan's route back, for the module's other tests
        in_netns(gw, "ip", "route", "replace", f"{LB}/32", "proto", "boot", *was, check=True)
