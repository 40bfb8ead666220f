"""A DROP put by hand (root) in the firewall of the one that sends a packet and takes its reply: the client pod's
own INPUT that drops the reply, a node's or an internet host's own OUTPUT that drops the request (a trace from a
node, to a NodePort from the internet), a node's INPUT that drops the reply. trace names the rule with the
`iptables -D` that takes it out, the connection fails while it is there and works once the printed fix ran.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import in_netns, lab_up, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

NODE_PORT = 30081
TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: c, node: n2}}
services:
  - name: web
    type: NodePort
    selector: {{app: web}}
    ports: [{{port: 80, targetPort: 8080, nodePort: {np}}}]
"""


def _ip(netns: str) -> str:
    return in_netns(netns, "ip", "-4", "-br", "addr", "show", "eth0", check=True).stdout.split()[2].split("/")[0]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    lab = unique_lab("tq")
    path = write_topology(tmp_path_factory.mktemp("out"), TOPOLOGY.format(lab=lab, np=NODE_PORT), f"{lab}.yaml")
    with lab_up(path, lab):
        yield {"name": lab, "path": path, "web": _ip(f"{lab}-web"), "n1": _ip(f"{lab}-n1")}


# sender, the chain and rule put in `who`'s firewall, where it is (request or reply), trace's DST and port
CASES = {
    "client pod's INPUT, the reply": ("c", "c", "INPUT", "-s {web}/32 -p tcp -m tcp --sport 8080 -j DROP", "reply",
                                      "pod c", "web", 8080),
    "node's OUTPUT, the request": ("n2", "n2", "OUTPUT", "-d {web}/32 -p tcp -m tcp --dport 8080 -j DROP",
                                   "request", "node n2", "web", 8080),
    "node's INPUT, the reply": ("n2", "n2", "INPUT", "-s {web}/32 -p tcp -m tcp --sport 8080 -j DROP", "reply",
                                "node n2", "web", 8080),
    "internet host's OUTPUT, to a NodePort": ("client", "client", "OUTPUT",
                                              f"-d {{n1}}/32 -p tcp -m tcp --dport {NODE_PORT} -j DROP", "request",
                                              "internet host client", "n1", NODE_PORT),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_drop_in_the_senders_own_firewall_is_named_and_its_fix_brings_the_connection_back(repaired, case):
    sender, who, chain, rule, side, words, dst, port = CASES[case]
    lab = repaired["name"]
    ns, rule = f"{lab}-{who}", rule.format(**repaired)
    url = f"http://{repaired['web'] if dst == 'web' else repaired['n1']}:{port}/"

    def curl() -> int:
        return in_netns(f"{lab}-{sender}", "curl", "-s", "-m", "2", url, timeout=10).returncode

    assert curl() == 0
    in_netns(ns, "iptables", "-A", chain, *rule.split(), check=True)
    assert curl() != 0
    rc, d = traced(lab, sender, dst, "--port", str(port))
    lost = d["lost"] if side == "request" else d["reply_lost"]
    assert rc == 1 and lost is not None and lost["netns"] == ns, (d["lost"], d["reply_lost"])
    assert d["delivered"] is (side == "reply") and d["reply_received"] is False, d["lost"]
    when = "on its way out" if chain == "OUTPUT" else "after it arrived, before any socket saw it"
    assert lost["reason"].startswith(f"a rule netlab did not write in {words}'s filter chain {chain} dropped the "
                                     f"packet {when}"), lost["reason"]
    assert f"`-A {chain} {rule}`" in lost["reason"], lost["reason"]
    assert lost["fix"] == f"ip netns exec {ns} iptables -D {chain} {rule}", lost["fix"]
    if side == "request":  # the first row, and nothing after it blamed: the packet never left
        assert lost["hop"] == 1 and [h["index"] for h in d["hops"] if h.get("problem")] == [1], d["hops"]
    else:  # the reply's last row: where it was delivered to the client
        assert lost["hop"] == d["reply_hops"][-1]["index"] and d["reply_hops"][-1]["kind"] == "deliver", lost
    subprocess.run(["bash", "-c", lost["fix"]], check=True)
    assert f"-A {chain} {rule}" not in in_netns(ns, "iptables-save", "-t", "filter", check=True).stdout
    assert curl() == 0
    rc, d = traced(lab, sender, dst, "--port", str(port))
    assert rc == 0 and d["delivered"] and d["reply_received"], (d["lost"], d["reply_lost"])
