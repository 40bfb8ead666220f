"""trace names a drop made outside the lab's own rules, on a real lab (root): an nftables table made by hand in a
node (a drop rule at the forward hook), and a DROP in the destination pod's own INPUT chain. Each is made by hand,
traced (exit 1, the culprit named with its fix), fixed with the printed command and traced again (exit 0).

trace said "look at the firewall: netlab inspect ... (iptables counters)" of the first, where neither shows the
table, and "delivered ... sent no reply" of the second, which blames the application.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from helpers import in_netns, netlab

pytestmark = pytest.mark.root
PORT = 8080


def _topology(lab: str) -> str:
    return f"""name: {lab}
network: {{mode: vxlan}}
nodes: [{{name: n1}}, {{name: n2}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n2}}]
"""


def trace(lab: str, port: int = PORT) -> subprocess.CompletedProcess:
    return netlab("trace", "--lab", lab, "a", "b", "--proto", "tcp", "--port", str(port), check=False, timeout=60)


def fix_of(text: str) -> str:
    m = re.search(r"^  fix: (ip netns exec \S+ (?:nft|iptables) [^\n]*?)(?:   \(or: .*)?$", text, re.M)
    assert m is not None, text
    return m.group(1)


def run_fix(command: str) -> None:
    subprocess.run(["sh", "-c", command], check=True)


@pytest.mark.parametrize("arp", [False, True])
def test_a_foreign_nft_tables_drop_in_a_node_is_named_with_its_fix(labs, arp):
    """arp: the node knows b's MAC already (the trace said "look at the firewall ... iptables counters"); else it
    never asked (it said "the packet did not get here?")."""
    lab = labs.name("fd")
    labs.up(_topology(lab))
    n2 = f"{lab}-n2"
    b_ip = in_netns(f"{lab}-b", "ip", "-4", "-o", "addr", "show", "eth0", check=True).stdout.split()[3].split("/")[0]
    in_netns(n2, "nft", "add", "table", "inet", "fdx", check=True)
    in_netns(n2, "nft", "add", "chain", "inet", "fdx", "fw", "{ type filter hook forward priority -10; }", check=True)
    in_netns(n2, "nft", "add", "rule", "inet", "fdx", "fw", "ip", "daddr", b_ip, "tcp", "dport", str(PORT), "drop",
             check=True)
    if arp:
        in_netns(n2, "ping", "-c1", "-W1", b_ip, check=True)
    proc = trace(lab)
    assert proc.returncode == 1, proc.stdout
    result = next(line for line in proc.stdout.splitlines() if line.startswith("result:"))
    assert f"table inet fdx in {n2}, an nftables table the lab does not plan (status calls it extra), drops the " \
           "packet at the forward hook: chain fw, rule handle" in result, proc.stdout
    assert "iptables counters" not in proc.stdout
    fix = fix_of(proc.stdout)
    assert re.fullmatch(rf"ip netns exec {n2} nft delete rule inet fdx fw handle \d+", fix), fix
    run_fix(fix)
    proc = trace(lab)
    assert proc.returncode == 0, proc.stdout


def test_a_drop_in_the_destination_pods_own_input_chain_is_named_with_its_fix(labs):
    lab = labs.name("fd")
    labs.up(_topology(lab))
    b = f"{lab}-b"
    in_netns(b, "iptables", "-I", "INPUT", "-p", "tcp", "--dport", str(PORT), "-j", "DROP", check=True)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "extra rule: -A INPUT -p tcp -m tcp --dport 8080 -j DROP" in status.stdout
    proc = trace(lab)
    assert proc.returncode == 1, proc.stdout
    assert "sent no reply" not in proc.stdout and "delivered to b" not in proc.stdout, proc.stdout
    assert re.search(r"result: LOST at hop \d+ \(\S+-b eth0\): a rule netlab did not write in pod b's filter chain "
                     r"INPUT dropped the packet after it arrived, before any socket saw it: "
                     r"`-A INPUT -p tcp -m tcp --dport 8080 -j DROP`", proc.stdout), proc.stdout
    assert "!! a rule netlab did not write in pod b's filter chain INPUT" in proc.stdout  # on the delivery row
    fix = fix_of(proc.stdout)
    assert fix == f"ip netns exec {b} iptables -D INPUT -p tcp -m tcp --dport 8080 -j DROP"
    run_fix(fix)
    proc = trace(lab)
    assert proc.returncode == 0 and "!!" not in proc.stdout, proc.stdout
    # The rule's INPUT chain, which iptables-nft made for it, stays hooked and empty: a fresh lab has none, so
    # status names it and up deletes it (docs/reliability.md, iptables-nft's built-in chains)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "filter INPUT: hooked, empty, policy ACCEPT" in status.stdout, status.stdout
    netlab("up", "--lab", lab)
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def _ping_trace(lab: str) -> subprocess.CompletedProcess:
    return netlab("trace", "--lab", lab, "a", "b", check=False, timeout=60)


def test_an_nft_icmp_type_drop_in_the_destination_pods_input_is_named_with_its_fix(labs):
    """`icmp type echo-request drop` at b's input hook, as a learner writes it: trace said "delivered ... NO
    REPLY: b sent no reply" (blaming the pod), not reading the rule's icmp type match; a rule it cannot judge
    (ct state, no counter) is said to maybe drop it, named."""
    lab = labs.name("fd")
    labs.up(_topology(lab))
    b = f"{lab}-b"
    in_netns(b, "nft", "add", "table", "inet", "fdt", check=True)
    in_netns(b, "nft", "add", "chain", "inet", "fdt", "in", "{ type filter hook input priority 0; }", check=True)
    in_netns(b, "nft", "add", "rule", "inet", "fdt", "in", "icmp", "type", "echo-request", "drop", check=True)
    b_ip = in_netns(b, "ip", "-4", "-o", "addr", "show", "eth0", check=True).stdout.split()[3].split("/")[0]
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W1", b_ip).returncode == 1  # the kernel drops it
    proc = _ping_trace(lab)
    assert proc.returncode == 1, proc.stdout
    assert "sent no reply" not in proc.stdout, proc.stdout
    result = next(line for line in proc.stdout.splitlines() if line.startswith("result:"))
    assert f"table inet fdt in {b}, an nftables table the lab does not plan (status calls it extra), drops the " \
           "packet at the input hook: chain in, rule handle" in result, proc.stdout
    fix = fix_of(proc.stdout)
    assert re.fullmatch(rf"ip netns exec {b} nft delete rule inet fdt in handle \d+", fix), fix
    run_fix(fix)
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W2", b_ip).returncode == 0
    assert _ping_trace(lab).returncode == 0
    # A rule trace cannot judge (a ct mark match) with no counter: it may drop the packet, and is named.
    in_netns(b, "nft", "add", "rule", "inet", "fdt", "in", "ct", "mark", "0", "drop", check=True)
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W1", b_ip).returncode == 1
    proc = _ping_trace(lab)
    assert proc.returncode == 1 and "sent no reply" not in proc.stdout, proc.stdout
    result = next(line for line in proc.stdout.splitlines() if line.startswith("result:"))
    assert f"table inet fdt in {b}, an nftables table the lab does not plan (status calls it extra), may drop the " \
           "packet at the input hook: chain in, rule handle" in result and "cannot judge" in result, proc.stdout
    run_fix(fix_of(proc.stdout))
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W2", b_ip).returncode == 0
