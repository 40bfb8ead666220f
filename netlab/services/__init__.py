"""Services beyond the iptables rules: cluster DNS and the lifecycle hooks (resolv.conf, hosts, conntrack).

The rules themselves are planned in netlab.plan.services (nodes) and
netlab.plan.internet (gateway, load balancer) and applied by
netlab.realize.netfilter.
"""
