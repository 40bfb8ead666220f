"""The internet gateway's multipath routing, tried in the doctor's throwaway namespace (kernel/features.probe_kernel
runs it there, on its netlink socket): what ``up`` asks of the gateway for a LoadBalancer Service
(plan/internet.load_balancer_routes).

- the gateway's sysctls (plan/sysctls.GATEWAY_SYSCTLS): ``net.ipv4.fib_multipath_hash_policy`` exists only in a
  kernel with CONFIG_IP_ROUTE_MULTIPATH, ``net.ipv4.fib_multipath_hash_fields`` and policy 3 (custom) only from
  Linux 5.12; each is written there, as up writes the gateway's (never the host's: this is the throwaway
  namespace's own /proc/sys/net);
- one route with two nexthops (RTA_MULTIPATH, as the gateway's to two nodes) via a veth pair's end, through
  netlab's codec (kernel/rtnl.py), then read back: a kernel without CONFIG_IP_ROUTE_MULTIPATH refuses it with
  EINVAL ("Multipath support not enabled in kernel").
"""

from __future__ import annotations

from netlab.kernel import netlink, procsys, rtnl, rtnl_parse
from netlab.kernel.cniprobe import Found, errno_text
from netlab.plan.sysctls import GATEWAY_SYSCTLS

FEATURE = "multipath"
MODULES = {FEATURE: ("veth",)}  # the route's veth: built in, or the kernel loads it at up's first veth anyway
END = "probe-mpath"
ADDRESS, PREFIX = "10.255.0.1", 24
HOPS = ("10.255.0.2", "10.255.0.3")
DST = "198.51.100.10"  # a LoadBalancer IP, in a documentation range
POLICY, FIELDS = (key for key, _ in GATEWAY_SYSCTLS)


def _sysctls() -> Found | None:
    """Why the gateway's sysctls cannot be written here, or None when both were."""
    absent = [key for key, _ in GATEWAY_SYSCTLS if procsys.read_sysctl_here(key) is None]
    if POLICY in absent:
        return False, f"no {POLICY}: this kernel has no multipath routing (CONFIG_IP_ROUTE_MULTIPATH)"
    if absent:
        return False, f"no {FIELDS}: this kernel is older than 5.12 (no hash of chosen fields, policy 3)"
    for key, value in GATEWAY_SYSCTLS:
        try:
            procsys.write_sysctl_here(key, value)
        except OSError as exc:
            return False, f"{key} = {value} refused ({errno_text(exc.errno or 0)})"
    return None


def probe_multipath(conn: netlink.Conn) -> Found:
    """The sysctls, then a route of two nexthops via a veth (in a throwaway namespace, on its rtnetlink ``conn``)."""
    refused = _sysctls()
    if refused:
        return refused
    try:
        conn.request("a veth in a throwaway namespace",
                     rtnl.veth_add(0, END, None, None, None, 0, END + "-p", None, None, up=True))
    except netlink.NetlinkError as exc:
        return False, f"not tried: no veth could be made for its hops ({errno_text(exc.errno)})"
    index = next((link.index for link in rtnl_parse.dump_links(conn, "a throwaway namespace") if link.name == END),
                 None)
    if index is None:
        return False, "not tried: the veth made for its hops is not in the namespace's links"
    try:
        conn.request("the veth's address", rtnl.addr_add(index, ADDRESS, PREFIX))
        conn.request("a multipath route in a throwaway namespace",
                     rtnl.route_replace(DST, 32, None, None, nexthops=[(hop, index) for hop in HOPS]))
    except netlink.NetlinkError as exc:
        return False, f"a route of two nexthops (RTA_MULTIPATH) refused ({errno_text(exc.errno)})"
    made = [r for r in rtnl_parse.parse_routes(conn.dump("the routes", rtnl.route_dump())) if r.dst == DST]
    hops = sorted(gw for r in made for gw, _ in r.nexthops if gw)
    if hops != sorted(HOPS):
        return False, f"a route of two nexthops was taken but reads back with nexthops {hops or 'none'}"
    return True, (f"{POLICY} = 3 and {FIELDS} = 55 taken, and a route of two nexthops made, in a throwaway "
                  "namespace")
