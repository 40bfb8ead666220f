"""The sysctls of every lab namespace, by role: what makes a namespace a host, a router or a switch."""

from __future__ import annotations

# ARP as a new namespace has it on a host left at the kernel's defaults: 0 for each, and the lab keeps them.
ARP_SYSCTLS = ("arp_ignore", "arp_announce", "arp_filter")
# Every lab namespace: no IPv6 (keeps captures and neighbour tables to what the
# tutorials show), reverse-path filtering off, and ARP as above. A new
# namespace copies its IPv4 "all" and "default" settings from the host's (Linux
# does, unless net.core.devconf_inherit_init_net=2), so a host with rp_filter
# on, or tuned for IPVS or LVS (arp_ignore=1, arp_announce=2), would otherwise
# make every lab filter and answer ARP its way. "default" is written before any
# link exists: each link copies it.
COMMON_SYSCTLS = (
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    *((f"net.ipv4.conf.{which}.{key}", "0") for which in ("all", "default") for key in ARP_SYSCTLS),
)
# Routers forward: nodes (between cni0, flannel.1 and eth0), the internet gateway, the load balancer.
ROUTER_SYSCTLS = (("net.ipv4.ip_forward", "1"),)
# Hosts and switches do not: pods, internet hosts, the underlay (a plain switch).
HOST_SYSCTLS = (("net.ipv4.ip_forward", "0"),)
# Bridged frames (pod to pod on one cni0) must pass iptables, or a reply from a
# same-node endpoint bypasses conntrack and never gets its DNAT undone. The
# sysctl is per network namespace (Linux >= 5.3), so the Services' plan sets it in
# the nodes only; it exists when br_netfilter is loaded (see netlab.services.lifecycle).
BRIDGE_NF_SYSCTL = ("net.bridge.bridge-nf-call-iptables", "1")
