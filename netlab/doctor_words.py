"""What the doctor's lines say beside a check's verdict: why a lab needs a feature or tool, the kernel module
and build options that provide a missing kernel feature, what loading it does besides, and where else it
comes from (netlab/doctor.py judges; netlab/doctor_lines.py names the checks)."""

from __future__ import annotations

from netlab.kernel import features

NETNS_FIX = "run as root on a kernel with CONFIG_NET_NS (network namespaces)"
# A kernel feature netlab lacks: the module modprobe loads for it, and the options that build it into a kernel.
KERNEL_MODULE = {
    "veth": ("veth", "CONFIG_VETH"),
    "bridge": ("bridge", "CONFIG_BRIDGE"),
    "vxlan": ("vxlan", "CONFIG_VXLAN"),
    "macvlan": ("macvlan", "CONFIG_MACVLAN"),
    "ipvlan": ("ipvlan", "CONFIG_IPVLAN"),
    "vlan": ("8021q", "CONFIG_VLAN_8021Q"),
    "ifb": ("ifb", "CONFIG_IFB"),
    "vrf": ("vrf", "CONFIG_NET_VRF"),
    "ingress": ("sch_ingress", "CONFIG_NET_SCH_INGRESS"),
    "u32": ("cls_u32", "CONFIG_NET_CLS_U32"),
    "mirred": ("act_mirred", "CONFIG_NET_CLS_ACT, CONFIG_NET_ACT_MIRRED"),
    "br_netfilter": ("br_netfilter", "CONFIG_BRIDGE_NETFILTER"),
    "conntrack": ("nf_conntrack_netlink", "CONFIG_NF_CONNTRACK, CONFIG_NF_CT_NETLINK"),
    "nf_tables": ("nf_tables", "CONFIG_NF_TABLES"),
    "nf_netdev": ("nft_numgen", "CONFIG_NF_TABLES_NETDEV, CONFIG_NETFILTER_INGRESS, CONFIG_NETFILTER_EGRESS, "
                                "CONFIG_NFT_NUMGEN"),
    "sock_diag": ("inet_diag", "CONFIG_INET_DIAG, CONFIG_INET_TCP_DIAG, CONFIG_INET_UDP_DIAG"),
    "sctp": ("xt_sctp", "CONFIG_NETFILTER_XT_MATCH_SCTP (iptables' legacy backend; nft's needs only nf_tables)"),
    **{q: (f"sch_{q}", f"CONFIG_NET_SCH_{q.upper()}") for q in features.QDISCS},
    # portmap's rules for a builtin lab's hostPorts (doctor_netfilter.HOSTPORT_RULES), one part each
    "hostport:multiport": ("xt_multiport", "CONFIG_NETFILTER_XT_MATCH_MULTIPORT"),
    "hostport:addrtype": ("xt_addrtype", "CONFIG_NETFILTER_XT_MATCH_ADDRTYPE"),
    "hostport:mark": ("xt_mark", "CONFIG_NETFILTER_XT_MARK"),
    "hostport:MASQUERADE": ("xt_MASQUERADE", "CONFIG_NETFILTER_XT_TARGET_MASQUERADE"),
    "hostport:DNAT": ("xt_nat", "CONFIG_NETFILTER_XT_NAT"),
}
# Kernel features no module gives: the options that build them in, and why modprobe cannot help.
KERNEL_BUILT_IN = {
    "vlan_filtering": ("CONFIG_BRIDGE_VLAN_FILTERING and CONFIG_VLAN_8021Q",
                       "VLAN filtering is an option the bridge was built with, not a module"),
    "fib_rules": ("CONFIG_IP_MULTIPLE_TABLES", "policy routing is part of the kernel's IPv4 routing, not a module"),
    "multipath": ("CONFIG_IP_ROUTE_MULTIPATH", "multipath routing is part of the kernel's IPv4 routing, not a module, "
                                               "and fib_multipath_hash_fields came with Linux 5.12"),
}
# The kernel release a feature came with (doctor_verdict.fix_words says it beside the build option).
KERNEL_RELEASE = {"multipath": "5.12"}
# What loading the module does besides.
KERNEL_NOTE = {
    "br_netfilter": "note: this also makes the host's own bridges call iptables, net.bridge.bridge-nf-call-iptables=1 "
                    "in the host",
}
# Where the module comes from when the kernel's own package leaves it out.
KERNEL_PACKAGE = {q: "on Ubuntu in linux-modules-extra-$(uname -r)" for q in features.QDISCS}
KERNEL_OTHERWISE = {"vxlan": "or use network.mode: host-gw",
                    "nf_tables": "or use the legacy backend: NETLAB_IPTABLES=legacy"}
WHY = {
    "br_netfilter": "same-node Service traffic and NetworkPolicies between pods of one node cannot pass iptables "
                    "without it",
    "tbf": "needed only for rate impairments (impair: rate)",
    "htb": "netlab shapes rates with tbf; htb is not used",
    "netem": "needed only for delay and jitter impairments (impair: delay; loss is an nftables netdev rule)",
    "nf_netdev": "needed only for loss impairments (impair: loss): an nftables rule on a device's ingress or egress "
                 "hook drops that share of the frames",
    "nft": "needed only for kube-proxy's nftables mode (cluster.kubeProxyMode: nftables) and loss impairments; "
           "tests and learners run it too",
    "conntrack-tool": "netlab itself does not run it (it reads, deletes and inserts conntrack entries over the "
                      "kernel's ctnetlink), learners and tests do",
    "conntrack": "netlab up needs it only for a lab with NAT rules or Services (it deletes stale UDP entries), but "
                 "trace (any lab), quiz and inspect's conntrack section read the conntrack table through it "
                 "(ctnetlink), and break conntrack-stale-entry inserts an entry through it",
    "tcpdump": "netlab itself does not run it, learners and tests do",
    "sock_diag": "needed only for trace to say what listens where a packet was refused, and inspect's sockets",
    "cni-plugins": "needed only for network.cni: reference or a conflist (pods attached by CNI plugins)",
    "sctp": "needed only for NetworkPolicies with SCTP ports",
    "hostport": "needed only for pods' hostPorts in a builtin lab (portmap's nat rules, which netlab writes there)",
    **{k: f"needed only for a conflist with the {k} plugin" for k in ("macvlan", "ipvlan", "vlan", "vrf")},
    **{k: "needed only for the bandwidth plugin's egress rates" for k in ("ifb", "ingress", "u32", "mirred")},
    "vlan_filtering": "needed only for a conflist whose bridge plugin has a vlan or vlanTrunk (a vlanTrunk only where "
                      "the plugin reads it: v1.3.0 and on, not Debian 12's 1.1.1)",
    "fib_rules": "needed only for a conflist with the sbr plugin",
    "multipath": "needed only for LoadBalancer Services of a lab with an internet: section (the gateway routes "
                 "their IPs to the nodes over one multipath route, hashing each connection's addresses and ports)",
}
