"""A nodePort's refusals, deleted or edited by hand on a real node, in both modes (root): trace judges them from the
rules the kernel holds, not from the plan.

n2 has no endpoint of web (externalTrafficPolicy Local: kube-proxy drops an outside client's packet to its
nodePort, 30081) and Service empty has none at all (its nodePort 30082 is refused: ICMP port unreachable). With
the DROP or the REJECT gone, the internet host's connection is answered by n2's own stack (a TCP reset: nothing
listens there): trace names the rule (map element) the kernel lacks and the command that puts it back, which
brings the refusal back; `up` puts the lab back whatever happens.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import as_planned, in_netns, ipv4_of, lab_up, traced, unique_lab, write_topology
from nodeport_refusals_lab import TOPOLOGY

pytestmark = pytest.mark.root

DROP = ["-p", "tcp", "-m", "comment", "--comment", "default/web has no local endpoints", "-m", "addrtype",
        "--dst-type", "LOCAL", "-m", "tcp", "--dport", "30081", "-j", "DROP"]
REJECT = ["-p", "tcp", "-m", "comment", "--comment", "default/empty has no endpoints", "-m", "addrtype",
          "--dst-type", "LOCAL", "-m", "tcp", "--dport", "30082", "-j", "REJECT", "--reject-with",
          "icmp-port-unreachable"]


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def live(request, tmp_path_factory):
    lab, mode = unique_lab("trn"), request.param
    path = write_topology(tmp_path_factory.mktemp(f"np-{mode}"), TOPOLOGY.format(lab=lab, mode=mode), f"{lab}.yaml")
    with lab_up(path, lab):
        yield {"name": lab, "path": path, "mode": mode, "n2": f"{lab}-n2", "client": f"{lab}-client",
               "ip": ipv4_of(f"{lab}-n2", "eth0")}


def curl(live, port: int) -> int:
    """curl's exit code for the internet host's connection to n2's nodePort: 7 refused (a reset or an ICMP port
    unreachable), 28 timed out (dropped)."""
    return in_netns(live["client"], "curl", "-s", "-m", "2", f"http://{live['ip']}:{port}/", timeout=10).returncode


def trace(live, port: int) -> tuple[int, dict]:
    return traced(live["name"], "client", live["ip"], "--port", str(port))


def unreachable(d: dict) -> bool:
    return any("port unreachable" in e["text"] for e in d["icmp_errors"])


def test_a_local_nodeports_drop_deleted_or_edited_by_hand_is_named_and_its_fix_drops_again(repaired):
    n2, mode = repaired["n2"], repaired["mode"]
    assert curl(repaired, 30081) == 28  # as planned: dropped on n2
    if mode == "iptables":  # edited: the DROP made an ACCEPT
        listed = in_netns(n2, "iptables", "-S", "KUBE-EXTERNAL-SERVICES", check=True).stdout.splitlines()
        at = next(i for i, line in enumerate(listed) if "--dport 30081 -j DROP" in line)  # line 0 is -N
        in_netns(n2, "iptables", "-R", "KUBE-EXTERNAL-SERVICES", str(at), *DROP[:-1], "ACCEPT", check=True)
    else:
        in_netns(n2, "nft", "delete", "element", "ip", "kube-proxy", "no-endpoint-nodeports", "{ tcp . 30081 }",
                 check=True)
    assert curl(repaired, 30081) == 7  # what really happens: n2's own stack resets it
    rc, d = trace(repaired, 30081)
    lost = d["lost"]
    assert rc == 1 and lost["netns"] == n2 and lost["fix"], lost
    assert "externalTrafficPolicy Local and no endpoint on n2" in lost["reason"], lost["reason"]
    assert "not drop this packet" in lost["reason"] and "port 30081, where no socket listens" in lost["reason"]
    row = next(h for h in d["hops"] if h["index"] == lost["hop"])
    assert row["facts"]["no_local_endpoints"] is True and row["facts"].get("dropped_here") is None, row["facts"]
    if mode == "iptables":
        assert "missing from n2's filter table" in lost["reason"] and "--dport 30081 -j DROP`" in lost["reason"]
        assert lost["fix"].startswith(f"ip netns exec {n2} iptables -t filter -I KUBE-EXTERNAL-SERVICES "), lost
        in_netns(n2, "iptables", "-D", "KUBE-EXTERNAL-SERVICES", *DROP[:-1], "ACCEPT", check=True)  # the edit out
    else:
        assert "`tcp . 30081 comment \"default/web\" : drop` of map no-endpoint-nodeports" in lost["reason"]
        assert lost["fix"] == (f"ip netns exec {n2} nft 'add element ip kube-proxy no-endpoint-nodeports "
                               "{ tcp . 30081 comment \"default/web\" : drop }'"), lost["fix"]
    subprocess.run(["bash", "-c", lost["fix"]], check=True)
    assert as_planned(repaired["name"])
    assert curl(repaired, 30081) == 28  # dropped again
    rc, d = trace(repaired, 30081)
    row = next(h for h in d["hops"] if h["index"] == d["lost"]["hop"])
    assert rc == 1 and not d["lost"].get("fix") and "no local endpoints" in row["decision"], d["lost"]


def test_a_nodeports_reject_for_a_service_without_endpoints_deleted_by_hand_is_named_and_its_fix_works(repaired):
    n2, mode = repaired["n2"], repaired["mode"]
    rc, d = trace(repaired, 30082)
    assert rc == 1 and unreachable(d) and not d["lost"].get("fix"), d["lost"]  # as planned: refused by n2's rule
    if mode == "iptables":
        in_netns(n2, "iptables", "-D", "KUBE-EXTERNAL-SERVICES", *REJECT, check=True)
        save = in_netns(n2, "iptables-save", "-t", "filter", check=True).stdout
        assert "--dport 30082" not in save
    else:
        in_netns(n2, "nft", "delete", "element", "ip", "kube-proxy", "no-endpoint-nodeports", "{ tcp . 30082 }",
                 check=True)
    rc, d = trace(repaired, 30082)
    lost = d["lost"]
    assert rc == 1 and lost["netns"] == n2 and lost["fix"] and not unreachable(d), (lost, d["icmp_errors"])
    assert "Service default/empty has no endpoints" in lost["reason"] and "not refuse this packet" in lost["reason"]
    assert "port 30082, where no socket listens" in lost["reason"]
    if mode == "iptables":
        assert lost["fix"] == (f"ip netns exec {n2} iptables -t filter -I KUBE-EXTERNAL-SERVICES 2 -p tcp -m comment "
                               "--comment 'default/empty has no endpoints' -m addrtype --dst-type LOCAL -m tcp "
                               "--dport 30082 -j REJECT --reject-with icmp-port-unreachable"), lost["fix"]
    else:
        assert "element no-endpoint-nodeports" not in lost["reason"] and "30082" in lost["fix"], lost
    subprocess.run(["bash", "-c", lost["fix"]], check=True)
    assert as_planned(repaired["name"])
    rc, d = trace(repaired, 30082)  # refused by kube-proxy's rule again: the ICMP error is back
    assert rc == 1 and unreachable(d) and not d["lost"].get("fix"), d["lost"]
