"""trace to a hostPort a NetworkPolicy denies, through Debian's bridge + portmap (root; QA q21 #1).

portmap DNATs n1:18080 to pod a in n1's PREROUTING; a's ingress chain REJECTs the DNATed packet in FORWARD, before
conntrack keeps an entry, and the reset goes back through portmap's conntrack. trace said "REFUSED by n1: no socket
listens on tcp port 18080" (from outside) or "look at the firewall" (from a pod of n1), sending the user after a
listener that is fine. Now as for a nodePort: the DNAT row names portmap's rule, and the result the policy, the
chain and node where the kernel's REJECT counted it; checked against iptables-save's counters and real traffic.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from helpers import in_netns, ipv4_of, netlab
from test_cni_hostport import CONFLIST

pytestmark = pytest.mark.root


def topology(lab: str) -> str:
    return f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: hp.conflist}}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: a, node: n1, labels: {{pod: a}}, containers: [{{name: c, ports: [{{containerPort: 8080, hostPort: 18080}}]}}]}}
  - {{name: b, node: n2, labels: {{pod: b}}}}
  - {{name: c, node: n1, labels: {{pod: c}}}}
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: ext, ip: 203.0.113.10}}]
networkPolicies:
  - name: a-from-b
    spec:
      podSelector: {{matchLabels: {{pod: a}}}}
      ingress: [{{from: [{{podSelector: {{matchLabels: {{pod: b}}}}}}]}}]
"""


def counters(netns: str) -> tuple[int, int]:
    """(packets portmap's DNAT to pod a counted, packets a's ingress chain's TCP REJECT counted), iptables-save -c."""
    text = subprocess.run(["ip", "netns", "exec", netns, "iptables-save", "-c"], check=True, capture_output=True,
                          text=True).stdout.splitlines()

    def count(pattern: str) -> int:
        [line] = [x for x in text if re.search(pattern, x)]
        return int(line[1:].split(":")[0])
    return count(r"-A CNI-DN-\S+ -p tcp .*-j DNAT --to-destination"), \
        count(r"-A NETPOL-IN-\S+ -p tcp .*a-from-b allows it.*REJECT --reject-with tcp-reset")


def test_a_denied_hostport_is_blamed_on_the_policy_after_portmaps_dnat(labs, tmp_path):
    (tmp_path / "hp.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("np")
    labs.up(topology(lab))
    n1 = f"{lab}-n1"
    n1_ip, a_ip = ipv4_of(n1, "eth0"), ipv4_of(f"{lab}-a", "eth0")

    # The kernel: a real connection from ext is refused; portmap's DNAT and a's REJECT count it alike.
    dnat0, reject0 = counters(n1)
    refused = in_netns(f"{lab}-ext", "socat", "-u", f"TCP:{n1_ip}:18080,connect-timeout=5", "-")
    assert refused.returncode != 0 and "Connection refused" in refused.stderr, refused
    dnat1, reject1 = counters(n1)
    assert dnat1 - dnat0 == reject1 - reject0 >= 1, (dnat0, dnat1, reject0, reject1)

    # ext's connect is refused at once by the REJECT's reset (REFUSED); c's reset leaves past the NAT and its
    # connect times out (LOST, the result says why)
    for src, seen, word in (("ext", "203.0.113.10, ext's own address", "REFUSED"),
                            ("c", "pod default/c itself", "LOST")):
        trace = json.loads(netlab("trace", "--lab", lab, src, "n1", "--port", "18080", "-o", "json",
                                  check=False).stdout)
        assert not trace["ok"] and not trace["delivered"], trace
        assert (trace["endpoint"]["endpoint"], trace["endpoint"]["endpoint_ip"], trace["endpoint"]["via"]) == \
            ("a", a_ip, "HostPort"), trace["endpoint"]
        [row] = [h for h in trace["hops"] if h["kind"] == "dnat" and h["netns"] == n1]
        assert "hostPort 18080 of pod a, CNI-HOSTPORT-DNAT → CNI-DN-" in row["decision"], row
        text = netlab("trace", "--lab", lab, src, "n1", "--port", "18080", check=False).stdout
        result = next(line for line in text.splitlines() if line.startswith("result: "))
        assert re.match(r"result: " + word + r" at hop \d+ \(" + n1 + r" \S+\): dropped in node n1, chain NETPOL-IN-\S+, by "
                        r"policy default/a-from-b \(no ingress rule allows it for pod default/a; it comes from "
                        + re.escape(seen) + r"\); the kernel's REJECT rule there counted it", result), text
        assert "no socket listens" not in text and "look at the firewall" not in text, text
    assert counters(n1)[1] >= reject1 + 4  # both traces' packets, each printed twice: the REJECT's
