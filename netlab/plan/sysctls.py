"""The sysctls of every lab namespace, by role: what makes a namespace a host, a router or a switch."""

from __future__ import annotations

from netlab.model.sysctl_names import conf_name, interface_of

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
# The other IPv4 settings a new namespace copies from the host's "all" and "default", with the values the
# kernel gives them (net/ipv4/devinet.c: ipv4_devconf, ipv4_devconf_dflt), as (all, default). A host that
# changed one of them (a Kubernetes node: kube-proxy's route_localnet=1; a router: send_redirects=0; a VPN
# gateway: proxy_arp=1) would make every lab namespace do so too. netlab looks once per `up` at what a new
# namespace gets (kernel/features.py: inherited_devconf); those that differ from these values are written
# back to them in every namespace, beside COMMON_SYSCTLS, and the lab's state records which
# (:func:`restore_sysctls`), so that `status` checks them. On a host left at the kernel's values none is.
# ip_forward (all's forwarding) is every namespace's own sysctl already; rp_filter and ARP are always written.
# These are a namespace's values while it does not forward; one that forwards has FORWARDING_DEVCONF's instead.
KERNEL_DEVCONF: dict[str, tuple[str, str]] = {
    "accept_local": ("0", "0"),
    "accept_redirects": ("1", "1"),
    "accept_source_route": ("0", "1"),
    "arp_accept": ("0", "0"),
    "arp_evict_nocarrier": ("1", "1"),
    "arp_notify": ("0", "0"),
    "bc_forwarding": ("0", "0"),
    "bootp_relay": ("0", "0"),
    "disable_policy": ("0", "0"),
    "disable_xfrm": ("0", "0"),
    "drop_gratuitous_arp": ("0", "0"),
    "drop_unicast_in_l2_multicast": ("0", "0"),
    "ignore_routes_with_linkdown": ("0", "0"),
    "log_martians": ("0", "0"),
    "promote_secondaries": ("0", "0"),
    "proxy_arp": ("0", "0"),
    "proxy_arp_pvlan": ("0", "0"),
    "route_localnet": ("0", "0"),
    "secure_redirects": ("1", "1"),
    "send_redirects": ("1", "1"),
    "shared_media": ("1", "1"),
    "src_valid_mark": ("0", "0"),
}


# A namespace's ip_forward (all's forwarding), which moves one of those settings (below).
FORWARD_SYSCTL = "net.ipv4.ip_forward"
# What the kernel gives a namespace that forwards: writing ip_forward (a change of it) sets all.accept_redirects
# to its opposite (net/ipv4/devinet.c: inet_forward_change; a router takes no ICMP redirects), default's stays.
# A host that forwards (Docker's, a CI VM's, a Kubernetes node's) has all.accept_redirects=0 for that reason, and
# a new namespace copies it with ip_forward=1: that is the kernel's value of a forwarding namespace, not a tuned
# one. A namespace the plan makes forward (nodes, the gateway, the load balancer, pods) ends with these values
# whatever the host has, one that does not with KERNEL_DEVCONF's (:func:`kernel_devconf`).
FORWARDING_DEVCONF: dict[str, tuple[str, str]] = {"accept_redirects": ("0", "1")}


def kernel_devconf(key: str, forwards: bool) -> tuple[str, str]:
    """The kernel's ("all", "default") values of one setting, in a namespace that forwards or does not."""
    return FORWARDING_DEVCONF.get(key, KERNEL_DEVCONF[key]) if forwards else KERNEL_DEVCONF[key]


def devconf_keys(key: str) -> tuple[str, str]:
    """The sysctls of one setting, for "all" and "default"."""
    return f"net.ipv4.conf.all.{key}", f"net.ipv4.conf.default.{key}"


# The sysctls a change of ip_forward writes too (all's of FORWARDING_DEVCONF).
MOVED_BY_FORWARD = tuple(devconf_keys(key)[0] for key in FORWARDING_DEVCONF)
# The state's record (state.extra) of the settings a lab sets back, a list of KERNEL_DEVCONF's keys.
RESTORED = "restored_devconf"
# Every sysctl of KERNEL_DEVCONF, "all" and "default", and ip_forward: what is read of a new namespace.
DEVCONF_SYSCTLS = (*(name for key in KERNEL_DEVCONF for name in devconf_keys(key)), FORWARD_SYSCTL)


def forwards(found: dict[str, str | None]) -> bool:
    """Whether a namespace read (sysctl -> value) forwards."""
    return found.get(FORWARD_SYSCTL) == "1"


