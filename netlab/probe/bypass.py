"""NetworkPolicy flows a node's bridge let through: with bridge-nf-call-iptables = 0, a frame the bridge
switches from pod to pod never reaches iptables, where the policies' rules are (FORWARD), so a flow they deny
between two pods of that node connects, as on a real node without br_netfilter. ``probe`` and ``policy
table`` say so in a hint, naming the node, the fix and a trace to run.
"""

from __future__ import annotations

from netlab.errors import netlab_command
from netlab.model.lab import Lab

Opened = tuple[str, str, str, "int | None"]  # a denied flow that got through: source, destination, proto, port


def hints(lab: Lab, opened: list[Opened], unfiltered: set[str]) -> list[str]:
    """A line per node whose bridge switches frames past iptables (``unfiltered``: the nodes' namespaces with
    bridge-nf-call-iptables = 0) and between whose pods flows the policies deny got through (``opened``): the
    policies' rules are in FORWARD, which such a frame never reaches."""
    from netlab.workload.reconfigure import repair_command

    node_of = {p.name: p.node for p in lab.pods}
    out = []
    for node in lab.nodes:
        if node.netns not in unfiltered:
            continue
        mine = [o for o in opened if node_of.get(o[0]) == node_of.get(o[1]) == node.name and o[0] != o[1]]
        if mine:
            src, dst, proto, port = mine[0]
            how = f" --proto {proto} --port {port}" if proto != "icmp" else ""
            out.append(f"{len(mine)} denied flows between pods of node {node.name} got through: its "
                       f"net.bridge.bridge-nf-call-iptables is 0, so its bridge switches their frames without "
                       f"iptables, past the policies' rules (fix: ip netns exec {node.netns} sysctl -w "
                       f"net.bridge.bridge-nf-call-iptables=1, or {repair_command(lab.name)}; see: "
                       f"{netlab_command(f'trace --lab {lab.name} {src} {dst}{how}')})")
    return out


def unfiltered_nodes(lab: Lab) -> set[str]:
    """The nodes' namespaces whose bridge-nf-call-iptables is not 1, as the kernel says."""
    from netlab.kernel import netns as nsmod, procsys

    out = set()
    for node in lab.nodes:
        try:
            with nsmod.entered(node.netns):
                if procsys.read_sysctl_here("net.bridge.bridge-nf-call-iptables") != "1":
                    out.add(node.netns)
        except OSError:
            continue  # the node is gone: its own line says so elsewhere
    return out
