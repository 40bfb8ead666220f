"""trace quotes kube-proxy's loadBalancerSourceRanges firewall as the kernel holds it, not the topology's list
(root; iptables and nftables modes).

Three ranges, one of them holding the node's address (192.168.122.0/24) and one inside another (203.0.113.10/32 in
203.0.113.8/30): kube-proxy lets the balancer's own IP through too (iptables: one more ``-s 203.0.113.100/32``
rule in KUBE-FW-<hash>; nftables: one more element of the ``ip saddr != { ... } drop`` set), and nft merges and
sorts the set, listing ``{ 192.168.122.0/24, 203.0.113.8/30, 203.0.113.100 }``. trace's explanation of a dropped
outside host quoted the topology's ranges in both modes (qa58k #2).

Whether the firewall drops a packet is the kernel's rules' say too, not the topology's (trl #1): edited by hand
so that they no longer pass an allowed source, the kernel drops it (curl times out; iptables' DROP counts it) and
trace says so, naming the pass the kernel lacks, whose fix lets it through again; in iptables mode without the
DROP, an outside source is not dropped (it goes round between the node and the gateway until its TTL runs out),
and trace names the missing DROP, whose fix drops it again. trace said the opposite of both.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from helpers import as_planned, in_netns, lab_up, netlab, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
services:
  - name: lb
    selector: {{app: web}}
    type: LoadBalancer
    loadBalancerIP: 203.0.113.100
    loadBalancerSourceRanges: [203.0.113.10/32, 192.168.122.0/24, 203.0.113.8/30]
    ports: [{{port: 80, targetPort: 8080}}]
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: outside, ip: 203.0.113.50}}, {{name: inside, ip: 203.0.113.10}}]
"""


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def lab(request, tmp_path_factory):
    name = unique_lab("trf")
    path = write_topology(tmp_path_factory.mktemp(name), TOPOLOGY.format(lab=name, mode=request.param),
                          f"{name}.yaml")
    with lab_up(path, name):
        yield name, request.param, path


@pytest.fixture
def repaired(lab):
    """The lab, put back as planned (`netlab up`) after a test that edits its rules."""
    try:
        yield lab
    finally:
        netlab("up", "-t", lab[2])
        assert as_planned(lab[0])


def curl(lab: str, host: str) -> int:
    """curl's exit code for the host's connection to the LoadBalancer IP: 0 answered, 28 timed out (dropped)."""
    return in_netns(f"{lab}-{host}", "curl", "-s", "-m", "2", "http://203.0.113.100/", timeout=10).returncode


def test_the_firewalls_explanation_quotes_the_kernels_rules(lab):
    lab, mode, _ = lab
    n1 = f"{lab}-n1"
    rc, d = traced(lab, "outside", "svc/lb", "--port", "80")
    assert rc == 1 and d["lost"] is not None and d["lost"]["netns"] == n1, d["lost"]
    reason = d["lost"]["reason"]
    assert "loadBalancerSourceRanges" in reason, reason
    if mode == "nftables":
        listed = in_netns(n1, "nft", "list", "table", "ip", "kube-proxy", check=True).stdout
        held = [line.strip() for line in listed.splitlines() if line.strip().startswith("ip saddr != {")]
        assert held == ["ip saddr != { 192.168.122.0/24, 203.0.113.8/30, 203.0.113.100 } drop"], held
        assert f"'{held[0]}' drops it" in reason, reason
    else:
        saved = in_netns(n1, "iptables-save", "-t", "nat", check=True).stdout
        sources = [m.group(1) for m in re.finditer(r"^-A KUBE-FW-\S+ -s (\S+) .*-j KUBE-EXT-", saved, re.M)]
        assert sources == ["203.0.113.10/32", "192.168.122.0/24", "203.0.113.8/30", "203.0.113.100/32"], saved
        assert f"passes only {', '.join(sources)} on to KUBE-EXT-" in reason, reason


def drop_count(n1: str) -> int:
    saved = in_netns(n1, "iptables-save", "-c", "-t", "filter", check=True).stdout
    line = next(line for line in saved.splitlines() if line.startswith("[") and "-A KUBE-PROXY-FIREWALL " in line)
    return int(line[1:].split(":")[0])


