"""The kernel features a CNI conflist's plugins use and netlab itself does not, tried in the doctor's throwaway
namespace (kernel/features.probe_kernel runs them there, on its netlink socket): each made as the plugin makes it,
minimal, through netlab's codec (kernel/rtnl.py, tc.py), and left for the namespace's end to free.

- macvlan, ipvlan, vlan: a child on a lower veth of the probe's own; ifb (bandwidth's egress), vrf: alone;
- vlan_filtering (the bridge plugin's ``vlan``): a bridge made with ``vlan_filtering 1``, then a veth port of it
  put in a VLAN untagged, as its pvid, as the plugin sets a pod's host veth;
- ingress, u32, mirred (bandwidth's egress path, in the order the plugin makes it, each on the one before): an
  ingress qdisc on the lower veth, a u32 filter there matching every frame, and a u32 filter whose action is
  mirred's egress redirect to the veth's peer (the plugin's goes to an ifb);
- fib_rules (sbr's ``from ADDR lookup TABLE``): one IPv4 policy routing rule; fib_rules6, beside it: one IPv6 rule,
  as sbr adds for a pod's IPv6 address (the kernel's IPv6 rules are a build option of their own,
  CONFIG_IPV6_MULTIPLE_TABLES, and a kernel booted with ipv6.disable=1 has none). Not a check of its own: the
  doctor's policy-rules line says it.

A link kind the kernel lacks is refused with EOPNOTSUPP, a qdisc, classifier or action with ENOENT (the kernel
found no such kind, after asking modprobe), bridge VLAN filtering with EOPNOTSUPP (CONFIG_BRIDGE_VLAN_FILTERING's
stub), rules with EAFNOSUPPORT or EOPNOTSUPP (no CONFIG_IP_MULTIPLE_TABLES, or for IPv6 no
CONFIG_IPV6_MULTIPLE_TABLES or no IPv6 at all).
"""

from __future__ import annotations

import errno
import os
from typing import Callable, Iterable

from netlab.kernel import netlink, rtnl, rtnl_parse, tc

LOWER = "probe-lower"
PROBE_TABLE = 100  # the vrf's and the rule's routing table: any but main, local and default
PROBE_VLAN = 5
# Link kinds: each made on the lower veth (True) or alone (False), as the plugin would ask.
CHILD_KINDS: dict[str, tuple[bool, Callable[[int | None], bytes]]] = {
    "macvlan": (True, lambda lower: rtnl.child_add("probe-macvlan", "macvlan", lower)),
    "ipvlan": (True, lambda lower: rtnl.child_add("probe-ipvlan", "ipvlan", lower)),
    "vlan": (True, lambda lower: rtnl.child_add("probe-vlan", "vlan", lower, rtnl.vlan_id(PROBE_VLAN))),
    "ifb": (False, lambda lower: rtnl.child_add("probe-ifb", "ifb", None)),
    "vrf": (False, lambda lower: rtnl.child_add("probe-vrf", "vrf", None, rtnl.vrf_table(PROBE_TABLE))),
}
VLAN_FILTERING = "vlan_filtering"
REDIRECT = ("ingress", "u32", "mirred")  # bandwidth's egress path: each hangs on the one before
FIB_RULES = "fib_rules"
FIB_RULES6 = "fib_rules6"  # tried with FIB_RULES, said on its line (doctor_verdict.with_ipv6_rules)
FEATURES = tuple(CHILD_KINDS) + (VLAN_FILTERING,) + REDIRECT + (FIB_RULES, FIB_RULES6)
# The modules the kernel would load on demand for each (as modprobe names them): VLAN filtering is an option of
# the bridge module, policy rules are no module at all (CONFIG_IP_MULTIPLE_TABLES is built in or absent).
MODULES: dict[str, tuple[str, ...]] = {
    "macvlan": ("macvlan",), "ipvlan": ("ipvlan",), "vlan": ("8021q",), "ifb": ("ifb",), "vrf": ("vrf",),
    VLAN_FILTERING: ("bridge",), "ingress": ("sch_ingress",), "u32": ("cls_u32",), "mirred": ("act_mirred",),
}
# What each found when it worked.
MADE = {
    VLAN_FILTERING: "made a bridge with vlan_filtering 1 and put a veth port in VLAN 5 (pvid untagged) in a "
                    "throwaway namespace",
    "ingress": "added one to a veth in a throwaway namespace",
    "u32": "added a u32 filter matching every frame to a veth's ingress qdisc in a throwaway namespace",
    "mirred": "added a mirred egress redirect from a veth's ingress to its peer in a throwaway namespace",
    FIB_RULES: "added an IPv4 rule (from 10.0.0.1 lookup 100) in a throwaway namespace",
    FIB_RULES6: "added an IPv6 rule (from fd00::1 lookup 100) there too",
}
# The errno each kind of object is refused with when the kernel has no such thing.
ABSENT = {VLAN_FILTERING: {errno.EOPNOTSUPP}, FIB_RULES: {errno.EOPNOTSUPP, errno.EAFNOSUPPORT},
          FIB_RULES6: {errno.EOPNOTSUPP, errno.EAFNOSUPPORT},
          **{step: {errno.ENOENT} for step in REDIRECT}}

Found = tuple[bool | None, str]  # available (None: not tried, as trying would load a module), what was seen


def errno_text(code: int) -> str:
    return f"{errno.errorcode.get(code, code)}: {os.strerror(code)}"


