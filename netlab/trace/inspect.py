"""What ``netlab inspect`` shows for one namespace: what the tutorials show, read from the kernel.

Links with their veth peers (from the lab's plan: the kernel only knows a
peer's ifindex in another namespace), addresses, the main routing table,
neighbours (ARP), FDB entries (VXLAN remote VTEPs, learned bridge MACs),
bridge ports, the sysctls that decide forwarding, the lab's own iptables
chains with their packet counters, and conntrack entries. Each section of the
text (cli/trace.py) names the command that shows the same.
"""

from __future__ import annotations

import re
import subprocess
from ipaddress import IPv4Interface
from typing import Any

from netlab.errors import EnvironmentNotReady
from netlab.kernel import conntrack, iptables, netns as nsmod
from netlab.trace.kernel import LiveKernel
from netlab.trace.labmap import LabMap

LAB_CHAIN = re.compile(r"^(KUBE-|FLANNEL-|NETLAB-)")
RULE = re.compile(r"^(\[\d+:\d+\] )?-A (\S+)(.*)$")
SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.ipv4.conf.all.rp_filter")


def inspect(netns: str, lab: LabMap | None = None, conntrack_limit: int = 200) -> dict[str, Any]:
    """What the tutorials show for one namespace, as plain data."""
    with LiveKernel() as k:
        links = sorted(k.links(netns).items(), key=lambda kv: kv[1].index)
        out_links = []
        for name, link in links:
            peer = lab.peers.get((netns, name)) if lab else None
            item: dict[str, Any] = {"name": name, "index": link.index,
                                    "kind": link.kind or ("loopback" if name == "lo" else None),
                                    "state": "UP" if link.up else "DOWN", "mac": link.mac, "mtu": link.mtu,
                                    "master": link.master,
                                    "peer": {"netns": peer[0], "name": peer[1]} if peer else None,
                                    "addresses": list(link.addresses)}
            if link.hairpin is not None:
                item["hairpin"] = link.hairpin
            if link.vxlan:
                v = link.vxlan
                item["vxlan"] = {"vni": v.vni, "port": v.port, "local": v.local, "dev": v.dev, "learning": v.learning}
            out_links.append(item)
        addresses = [{"dev": name, "address": a, "network": str(IPv4Interface(a).network)}
                     for name, link in links for a in link.addresses]
        fdb = [{"mac": e.lladdr, "dev": e.dev, "master": e.master, "dst": e.dst, "state": e.state, "self": e.self_,
                "text": e.text()}
               for e in k.fdb(netns) if not (int(e.lladdr.split(":")[0], 16) & 1)]  # multicast entries: noise
        data = {
            "netns": netns,
            "what": lab.where(netns) if lab else netns,
            "links": out_links,
            "addresses": addresses,
            "routes": k.routes(netns),
            "neighbours": k.neighbours(netns),
            "fdb": fdb,
            "bridge_ports": k.bridge_ports(netns),
        }
    with nsmod.entered(netns):
        data["sysctls"] = {key: nsmod.read_sysctl_here(key) for key in SYSCTLS}
    data["iptables"] = lab_iptables(netns)
    try:
        lines = conntrack.list_entries(netns)
    except (EnvironmentNotReady, OSError, subprocess.SubprocessError) as exc:
        lines = [f"(conntrack unavailable: {exc})"]  # say so instead of failing the whole inspect
    data["conntrack"] = lines[:conntrack_limit]
    data["conntrack_total"] = len(lines)
    return data


def lab_iptables(netns: str) -> dict[str, list[str]]:
    """``iptables-save -c``, only the lab's chains (KUBE-*, FLANNEL-*, NETLAB-*) and the jumps into them."""
    try:
        text = iptables.save(netns, counters=True)
    except iptables.IptablesError:
        return {}
    tables: dict[str, list[str]] = {}
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            continue
        if table is None or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith(":"):
            if LAB_CHAIN.match(line[1:]):
                tables.setdefault(table, []).append(line)
            continue
        m = RULE.match(line)
        if not m:
            continue
        chain, rest = m.group(2), m.group(3)
        target = re.search(r" -[jg] (\S+)", rest)
        if LAB_CHAIN.match(chain) or (target and LAB_CHAIN.match(target.group(1))):
            tables.setdefault(table, []).append(line)
    return tables
