"""What the doctor commits with ``nft -f`` in its throwaway namespace (kernel/features.py frees it with everything
in it): the objects kube-proxy's nftables mode and loss impairments use, each in miniature."""

# kube-proxy's nftables objects in miniature (plan/nftables.py): a verdict map keyed ip . proto . port, a
# numgen vmap, a dynamic set with a timeout and its update, DNAT, a reject, masquerade fully-random, committed
# for real in the throwaway namespace (which the kernel frees with it): the kernel has what nftables mode needs.
KUBE_PROXY_SHAPE = "; ".join((
    "add table ip netlab-doctor",
    "add set ip netlab-doctor aff { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }",
    "add map ip netlab-doctor ips { type ipv4_addr . inet_proto . inet_service : verdict ; }",
    "add chain ip netlab-doctor nat { type nat hook prerouting priority -100 ; }",
    "add chain ip netlab-doctor post { type nat hook postrouting priority 100 ; }",
    "add chain ip netlab-doctor filter { type filter hook forward priority 0 ; }",
    "add chain ip netlab-doctor ep",
    "add rule ip netlab-doctor nat ip daddr . meta l4proto . th dport vmap @ips",
    "add rule ip netlab-doctor nat numgen random mod 2 vmap { 0 : goto ep, 1 : goto ep }",
    "add rule ip netlab-doctor ep update @aff { ip saddr }",
    "add rule ip netlab-doctor ep meta l4proto tcp dnat to 10.0.0.1:80",
    "add rule ip netlab-doctor filter ct state new ip daddr 10.96.0.0/12 reject",
    "add rule ip netlab-doctor post mark and 0x00004000 == 0 return",
    "add rule ip netlab-doctor post masquerade fully-random",
))


# Impairments' loss in miniature (plan/impair.py): netdev chains on the ingress and the egress hook of a device, a
# numgen random draw, a counter and a drop, committed in the throwaway namespace (freed with it), on its lo.
NETDEV_SHAPE = "; ".join((
    "add table netdev netlab-doctor",
    'add chain netdev netlab-doctor in { type filter hook ingress device "lo" priority 0 ; }',
    'add chain netdev netlab-doctor out { type filter hook egress device "lo" priority 0 ; }',
    "add rule netdev netlab-doctor in numgen random mod 1000000000 < 1 counter drop",
    "add rule netdev netlab-doctor out numgen random mod 1000000000 < 1 counter drop",
))