def _refused(name: str, exc: netlink.NetlinkError) -> Found:
    absent = exc.errno in ABSENT.get(name, {errno.EOPNOTSUPP})
    return False, f"{'not in this kernel' if absent else 'creating one failed'} ({errno_text(exc.errno)})"


def probe_cni_features(conn: netlink.Conn, tried: list[str], skipped: Iterable[str]) -> dict[str, Found]:
    """Each feature of ``tried`` (in a throwaway namespace, on its rtnetlink ``conn``); ``skipped``: the wanted
    features not tried as their module is not loaded (bandwidth's egress steps after one of them are not either)."""
    out: dict[str, Found] = {}
    needs_lower = [f for f in tried if (f in CHILD_KINDS and CHILD_KINDS[f][0]) or f in REDIRECT]
    lower = _lower(conn) if needs_lower or VLAN_FILTERING in tried else None
    for kind in (k for k in CHILD_KINDS if k in tried):
        on_lower, request = CHILD_KINDS[kind]
        if on_lower and lower is None:
            out[kind] = (False, "not tried: no veth could be made to put one on")
            continue
        out[kind] = request_made(conn, kind, request(lower[0] if lower else None),
                             f"created one{' on a veth' if on_lower else ''} in a throwaway namespace")
    if VLAN_FILTERING in tried:
        out[VLAN_FILTERING] = _vlan_filtering(conn, lower)
    out.update(_redirect(conn, tried, set(skipped), lower))
    if FIB_RULES in tried:
        out[FIB_RULES] = request_made(conn, FIB_RULES, rtnl.rule_add(1000, PROBE_TABLE, src="10.0.0.1", src_len=32),
                                  MADE[FIB_RULES])
    if FIB_RULES6 in tried:  # sbr's rule for a pod's IPv6 address: the kernel's other rule list
        out[FIB_RULES6] = request_made(conn, FIB_RULES6, rtnl.rule_add(1000, PROBE_TABLE, src="fd00::1", src_len=128),
                                   MADE[FIB_RULES6])
    return out


def request_made(conn: netlink.Conn, name: str, request: bytes, made: str) -> Found:
    """Ask for one object of feature ``name``: ``made`` when the kernel makes it, else why not."""
    try:
        conn.request(f"a {name} in a throwaway namespace", request)
    except netlink.NetlinkError as exc:
        return _refused(name, exc)
    return True, made


def _lower(conn: netlink.Conn) -> tuple[int, int] | None:
    """The indexes of a veth pair made to carry the probe's children, filters and VLAN port (None when none can
    be made)."""
    try:
        conn.request("a lower veth in a throwaway namespace",
                     rtnl.veth_add(0, LOWER, None, None, None, 0, LOWER + "-p", None, None, up=False))
    except netlink.NetlinkError:
        return None
    links = {link.name: link.index for link in rtnl_parse.dump_links(conn, "a throwaway namespace")}
    return (links[LOWER], links[LOWER + "-p"]) if LOWER in links and LOWER + "-p" in links else None


def _vlan_filtering(conn: netlink.Conn, lower: tuple[int, int] | None) -> Found:
    """A bridge with VLAN filtering on, and the lower veth's peer as its port in VLAN 5, untagged."""
    found = request_made(conn, VLAN_FILTERING, rtnl.bridge_add(0, "probe-vbridge", None, None, up=False,
                                                           vlan_filtering=True), MADE[VLAN_FILTERING])
    if not found[0]:
        return found
    if lower is None:
        return False, "not tried: no veth could be made to put in a VLAN"
    bridge = next((link.index for link in rtnl_parse.dump_links(conn, "a throwaway namespace")
                   if link.name == "probe-vbridge"), None)
    if bridge is None:
        return False, "the bridge made with vlan_filtering 1 is not in the namespace's links"
    try:
        conn.request("a veth port of the VLAN-filtering bridge", rtnl.link_set(lower[1], master=bridge))
        conn.request("the port's VLAN", rtnl.port_vlan_add(lower[1], PROBE_VLAN))
    except netlink.NetlinkError as exc:
        return _refused(VLAN_FILTERING, exc)
    return found


def _redirect(conn: netlink.Conn, tried: list[str], skipped: set[str], lower: tuple[int, int] | None
              ) -> dict[str, Found]:
    """bandwidth's egress path on the lower veth: its ingress qdisc, a u32 filter, a mirred redirect to its peer.
    A step whose base could not be made is not tried; a base not asked for is made all the same, not said."""
    out: dict[str, Found] = {}
    requests = {"ingress": lambda low, peer: tc.ingress_add(low),
                "u32": lambda low, peer: tc.u32_add(low, 1, tc.ROOT_HANDLE + 1),
                "mirred": lambda low, peer: tc.u32_add(low, 2, tc.ROOT_HANDLE + 1, peer)}
    asked = [i for i, step in enumerate(REDIRECT) if step in tried]
    base: Found | None = None  # why the next step has nothing to hang on
    for step in REDIRECT[:asked[-1] + 1] if asked else ():
        if step in skipped:  # as its module is not loaded; a step on it would load that module too
            base = base or (None, f"not tried: it hangs on the {step}, whose module {MODULES[step][0]} is on disk "
                                  "but not loaded (trying would load it)")
            continue
        found = (False, "not tried: no veth could be made to put one on") if lower is None else base or \
            request_made(conn, step, requests[step](*lower), MADE[step])
        if found[0] is False and not base:
            base = (False, f"not tried: it hangs on the {step} ({found[1]})")
        if step in tried:
            out[step] = found
    return out
