"""The doctor's vocabulary: which checks there are, their titles and levels, and the line each prints.

netlab/doctor.py runs the checks of a lab's needs (kernel features, tools, the CNI
plugins), netlab/doctor_host.py those of the machine as a whole; both speak in
:class:`Check` lines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from netlab.kernel import features

OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "info"

KERNEL = ("netns", "veth", "bridge", "vxlan", "macvlan", "ipvlan", "vlan", "ifb", "vrf", "vlan_filtering", "ingress",
          "u32", "mirred", "fib_rules", "br_netfilter", "conntrack", "nf_tables", "nf_netdev", "tbf", "htb", "netem",
          "sock_diag", "sctp", "hostport", "multipath")
TOOLS = ("iptables-restore", "conntrack-tool", "dnsmasq", "nft", "tcpdump")
CNI = ("cni-plugins",)
HOST = ("capabilities", "open-files", "neighbours", "fallback-tunnels", "ipv6", "host-devconf", "taskstats",
        "exit-status", "state-dir", "state-space", "container-logs", "pod-files", "install")
CHECKS = KERNEL + TOOLS + CNI + HOST
# What only a CNI conflist's plugins use (doctor_needs.CNI_PLUGIN_NEEDS, kernel/cniprobe.py): checked for a lab that
# needs it, nowhere else (plain `netlab doctor` has no conflist to read).
CNI_FEATURES = features.cniprobe.FEATURES
# What the lab's own features use today, whatever the lab; the rest is needed per lab (needs()). The state folder's
# free space FAILs only when full (under a page), and `up` refuses then; under 1 MiB it is a warning (doctor_host.py).
ALWAYS = {"capabilities", "open-files", "netns", "veth", "bridge", "state-dir", "state-space"}
# What some netlab feature uses: plain `netlab doctor` requires all of it (multipath: topologies/services.yaml's
# LoadBalancer, routed by the internet gateway over a multipath route).
EVERYTHING = ALWAYS | {"vxlan", "br_netfilter", "conntrack", "nf_tables", "iptables-restore", "dnsmasq",
                       "state-space", "nft", "cni-plugins", "multipath", "pod-files"}
# Checks `netlab up` never gates on: advice (a disk that fills up later fails the run itself, which rolls back).
ADVISORY = {"neighbours", "fallback-tunnels", "ipv6", "host-devconf", "taskstats", "exit-status", "htb",
            "tcpdump", "conntrack-tool", "sock_diag", "container-logs", "install"}

TITLES = {**{k: f"kernel {k}" for k in KERNEL}, "netns": "kernel network namespaces",
          **{f"{q}": f"kernel qdisc {q}" for q in features.QDISCS},
          "sctp": "kernel SCTP rules", "hostport": "kernel hostPort rules",
          "multipath": "kernel multipath routes",
          "nf_netdev": "kernel nf_tables netdev hooks",
          "vlan_filtering": "kernel bridge VLAN filtering", "ingress": "kernel qdisc ingress",
          "u32": "kernel tc filter u32", "mirred": "kernel tc action mirred",
          "fib_rules": "kernel policy routing rules",
          **{t: f"tool {t}" for t in TOOLS}, "conntrack-tool": "tool conntrack", "cni-plugins": "tool CNI plugins",
          "capabilities": "host capabilities", "open-files": "host open-files limit",
          "neighbours": "host neighbour table", "fallback-tunnels": "host fallback tunnels", "ipv6": "host IPv6",
          "host-devconf": "host IPv4 settings",
          "taskstats": "host taskstats", "exit-status": "host pidfd exit status",
          "state-dir": "host state directory", "state-space": "host state free space",
          "container-logs": "host container logs", "pod-files": "host pods' /etc files",
          "install": "host netlab install"}


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str
    detail: str
    fix: str = ""
    needed: bool = False
    items: tuple[dict[str, Any], ...] = ()  # the parts of a check of several things (each CNI plugin); empty otherwise

    @property
    def title(self) -> str:
        return TITLES[self.name]

    def line(self) -> str:
        text = f"{self.status:<4}  {self.title}: {self.detail}"
        return text + (f"; fix: {self.fix}" if self.fix and self.status in (FAIL, WARN) else "")

    def to_json(self) -> dict:
        return {"title": self.title, **asdict(self), "items": [dict(i) for i in self.items]}