def test_an_allowed_source_the_kernels_rules_no_longer_pass_is_dropped_and_traced_so(repaired):
    """203.0.113.10 is in two of the ranges; the kernel's rules edited so that neither passes it (iptables: both
    KUBE-FW passes deleted; nftables: the chain's set narrowed to 203.0.113.8/31). The kernel drops it; trace
    said it went on undone (iptables), or found nothing missing (nftables)."""
    lab, mode, _ = repaired
    n1 = f"{lab}-n1"
    if mode == "iptables":
        saved = in_netns(n1, "iptables-save", "-t", "nat", check=True).stdout
        passes = [line for line in saved.splitlines() if line.startswith("-A KUBE-FW-")
                  and re.search(r" -s 203\.0\.113\.(10/32|8/30) ", line)]
        assert len(passes) == 2, saved
        for line in passes:
            subprocess.run(["ip", "netns", "exec", n1, "sh", "-c", f"iptables -t nat -D {line[3:]}"], check=True)
        before = drop_count(n1)
    else:
        chain = next(m.group(1) for m in re.finditer(r"chain (firewall-(?!check )\S+) \{",
                                                     in_netns(n1, "nft", "list", "table", "ip", "kube-proxy",
                                                              check=True).stdout))
        in_netns(n1, "nft", f"flush chain ip kube-proxy {chain}; add rule ip kube-proxy {chain} ip saddr != "
                            "{ 192.168.122.0/24, 203.0.113.8/31, 203.0.113.100 } drop", check=True)
    assert curl(lab, "inside") == 28  # what really happens: dropped on n1
    if mode == "iptables":
        assert drop_count(n1) > before  # by KUBE-PROXY-FIREWALL's DROP
    rc, d = traced(lab, "inside", "svc/lb", "--port", "80")
    lost = d["lost"]
    assert rc == 1 and lost is not None and lost["netns"] == n1 and lost["fix"], lost
    assert "dropped by kube-proxy's firewall for Service default/lb, though 203.0.113.10 is in its " \
           "loadBalancerSourceRanges" in lost["reason"], lost["reason"]
    row = next(h for h in d["hops"] if h["index"] == lost["hop"])
    assert row["facts"]["dropped_here"] is True and not any(h["netns"] == f"{lab}-gateway" for h in d["hops"]
                                                            if h["index"] > lost["hop"]), row
    if mode == "iptables":
        assert "KUBE-PROXY-FIREWALL's `-A KUBE-PROXY-FIREWALL -d 203.0.113.100/32 " in lost["reason"], lost
        assert "-s 203.0.113.10/32" in lost["fix"] and "-s 203.0.113.8/30" in lost["fix"], lost["fix"]
    else:
        assert "drops it before any DNAT; kube-proxy's is 'ip saddr != { 192.168.122.0/24, 203.0.113.8/30, " \
               "203.0.113.100 } drop'" in lost["reason"], lost["reason"]
    subprocess.run(["bash", "-c", lost["fix"]], check=True)
    assert as_planned(lab) and curl(lab, "inside") == 0  # the fix lets it through again


def test_iptables_without_the_firewalls_drop_an_outside_source_goes_on_undone_and_traced_so(repaired):
    """KUBE-PROXY-FIREWALL's DROP deleted: nothing drops 203.0.113.50 on n1; undone, it goes out to the gateway,
    which routes the LoadBalancer IP back to n1, round and round until its TTL runs out (an ICMP time exceeded
    comes back). trace said kube-proxy's firewall dropped it."""
    lab, mode, _ = repaired
    if mode != "iptables":
        pytest.skip("nftables mode's firewall drops in its own chain, before any DNAT")
    n1 = f"{lab}-n1"
    saved = in_netns(n1, "iptables-save", "-t", "filter", check=True).stdout
    (drop,) = [line for line in saved.splitlines() if line.startswith("-A KUBE-PROXY-FIREWALL ")]
    subprocess.run(["ip", "netns", "exec", n1, "sh", "-c", f"iptables -t filter -D {drop[3:]}"], check=True)
    assert curl(lab, "outside") == 7  # not dropped: refused at once, by the ICMP time exceeded of the TTL's end
    rc, d = traced(lab, "outside", "svc/lb", "--port", "80")
    lost = d["lost"]
    assert rc == 1 and lost is not None and lost["netns"] == n1, lost
    row = next(h for h in d["hops"] if h["index"] == lost["hop"])
    assert row["facts"]["missing_rule"] == drop and not row["facts"].get("dropped_here"), row["facts"]
    assert "kube-proxy's firewall does not drop it" in lost["reason"], lost["reason"]
    assert any(h["netns"] == f"{lab}-gateway" for h in d["hops"] if h["index"] > lost["hop"]), "it went on"
    # the packets the trace's own capture saw: the time exceeded that came back
    assert any("time exceeded" in e["text"] for e in d["icmp_errors"]), d["icmp_errors"]
    assert lost["fix"].startswith(f"ip netns exec {n1} iptables -t filter -I KUBE-PROXY-FIREWALL "), lost["fix"]
    subprocess.run(["bash", "-c", lost["fix"]], check=True)
    assert as_planned(lab) and curl(lab, "outside") == 28  # dropped again


def test_an_outside_source_a_hands_rule_lets_past_the_firewall_is_not_said_to_be_in_its_ranges(repaired):
    """QA 61 2: a rule put first in nftables' firewall-check (``ip saddr 203.0.113.50 return``) skips the check, so
    203.0.113.50, in none of the ranges, is answered. trace said "its source 203.0.113.50 is in
    loadBalancerSourceRanges ..., which kube-proxy checks here" whenever the Service had ranges."""
    lab, mode, _ = repaired
    if mode != "nftables":
        pytest.skip("the goto chain of the nftables mode's firewall-check is the one a hand's rule skips here")
    n1 = f"{lab}-n1"
    in_netns(n1, "nft", "insert", "rule", "ip", "kube-proxy", "firewall-check", "ip", "saddr", "203.0.113.50",
             "return", check=True)
    assert curl(lab, "outside") == 0  # what really happens: answered
    rc, d = traced(lab, "outside", "svc/lb", "--port", "80")
    assert rc == 0 and d["delivered"] and d["endpoint"] is not None, (d["lost"], d["endpoint"])
    said = d["endpoint"]["path"]  # the LoadBalancer path's words, as the DNAT hop's facts say them too
    assert "its source 203.0.113.50 is in loadBalancerSourceRanges" not in said, said
    assert ("its source 203.0.113.50 is not in loadBalancerSourceRanges 203.0.113.10/32, 192.168.122.0/24, "
            "203.0.113.8/30, yet it was delivered: something bypassed kube-proxy's firewall check") in said, said
