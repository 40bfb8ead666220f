"""trace of flows a NetworkPolicy refuses, on real labs (root): the REJECT has a row of its own where the node's
kernel runs it, and real connections and the REJECT rule's counters (iptables-save -c) agree with the rows.

web-1 (n1) admits only pods labelled role=client. c1 (n1, the same bridge) and c2 (n2, across the VXLAN overlay)
are refused; friend (n2) is let through.
"""

from __future__ import annotations

import re

import pytest

from helpers import in_netns, ip_json, netlab, reject_counts, traced
from netlab.model.echo_ports import DEFAULT_ECHO_PORT
from netlab.model import naming

pytestmark = pytest.mark.root

WEB_PORT = DEFAULT_ECHO_PORT[0]  # what a pod that declares no container serves


def policy_topology(lab: str) -> str:
    return f"""name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}}}
  - {{name: c1, node: n1}}
  - {{name: c2, node: n2}}
  - {{name: friend, node: n2, labels: {{role: client}}}}
networkPolicies:
  - name: web-from-clients
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress: [{{from: [{{podSelector: {{matchLabels: {{role: client}}}}}}]}}]
"""


def connect(netns: str, ip: str, port: int) -> str:
    """One real TCP connection from ``netns``: 'ok', 'refused' (a reset) or the error's name."""
    code = ("import socket,sys\ns=socket.socket(); s.settimeout(3)\n"
            "try:\n s.connect((sys.argv[1], int(sys.argv[2]))); print('ok')\n"
            "except ConnectionRefusedError: print('refused')\nexcept OSError as e: print(type(e).__name__)\n")
    return in_netns(netns, "python3", "-c", code, ip, str(port), check=True).stdout.strip()


def test_a_pod_to_pod_flow_a_policy_refuses_is_lost_at_the_rejects_row(labs):
    """The packet was lost at the bridge's row (same node) or at the forwarded route row (across nodes, the pod's
    ARP entry known), which the text blamed; now the REJECT has its row in n1's FORWARD hook, naming the policy,
    after the bridge's FDB row (br_netfilter, in and out on cni0) or after n1's forwarded route lookup."""
    lab = labs.name("trq")
    labs.up(policy_topology(lab))
    n1, n2 = f"{lab}-n1", f"{lab}-n2"
    web_ip = ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-web-1")[0]["addr_info"][0]["local"]
    # The node's own packets to its pod are not judged (OUTPUT, not FORWARD): n1 learns web-1's MAC.
    assert in_netns(n1, "ping", "-c1", "-W2", web_ip).returncode == 0
    assert any(n["dst"] == web_ip and "lladdr" in n for n in ip_json("neigh", "show", "dev", "cni0", netns=n1))
    # Real connections: refused (the REJECT's reset) from c1 and c2, each counted by n1's REJECT, never n2's.
    for src in ("c1", "c2"):
        before, before_n2 = reject_counts(n1), reject_counts(n2)
        assert connect(f"{lab}-{src}", web_ip, WEB_PORT) == "refused"
        moved = {c: n - before.get(c, 0) for c, n in reject_counts(n1).items() if n > before.get(c, 0)}
        assert len(moved) == 1 and list(moved.values()) == [1], moved
        assert reject_counts(n2) == before_n2
        chain = next(iter(moved))
        rc, d = traced(lab, src, "web-1", "--port", str(WEB_PORT))
        assert rc == 1 and not d["delivered"], d["lost"]
        [entry] = d["policy"]
        assert (entry["node"], entry["chain"], entry["counted"]) == ("n1", chain, True), entry
        row = d["hops"][d["lost"]["hop"] - 1]
        assert (row["netns"], row["kind"], row["facts"]["chain"]) == (n1, "drop", chain), row
        assert row["facts"]["policies"] == ["default/web-from-clients"] and row["problem"] == d["lost"]["reason"]
        assert f"chain {chain}: REJECT (NetworkPolicy default/web-from-clients)" in row["decision"], row
        before_row = d["hops"][d["lost"]["hop"] - 2]
        if src == "c1":  # switched by cni0 from c1's port to web-1's, handed to iptables by br_netfilter
            assert before_row["kind"] == "bridge" and before_row["seen"] is False, before_row
            port = before_row["facts"]["port"]
            assert row["decision"].startswith("FORWARD (bridged by cni0 from port "), row
            assert f"to port {port}: br_netfilter hands it to iptables in and out on cni0)" in row["decision"], row
            # n1's kernel: that port is web-1's veth peer, and bridge-nf-call-iptables hands its frames to FORWARD.
            [link] = ip_json("link", "show", "dev", port, netns=n1)
            assert link["master"] == "cni0"
            sysctl = in_netns(n1, "sysctl", "-n", "net.bridge.bridge-nf-call-iptables", check=True).stdout
            assert sysctl.strip() == "1"
        else:  # routed in from flannel.1: after n1's forwarded route lookup, before the ARP entry
            assert (before_row["netns"], before_row["kind"], before_row["facts"]["iif"]) == (n1, "route", "flannel.1")
            assert row["decision"].startswith("FORWARD (in on flannel.1, out on cni0)"), row
            assert any(h["netns"] == n2 and h["seen"] for h in d["hops"]), "the packet crossed n2"
        # The reset that came back is the REJECT's answer, sent by n1: the reply rows start at it, by its number.
        assert d["reply_received"] and d["reply_hops"], d["reply_lost"]
        first = d["reply_hops"][0]
        assert (first["index"], first["kind"], first["netns"]) == (1, "reject", n1), first
        assert first["facts"]["reject_hop"] == d["lost"]["hop"] == row["index"], first
        assert not any(h["netns"] == f"{lab}-web-1" for h in d["reply_hops"]), d["reply_hops"]
        assert [h["index"] for h in d["reply_hops"]] == list(range(1, len(d["reply_hops"]) + 1))
        if src != "c1":  # the reset leaves n1 routed, as n1's own packet (OUTPUT), not one it forwards
            second = d["reply_hops"][1]
            assert (second["netns"], second["kind"]) == (n1, "route") and "iif" not in second["facts"], second
            assert "(the node's own packet)" in second["decision"], second
        # The text and the rows agree: no row past the REJECT was seen, none before it has a problem.
        assert not any(h["seen"] for h in d["hops"][d["lost"]["hop"]:]), d["hops"]
        assert not any(h["problem"] for h in d["hops"][:d["lost"]["hop"] - 1]), d["hops"]
        text = netlab("trace", "--lab", lab, src, "web-1", "--port", str(WEB_PORT), check=False).stdout
        # The client's connect is refused at once (the REJECT's reset): REFUSED, as probe says it, not LOST
        assert re.search(rf"REFUSED at hop \d+ \({n1} \S+\): dropped in node n1, chain {chain}", text), text
    # The allowed pod gets through, and the trace says so.
    assert connect(f"{lab}-friend", web_ip, WEB_PORT) == "ok"
    rc, d = traced(lab, "friend", "web-1", "--port", str(WEB_PORT))
    assert rc == 0 and d["delivered"] and not any(h["kind"] == "drop" for h in d["hops"]), d["lost"]


