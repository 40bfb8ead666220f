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
