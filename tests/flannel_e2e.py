"""Flannel's own golden rule text (flannel-io/flannel e2e/rules.go), for the unit and root tests.

``iptablesPostroutingRules(podCIDR, network, "224.0.0.0/4")`` and
``iptablesForwardRules(network)`` print what ``iptables -t nat -S`` and
``iptables -S FORWARD`` show on a node of a Flannel cluster; these are their
templates, line for line, less the ``-N``/``-P`` lines (``{pod}``: the node's
lease, ``{net}``: the cluster network).
"""

# e2e/rules.go, iptablesPostroutingRules(podCIDR, network, "224.0.0.0/4"), less its "-N FLANNEL-POSTRTG".
FLANNEL_E2E_POSTROUTING = [
    '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s {pod} -d {net} -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s {net} -d {pod} -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG ! -s {net} -d {pod} -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s {net} ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
    '-A FLANNEL-POSTRTG ! -s {net} -d {net} -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
]
# e2e/rules.go, iptablesForwardRules(network): `iptables -S FORWARD` (kube-proxy's jumps, then Flannel's)
# and `iptables -S FLANNEL-FWD`, less the "-P FORWARD ACCEPT" and "-N FLANNEL-FWD" lines.
FLANNEL_E2E_FORWARD = [
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
    "-j KUBE-PROXY-FIREWALL",
    '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" '
    "-j KUBE-EXTERNAL-SERVICES",
    '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
    '-A FLANNEL-FWD -s {net} -m comment --comment "flanneld forward" -j ACCEPT',
    '-A FLANNEL-FWD -d {net} -m comment --comment "flanneld forward" -j ACCEPT',
]