def test_a_loadbalancer_flow_no_node_kept_an_entry_of_gets_the_policy_verdict(labs):
    """The gateway's port on the underlay down (its eth0 without carrier): the gateway routes the packet by its
    LoadBalancer route to a node and loses it on the way, so no node's conntrack entry names the node that would
    DNAT it (trace judged no policy then). The gateway's route row names it (the hop its hash picked), and the
    verdict is judged from there, as for a nodePort."""
    lab = labs.name("trq")
    labs.up(policy_topology(lab) + """services:
  - {name: web-lb, type: LoadBalancer, selector: {app: web}, ports: [{port: 80, targetPort: %d, nodePort: 30080}]}
internet:
  cidr: 203.0.113.0/24
  gateway: {ip: 203.0.113.1}
  hosts: [{name: example, ip: 203.0.113.10}]
""" % WEB_PORT)
    gw = f"{lab}-gateway"
    [route] = [r for r in ip_json("route", "show", netns=gw) if "nexthops" in r]  # the LoadBalancer IP's
    lb_ip = route["dst"]
    in_netns(f"{lab}-underlay", "ip", "link", "set", naming.veth_name(lab, "gateway"), "down", check=True)
    # Real traffic: the connection fails on the way to the node (the gateway's eth0 has no carrier).
    assert connect(f"{lab}-example", lb_ip, 80) != "ok"
    before = {n: reject_counts(f"{lab}-{n}") for n in ("n1", "n2")}
    rc, d = traced(lab, "example", "svc/web-lb")
    assert rc == 1 and d["lost"]["netns"] in (gw, f"{lab}-underlay"), d["lost"]
    sport = d["hops"][0]["observe"]["flow"].split(" → ")[0].rsplit(":", 1)[1]
    # The gateway's route row names the node its hash picked; no node has an entry for the packet, and no REJECT
    # counted it.
    [row] = [h for h in d["hops"] if h["netns"] == gw and h["kind"] == "route" and h["facts"].get("hops")]
    node = next(n for n in ("n1", "n2") if ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-{n}")[0]["addr_info"][0]
                ["local"] == row["facts"]["gateway"])
    for n in ("n1", "n2"):
        assert in_netns(f"{lab}-{n}", "conntrack", "-L", "-p", "tcp", "--orig-port-src", sport).stdout.strip() == ""
        assert reject_counts(f"{lab}-{n}") == before[n]
    [verdict] = d["policy"]
    assert (verdict["pod"], verdict["allowed"], verdict["node"], verdict["counted"]) == \
        ("default/web-1", False, "n1", False), verdict
    if node == "n1":  # routed to web-1's own node: judged with the host's own address (no NAT on the way)
        seen = "203.0.113.10, example's own address"
    else:  # n2 forwards it to n1 masqueraded to its own address towards the pod (flannel.1's)
        vtep = ip_json("-4", "addr", "show", "flannel.1", netns=f"{lab}-n2")[0]["addr_info"][0]["local"]
        seen = f"{vtep}, n2's address after its masquerade"
    assert verdict["text"].startswith(f"dropped in node n1, chain {verdict['chain']}, by policy "
                                      f"default/web-from-clients (no ingress rule allows it for pod default/web-1; "
                                      f"it comes from {seen})"), (node, verdict["text"])
    # n1's REJECT never had the packet (lost on the way, before n1's FORWARD hook): said so, not "look at the
    # node's filter table".
    assert verdict["text"].endswith("; but the packet never got there: it was lost before node n1's FORWARD hook, so "
                                    "this is what the policy would do to it"), verdict["text"]
    assert "policy: dropped in node n1" in netlab("trace", "--lab", lab, "example", "svc/web-lb", check=False).stdout