def to_restore(found: dict[str, str | None], recorded: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The settings a lab's namespaces set back, in KERNEL_DEVCONF's order: those ``recorded`` before (its
    older namespaces have them set back; the lab keeps checking them) and those whose value in a new
    namespace (``found``: sysctl -> value, None where this kernel has no such file) is not the kernel's
    for a namespace that forwards as it does (a forwarding host's all.accept_redirects=0 is the kernel's)."""
    out = []
    for key in KERNEL_DEVCONF:
        got = tuple(found.get(name) for name in devconf_keys(key))
        if key in recorded or (None not in got and got != kernel_devconf(key, forwards(found))):
            out.append(key)
    return tuple(out)


def restore_sysctls(keys: tuple[str, ...], forwarding: bool = False) -> tuple[tuple[str, str], ...]:
    """The writes that give settings a host changed their kernel values again, "all" and "default", in a
    namespace that forwards (``forwarding``: its plan's ip_forward is 1) or does not."""
    return tuple((name, value) for key in keys
                 for name, value in zip(devconf_keys(key), kernel_devconf(key, forwarding)))


# Routers forward: nodes (between cni0, flannel.1 and eth0), the internet gateway, the load balancer.
ROUTER_SYSCTLS = ((FORWARD_SYSCTL, "1"),)
# Hosts and switches do not: internet hosts, the underlay (a plain switch), each a machine of its own.
HOST_SYSCTLS = ((FORWARD_SYSCTL, "0"),)


def copied_by_new_netns(name: str) -> bool:
    """Whether a new network namespace starts with this sysctl's value from the one it is made from (init_net,
    devconf_inherit_init_net=0, the kernel's default): IPv4's ``all`` and ``default`` settings, ip_forward (all's
    forwarding) among them. A pod is no machine of its own: the runtime makes its namespace on its node, whose
    namespace is init_net, so it starts with the node's (ip_forward=1 and, writing it, the kernel's
    all.accept_redirects=0; kube-proxy's route_localnet=1 in iptables mode), and the plan gives it the node's
    values of these (plan/build.py, _inherited_sysctls)."""
    conf = conf_name(name)
    return name == "net.ipv4.ip_forward" or (conf is not None and conf.family == "ipv4" and not conf.own)


# Bridged frames (pod to pod on one cni0) must pass iptables, or a reply from a
# same-node endpoint bypasses conntrack and never gets its DNAT undone. The
# sysctl is per network namespace (Linux >= 5.3), so the Services' plan sets it in
# the nodes only; it exists when br_netfilter is loaded (see netlab.services.lifecycle).
BRIDGE_NF_SYSCTL = ("net.bridge.bridge-nf-call-iptables", "1")
# kube-proxy's conntrack settings (its configuration's defaults, in every mode: cmd/kube-proxy/app platformSetup
# -> pkg/proxy/conntrack setSysctls): conntrack.tcpEstablishedTimeout 24h and tcpCloseWaitTimeout 1h, each
# written when the node's value is another (lower or higher: setIntSysCtl writes when val != value), where the
# kernel gives 5 days and 60 s. An idle established connection through the node is forgotten after a day; one
# its server has half-closed (CLOSE_WAIT) keeps its entry, and its NAT, for an hour instead of a minute (to
# outlast the servers' own FIN_WAIT timeouts, says kube-proxy's defaults.go). Both are per network namespace,
# and a new one starts at the kernel's whatever the host has: the nodes get kube-proxy's, the host and the pods
# keep theirs. Not nf_conntrack_max nor the module's hashsize, which kube-proxy only raises: they are the whole
# host's (nf_conntrack_max is read-only in any namespace but the host's).
CONNTRACK_SYSCTLS = (("net.netfilter.nf_conntrack_tcp_timeout_established", "86400"),
                     ("net.netfilter.nf_conntrack_tcp_timeout_close_wait", "3600"))
# The CNI plugins' own setting of a pod's interface: bridge (plugins/main/bridge, cmdAdd; macvlan, ipvlan and
# tap alike) writes net.ipv4.conf.<ifname>.arp_notify=1 in the pod, just before ipam.ConfigureIface gives the
# interface its address and routes (ConfigureIface itself writes only IPv6 ones, for an IPv6 address). With it
# the kernel sends a gratuitous ARP for the interface's address each time it comes up or changes its MAC
# (net/ipv4/devinet.c, inetdev_event: NETDEV_UP, NETDEV_CHANGEADDR): cni0 and the pods that know the pod's
# address learn its MAC at once instead of sending to a stale one until their entry is probed again. Only the
# interface's own setting: all and default keep the kernel's 0.
POD_IF_DEVCONF = (("arp_notify", "1"),)


def interface_sysctls(dev: str, settings: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """``arp_notify`` of ``eth0`` -> ``net.ipv4.conf.eth0.arp_notify``."""
    return tuple((f"net.ipv4.conf.{dev}.{key}", value) for key, value in settings)


# Each lab interface's own IPv6 switch: all.disable_ipv6=1 turns IPv6 off on the interfaces there are (lo among
# them) and default's makes every later one start off (addrconf.c: a device copies default's settings when it
# registers, or gets none below IPv6's minimum MTU, 1280: no folder, no IPv6), so a lab's links are made with it
# at 1. A hand that writes one interface's back to 0 (net.ipv6.conf.cni0.disable_ipv6=0) gives it an fe80::
# address, router solicitations and MLD reports on the wire, with all and default still 1: status checks it on
# every planned link of 1280 bytes or more (realize/expect.py: what the kernel made, at default's planned value),
# read from the link dump (IFLA_INET6_CONF); up writes one back only where a hand changed it.
IPV6_MIN_MTU = 1280
IPV6_OFF = "disable_ipv6"


def ipv6_off(dev: str) -> tuple[str, str]:
    """``cni0`` -> (``net.ipv6.conf.cni0.disable_ipv6``, "1")."""
    return f"net.ipv6.conf.{dev}.{IPV6_OFF}", "1"


def ipv6_interface(name: str) -> str | None:
    """``net.ipv6.conf.flannel.1.disable_ipv6`` -> ``flannel.1``: the interface of its own IPv6 switch; None for
    any other sysctl (all's and default's included)."""
    return interface_of(name, "ipv6", IPV6_OFF)


# Settings that change what a learner measures, at the values the kernel gives every new namespace (per network
# namespace: inet_init_net, icmp_sk_init): the TTL a pod's packets leave with (64, the 64/62 the tutorials have
# the learner look for in ping's ttl=) and whether it answers ping at all. The host's values are not copied into a
# new namespace. netlab writes neither: status expects them in every lab namespace (realize/expect.py, the pods'
# and the nodes' among them) and up writes one back only where a hand changed it.
KERNEL_KEPT = (("net.ipv4.ip_default_ttl", "64"), ("net.ipv4.icmp_echo_ignore_all", "0"))


def interface_setting(name: str) -> tuple[str, str] | None:
    """``net.ipv4.conf.flannel.1.arp_ignore`` -> ("flannel.1", "arp_ignore"): an interface's own IPv4 setting;
    None for any other sysctl (all's and default's included)."""
    conf = conf_name(name)
    return (conf.dev, conf.key) if conf is not None and conf.family == "ipv4" and conf.own else None


def shown(name: str) -> str:
    """A sysctl's name as sysctl(8) takes it, to show or to run: the dots of an interface's name as slashes
    (``net.ipv4.conf.flannel.1.rp_filter`` -> ``net.ipv4.conf.flannel/1.rp_filter``: sysctl(8) reads every dot
    as a level, and ``sysctl -w`` of the dotted name fails). netlab keeps the dotted name (its records, its
    JSON's ``name``)."""
    conf = conf_name(name)
    return conf.shown if conf is not None else name


def when_written(name: str) -> str:
    """When a sysctl of the plan can be written: ``netns``, as the namespace is made, before its first link (each
    new link copies ``default``); ``link``, an interface's own (net.ipv4.conf.<dev>.*), once the link is made;
    ``tables``, nf_conntrack's (net.netfilter.*), after the node's rule tables, whose conntrack matches and NAT
    make the kernel load nf_conntrack where it is a module not loaded yet (its files come with it)."""
    if interface_setting(name) is not None or ipv6_interface(name) is not None:
        return "link"
    if name.startswith("net.netfilter."):
        return "tables"
    return "netns"


# The internet gateway's multipath hash, for the routes that balance LoadBalancer IPs (plan/internet.py): custom
# (3), of source and destination address, protocol, source and destination port (fields 0x37, which the kernel
# prints in decimal): the packet's own headers. Policy 1 (L4) would take the hash the sender's socket left on the
# packet (skb->l4_hash), which a veth keeps and TCP changes after a retransmission timeout, moving a connection
# to another node.
GATEWAY_SYSCTLS = (("net.ipv4.fib_multipath_hash_policy", "3"), ("net.ipv4.fib_multipath_hash_fields", "55"))

# kube-proxy in iptables mode (localhostNodePorts, its default) sets this on its node so that a NodePort
# answers on 127.0.0.1 too: after the DNAT, a packet from 127.0.0.1 may leave by eth0 (masqueraded by
# KUBE-POSTROUTING). Its nftables mode does not, and has no NodePort on 127.0.0.1 (plan/services.py): there
# the plan says the kernel's 0 (plan/nftables.py).
ROUTE_LOCALNET_SYSCTL = ("net.ipv4.conf.all.route_localnet", "1")
