"""The sysctls of every lab namespace, by role: what makes a namespace a host, a router or a switch."""

from __future__ import annotations

# Every lab namespace: no IPv6 (keeps captures and neighbour tables to what the
# tutorials show), and reverse-path filtering off (a new namespace copies
# rp_filter from the host's "all"/"default", which would make results depend
# on the host).
COMMON_SYSCTLS = (
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
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
# What the kernel starts every namespace and interface with, and the lab keeps: 0 for each.
ARP_SYSCTLS = ("arp_ignore", "arp_announce", "arp_filter")
