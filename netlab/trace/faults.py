"""Why the kernel refused or misrouted a packet, when its own answer does not say.

Some faults leave ``ip route get`` with a bare errno, or let the packet go on
to die somewhere later; the walker asks here for the real reason at the hop
that holds it:

- a forwarded packet's lookup fails with "No route to host" although a route
  exists: ``net.ipv4.ip_forward`` is 0 (the kernel refuses to forward);
- it fails with "Invalid argument" or "Invalid cross-device link": strict
  ``rp_filter``, the route back to the source leaves by another interface
  than the packet came in on;
- a node sends a packet for another node's pod CIDR down its default route:
  the overlay route to that CIDR is missing, so it is lost further on, at the
  nodes' gateway (the underlay's, or the internet's in a lab with an ``internet:`` section), but the fault is
  the node's;
- a node whose cni0 (any link) is down has lost that link's routes with it: its own pods' packets take the
  default route to the nodes' gateway and die there, but the fault is the down link; setting it up
  again brings back only its connected route, so the fix also adds the plan's routes (and neighbours)
  through it (``LabMap.link_fix``: eth0's default route, flannel.1's routes to other nodes' pod CIDRs);
- a node whose route to a pod of its own through the pod's veth (ptp's: no bridge) is gone sends the pod's packets
  down its default route too: the pod's route is the fault, named where they die;
- an FDB entry names a remote VTEP that is no node of the lab;
- a node's or a pod's route that is not the plan's (another next hop, a route added by hand that overrides the
  plan's, a blackhole): strayroutes.py;
- a forwarded packet vanishes inside a node whose FORWARD policy is DROP;
- a packet vanishes where an interface's impairment (``netlab impair --loss``) drops a share of
  the frames (on its veth peer's ingress, or a bridge's or VXLAN device's egress);
- a full-size packet (``trace --size``) meets a device whose MTU is smaller:
  a veth or a bridge port drops the frame without a word (no ICMP), the MTU
  black hole of an overlay on a smaller underlay.

Kernels that cannot read sysctls or tables (the unit tests' fakes) skip the
checks that need them.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Callable

from netlab.errors import netlab_command, netlab_words
from netlab.kernel.iptables import command as ipt_command
from netlab.model.impair import loss_fraction
from netlab.plan.flannel import FLANNEL_FWD, FORWARD_COMMENT
from netlab.plan.impair import LossHook
from netlab.plan.sysctls import shown

# Flannel's FLANNEL-FWD chain in an iptables-save text, and FORWARD's jump to it (a counter may lead the line)
FLANNEL_CHAIN = re.compile(rf"^:{FLANNEL_FWD} ", re.M)
FLANNEL_JUMP = re.compile(rf"^(\[\d+:\d+\] )?-A FORWARD .*-j {FLANNEL_FWD}$", re.M)

Reason = tuple[str, str | None]  # (why, fix)


def up_repairs(fix: str) -> bool:
    """Whether ``netlab up`` also puts right what ``fix`` puts right: everything the lab's plan holds (a bridge
    port's state too: every port of the lab's bridges forwarding), but a netlab command (that is the fix itself:
    an impairment is the lab's desired state). Of conntrack's entries (the kernel's memory of flows, no part of
    the plan), `up` deletes what kube-proxy's sync does, and netlab's services/stale.py finds: a UDP Service
    flow DNATed to an address that is no endpoint (``--dst-nat``); not a TCP flow's, not one without a DNAT."""
    if " conntrack -D " in fix:
        return " -p udp " in fix and " --dst-nat " in fix
    if fix.startswith("bridge -n ") and fix.split()[2].endswith("-underlay") and fix.endswith(" hairpin on"):
        return False  # the plan keeps the underlay's ports without hairpin (a vepa macvlan's wire): up turns it off
    if PLUGINS_PORT in fix:
        return False  # a port a user's conflist's plugins made: no part of the plan (hairpin_off)
    if " route flush cache" in fix:
        return False  # a path MTU the kernel learned (path_mtu): its route cache is no part of the plan
    # under a state folder of the user's own too (netlab_command's line); a note after three blanks is no part of
    # the command (an apostrophe in it, "the device's", is no quote a shell reads)
    return netlab_words(fix.split("   ", 1)[0]) is None


# ip_forward 0 on a node: the flow traced is one of all those it drops (what `netlab break ip-forward-off` expects).
NODE_FORWARDS = ("; so is every packet the node would forward, not only this one: every flow between its pods and "
                 "other nodes' pods, every ClusterIP flow from its pods, whichever endpoint (DNATed, then routed), "
                 "its pods' egress to internet hosts, and every NodePort or LoadBalancer flow from outside that "
                 "comes in on it")


def _sysctl(k: Any, netns: str, key: str) -> str | None:
    read = getattr(k, "sysctl", None)
    return read(netns, key) if read is not None else None


def forwards(k: Any, netns: str) -> bool | None:
    """net.ipv4.ip_forward of ``netns`` (None: not known)."""
    value = _sysctl(k, netns, "net.ipv4.ip_forward")
    return None if value is None else value != "0"


def refused(k: Any, ns: str, iif: str | None, src: str, dst: str, message: str, lab: Any = None) -> Reason | None:
    """The reason a forwarded packet's route lookup failed, when it is a sysctl and not a route; ``lab`` (a
    LabMap) names what the namespace is (a node, a pod, the internet's gateway ...)."""
    if iif is None:
        return None
    if _sysctl(k, ns, "net.ipv4.ip_forward") == "0":
        where = lab.where(ns) if lab is not None else ns
        if ns in getattr(lab, "no_forward", ()):  # no fault: the plan makes it no router (the walker says why here)
            return (f"net.ipv4.ip_forward = 0 in {ns}: the {where} does not forward, so a packet in on {iif} for "
                    f"{dst} is dropped (route get says: {message}), as the lab plans it: it is no router", None)
        what = f"the {where}" if where != ns else "the namespace"
        return (f"net.ipv4.ip_forward = 0 in {ns}: {what} does not forward, so a packet in on {iif} for "
                f"{dst} is dropped (route get says: {message}){NODE_FORWARDS if where.startswith('node ') else ''}",
                f"ip netns exec {ns} sysctl -w net.ipv4.ip_forward=1")
    modes = [_sysctl(k, ns, f"net.ipv4.conf.{dev}.rp_filter") for dev in ("all", iif)]
    if "1" in modes and src:
        back = "another interface"
        try:
            back = k.route_get(ns, src).oif or back
        except Exception:  # the reverse lookup failing is itself the reason; say it plainly
            pass
        key = shown(f"net.ipv4.conf.{'all' if modes[0] == '1' else iif}.rp_filter")  # flannel.1: flannel/1
        return (f"strict rp_filter ({key} = 1) in {ns}: the packet from {src} came in on "
                f"{iif}, but the route back to {src} leaves by {back}, so the kernel drops it as spoofed "
                f"(route get says: {message})",
                f"ip netns exec {ns} sysctl -w {key}=0   (or 2, loose)")
    return None


def nodes_gateway(lab: Any) -> str:
    """Who holds the nodes' gateway address, where a packet sent down a node's default route goes: the underlay's
    br0, or in a lab with an ``internet:`` section the internet's gateway (its namespace named by LabMap.names, as
    the hop where the packet is lost names it)."""
    names = getattr(lab, "names", {})
    gateway = next((ns for ns, name in names.items() if name == "internet gateway"), None)
    return f"the internet's gateway ({gateway})" if gateway else "the underlay's gateway"


def pod_cidr_by_default(lab: Any, ns: str, dst: str, matched: str | None, k: Any = None) -> Reason | None:
    """A node routing another node's pod address by its default route: the overlay's route (vxlan) or host-gw's
    route via that node's address is missing; when the device it goes out of is down (flannel.1), it went with
    that link, and adding it back fails ("Nexthop device is not up") until the link is up."""
    node_cidrs = getattr(lab, "node_pod_cidrs", {})
    if not node_cidrs or ns not in {n for n, _ in node_cidrs.values()} or not matched:
        return None
    if not matched.startswith("default"):
        return None
    for node, (node_ns, cidr) in node_cidrs.items():
        if node_ns != ns and IPv4Address(dst) in IPv4Network(cidr):
            missing = ("host-gw's route via that node's address" if getattr(lab, "mode", "vxlan") == "host-gw"
                       else "the overlay route")
            dev = lab.route_dev(ns, dst) if hasattr(lab, "route_dev") else None
            links = k.links(ns) if k is not None and dev else {}
            link = links.get(dev) if dev else None
            if dev and k is not None and link is None and links:
                # Deleted (`ip link del`): its routes, ARP and FDB entries went with it, and a route through it
                # cannot be added back ("Cannot find device") until the device is made again, as the plan makes it.
                return (f"no route to {cidr} ({node}'s pod CIDR) in {ns}: {dev}, the device {missing} goes out of, "
                        f"is missing there (deleted, and its routes with it): the default route sends {dst} to "
                        f"{nodes_gateway(lab)}, which has no route to pods", getattr(lab, "repair", None))
            if link is not None and not link.up:
                return (f"no route to {cidr} ({node}'s pod CIDR) in {ns}: {dev} is down, and a link set down loses "
                        f"its routes ({missing} via {dev} went with it, and does not come back with the link): the "
                        f"default route sends {dst} to {nodes_gateway(lab)}, which has no route to pods",
                        link_fix(lab, ns, dev))
            return (f"no route to {cidr} ({node}'s pod CIDR) in {ns}: the default route sends {dst} to "
                    f"{nodes_gateway(lab)}, which has no route to pods ({missing} is missing)",
                    lab.route_fix(ns, dst))
    return None


def pod_host_route_gone(lab: Any, ns: str, dst: str, oif: str | None, matched: str | None,
                        k: Any = None) -> Reason | None:
    """A node routing a pod of its own another way than through the pod's veth, where the pod's CNI plugins reach
    it by a route of the node's alone (ptp's ``10.244.0.2 dev vethX scope host``: the veth is on no bridge,
    LabMap.host_routes): that route is gone (deleted by hand; status says it, cni/verify_node.py), and the packet
    goes on by a wider one, the default route to the nodes' gateway, where it dies. Its fix is that route again;
    ``up`` re-attaches the pod, whose ADD makes it. None when the route is there (another route or rule wins over
    it: strayroutes says that one) or the kernel cannot list its routes (the unit tests' fakes without
    ``routes``)."""
    found = getattr(lab, "host_routes", {}).get((ns, dst))
    read = getattr(k, "routes", None)
    if found is None or oif == found[1] or read is None:
        return None
    pod, veth = found
    if any(r.get("dst") == f"{dst}/32" and r.get("dev") == veth for r in read(ns)):
        return None
    link = k.links(ns).get(veth) if hasattr(k, "links") else None
    down = link is not None and not link.up
    gone = (f"it went with the link: {veth} is down, and a link set down loses its routes, which do not come back "
            "with it" if down else "it is gone")
    way = (f"the default route sends {dst} to {nodes_gateway(lab)}, which has no route to pods"
           if (matched or "").startswith("default") else f"the packet goes by `{matched}` instead")
    fix = f"ip -n {ns} route add {dst}/32 dev {veth} scope host"
    return (f"no route to pod {pod}'s {dst} in {ns} through its veth {veth}: the node reaches the pod by that route "
            f"alone (`{dst} dev {veth} scope host`, which its CNI plugins made at its ADD, as ptp does: the veth is "
            f"on no bridge), and {gone}; {way}. `{fix}` puts it back; up re-attaches pod {pod}, which makes it again",
            f"ip -n {ns} link set {veth} up && {fix}" if down else fix)


def unknown_vtep(lab: Any, remote: str) -> str | None:
    """An FDB entry's remote VTEP that no node of the lab holds."""
    node_ips = getattr(lab, "node_ips", None)
    if not node_ips or remote in node_ips:
        return None
    return (f"the FDB entry sends the frame to remote VTEP {remote}, which is no node of the lab "
            f"(nodes: {', '.join(sorted(node_ips))}): a stale or wrong VTEP")


def link_fix(lab: Any, ns: str, dev: str) -> str:
    """What repairs ``dev`` set down: the link up, and the planned routes (and neighbours) that went with it, which
    the kernel does not put back when the link comes up (LabMap.link_fix)."""
    fix = getattr(lab, "link_fix", None)
    return fix(ns, dev) if fix is not None else f"ip -n {ns} link set {dev} up"


def down_links(k: Any, ns: str) -> list[str]:
    """The links of ``ns`` set down (lo aside), by name."""
    return sorted(name for name, link in k.links(ns).items() if name != "lo" and not link.up)


def links_down(k: Any, ns: str, dst: str, message: str, lab: Any = None) -> Reason | None:
    """No route to ``dst`` in ``ns`` where a link is set down: the kernel took that link's routes with it (a pod's
    eth0 down leaves it no route at all: "Network is unreachable"; a node's eth0 its default route, which does
    not come back with the link)."""
    down = down_links(k, ns)
    if not down:
        return None
    return (f"no route to {dst} in {ns}: {message}: {', '.join(down)} {'is' if len(down) == 1 else 'are'} down "
            f"there, and a link set down loses its routes (bringing it up puts back only its connected ones)",
            " && ".join(link_fix(lab, ns, dev) for dev in down))


def cut_off(k: Any, lab: Any, ns: str, dst: str, message: str) -> Reason | None:
    """No route to ``dst`` in ``ns`` because what the plan routes it by is gone (QA q57 #4): a pod's eth0 deleted
    (its veth pair, and every route through it, go with it; `up` makes it again, or its CNI plugins attach the pod
    again), or the plan's routes that cover ``dst`` deleted by hand (the fix adds them back, as `up` does). Kernels
    that cannot list their links or routes (the unit tests' fakes) skip the check."""
    where = lab.where(ns) if hasattr(lab, "where") else ns
    links = k.links(ns)
    if where.startswith("pod ") and "eth0" not in links:
        return (f"no route to {dst} in {ns}: {message}: {where} has no eth0 (deleted: the other end of its veth "
                f"pair went with it, and every route through it), so it reaches nothing", getattr(lab, "repair", None))
    read = getattr(k, "routes", None)
    planned: dict[tuple[str, str], str] = getattr(lab, "planned_route", {})
    covering = {cidr: cmd for (rns, cidr), cmd in planned.items()
                if rns == ns and IPv4Address(dst) in IPv4Network(cidr)}
    if read is None or not covering:
        return None
    have = {"0.0.0.0/0" if r.get("dst") == "default" else str(r.get("dst")) for r in read(ns)}
    gone = [cidr for cidr in sorted(covering, key=lambda c: -IPv4Network(c).prefixlen) if cidr not in have]
    if not gone:
        return None
    dev = getattr(lab, "planned_route_dev", {}).get((ns, gone[0]))
    if dev is not None and dev not in links:
        return (f"no route to {dst} in {ns}: {message}: {dev}, the device the plan's route to {gone[0]} goes out of, "
                f"is not there (deleted, and its routes with it)", getattr(lab, "repair", None))
    named = " and its ".join("default route" if c == "0.0.0.0/0" else f"route to {c}" for c in gone)
    return (f"no route to {dst} in {ns}: {message}: {where} lacks the plan's {named} (deleted)",
            " && ".join(covering[c] for c in gone))


def route_gone_with_link(k: Any, lab: Any, ns: str, dst: str, oif: str | None,
                         matched: str | None) -> tuple[str, str, str] | None:
    """A down link whose own subnet holds ``dst``, while the lookup took a wider route out of another device: the
    kernel removes a link's routes when it is set down (its connected route with them; the address stays), so a
    node whose cni0 is down sends its own pods' packets down its default route to the nodes' gateway, which
    has no route to pods. Returns (the down link, why, fix); None when no down link explains the route."""
    if not matched or not oif:
        return None
    first = matched.split()[0]
    try:
        wide = 0 if first == "default" else IPv4Network(first, strict=False).prefixlen
    except ValueError:
        return None
    for name, link in sorted(k.links(ns).items()):
        if link.up or name in ("lo", oif):
            continue
        for addr in link.addresses:
            net = IPv4Network(addr, strict=False)
            if net.prefixlen >= 32 or net.prefixlen <= wide or IPv4Address(dst) not in net:
                continue
            whose = next((f", {node}'s own pod CIDR" for node, (node_ns, cidr) in getattr(lab, "node_pod_cidrs",
                                                                                         {}).items()
                          if node_ns == ns and IPv4Network(cidr) == net), "")
            return (name, f"{name} in {ns} is down, and a link set down loses its routes: the route to {net} (the "
                          f"subnet of {name}'s {addr}{whose}) went with it, so {dst} takes the wider route {matched} "
                          f"instead", link_fix(lab, ns, name))
    return None


def odd_remote(entry: Any, vx: Any, dev: str) -> str | None:
    """An FDB entry whose remote is not only an address: another UDP port or VNI than its device's (the kernel says
    them only then), or an underlay device to leave by. flanneld writes none of them: the frame goes in UDP to
    the device's port, which every node's VXLAN device listens on, with its VNI, which every node's has, by the
    route to the remote. On another port no VXLAN device takes it (the remote's kernel answers port unreachable);
    with another VNI the remote's device drops it; out of another device it does not reach the remote."""
    words = []
    if entry.port is not None and (vx is None or entry.port != vx.port):
        words.append(f"to UDP port {entry.port}, not {dev}'s {vx.port if vx else '?'} (no VXLAN device of the "
                     f"remote node listens there)")
    if entry.vni is not None and (vx is None or entry.vni != vx.vni):
        words.append(f"with VNI {entry.vni}, not {dev}'s {vx.vni if vx else '?'} (the remote node's device drops it)")
    if entry.via:
        words.append(f"out of {entry.via}, not by the route to the remote")
    return f"the FDB entry sends the frame {'; '.join(words)}" if words else None


def own_vtep(remote: str, local: str | None, dev: str) -> str | None:
    """An FDB entry whose remote VTEP is the sending node's own address: the VXLAN driver sends no UDP to itself,
    it hands the frame straight back to its own device as received (vxlan_encap_bypass, as for the host), and
    the kernel routes it again, out the same way: the packet loops until its TTL runs out."""
    if local is None or remote != local:
        return None
    return (f"the FDB entry names this node's own address {remote} as the remote VTEP: {dev} hands the frame "
            f"straight back to itself (no UDP leaves), the kernel routes it again the same way, and the packet "
            f"loops until its TTL runs out (ICMP time exceeded from the node)")


def forward_policy(k: Any, ns: str) -> Reason | None:
    """FORWARD's policy in ``ns``, when it is DROP: a packet no rule accepted is dropped there."""
    read = getattr(k, "filter_policy", None)
    policy = read(ns, "FORWARD") if read is not None else None
    if policy != "DROP":
        return None
    fix = f"ip netns exec {ns} {ipt_command()} -P FORWARD ACCEPT"
    text = getattr(k, "filter_text", lambda _ns: None)(ns) or ""
    if FLANNEL_CHAIN.search(text) and not FLANNEL_JUMP.search(text):  # Flannel's accepts, unreachable from FORWARD
        fix += f" && ip netns exec {ns} {ipt_command()} -A FORWARD {FORWARD_COMMENT} -j {FLANNEL_FWD}"
    return (f"the FORWARD chain's policy is DROP in {ns} and no rule accepted the packet (no FLANNEL-FWD "
            f"accept for the pod network: Docker's FORWARD DROP)", fix)


def policy_reject(k: Any, ns: str) -> Reason | None:
    """A NetworkPolicy's REJECT in ``ns`` that counted the packet: in FORWARD, so before the packet left the node,
    and with it before conntrack kept the entry of its DNAT (a hairpin to an isolated pod of the node)."""
    chains = getattr(k, "policy_rejects", {}).get(ns)
    if not chains:
        return None
    return (f"a NetworkPolicy's REJECT in {ns} counted it in FORWARD, before it left the node (chain "
            f"{', '.join(chains)}; the policy is named below)", None)


# The words of a hairpin fix on a port a user's conflist's plugins made (hairpin_off), which no `up` repairs
PLUGINS_PORT = "until its pod is attached again"


def hairpin_off(k: Any, ns: str, port: str | None, src: str, svc: Any, lab: Any = None,
                reconfigure: Callable[[], str] = lambda: "") -> Reason | None:
    """A pod's packet to a Service it is an endpoint of, arrived by a bridge port whose hairpin mode is off: with
    br_netfilter the node DNATs it on the bridge, and a DNAT to the pod itself sends the frame back out of the
    port it came in by, which the bridge does only in hairpin mode (kubelet's hairpin-mode; the bridge plugin's
    hairpinMode, which Flannel's config sets). It is dropped before conntrack keeps the entry.

    In a lab of a user's conflist (``lab``, a LabMap, names it) the port is its plugins', set at the pod's ADD, and
    no `up` repairs it: for good, the conflist's bridge plugin needs hairpinMode and its pods an ADD again
    (``reconfigure``: the `up --reconfigure` that does it, QA q57 #2)."""
    if port is None or not any(e.ip == src for e in svc.endpoints):
        return None
    link = k.links(ns).get(port)
    if link is None or link.hairpin is not False:
        return None
    why = (f"the client is one of Service {svc.name}'s endpoints, and if kube-proxy picked it the DNATed frame goes "
           f"back out of the bridge port it came in by, {port}, which the bridge does only in hairpin mode, off on "
           f"{port}")
    fix = f"bridge -n {ns} link set dev {port} hairpin on"
    conflist = getattr(lab, "conflist", "")
    if not conflist:
        return f"{why} (the bridge plugin's hairpinMode)", fix
    if getattr(lab, "hairpin_mode", None) is False:
        return (f"{why}: the port is the bridge plugin's of {conflist}, which has no \"hairpinMode\": true (`up` "
                f"does not set the plugins' ports)", f"{fix}   ({PLUGINS_PORT}; for good: \"hairpinMode\": true in "
                f"the bridge plugin of {conflist}, then {reconfigure()}, which attaches the pods again)")
    return (f"{why}: the port is a plugin's of {conflist}, which set its hairpin mode at the pod's ADD (`up` does "
            f"not set the plugins' ports)", f"{fix}   ({PLUGINS_PORT})")


def impairment_loss(hit: LossHook | None, lab: str, then: str = "and the packet went no further") -> Reason | None:
    """A packet that vanished where netlab's impairment ``hit`` drops a share of the frames (plan/impair.py);
    ``then``: what that did to it (arploss.py: its ARP answers were dropped)."""
    if hit is None:
        return None
    share = "every frame" if loss_fraction(hit.loss) >= 1 else f"{hit.loss} of the frames, at random,"
    where = (f"arriving on {hit.device}, {hit.target}'s veth peer (loss on the wire: the sender is not told)"
             if hit.hook == "ingress" else f"leaving by {hit.device}")
    return (f"{hit.target} has netlab's impairment loss {hit.loss}: chain {hit.chain} of table netdev netlab-impair "
            f"in {hit.netns} drops {share} {where}, {then}",
            netlab_command(f"impair --lab {lab} {hit.target} --clear"))  # --lab: another lab may be up too


def _mtu_fix(ns: str, dev: str, mtu: int, size: int, planned: int | None, also: str = "") -> str | None:
    """``ip link set DEV mtu`` the plan's MTU (``up`` sets it), or, without a planned one, the packet's size."""
    if planned is None:
        return f"ip -n {ns} link set {dev} mtu {size}{also}"
    return f"ip -n {ns} link set {dev} mtu {planned}" if planned > mtu else None


def _planned_words(mtu: int, size: int, planned: int | None) -> str:
    if planned is None or planned == mtu:
        return ""
    if planned < size:
        return f" (the plan's MTU {planned} is too small for it too)"
    return f" (the plan says {planned})"


def too_big(link: Any, size: int, ns: str, via: str, to: tuple[str, str], own: bool = False,
            planned: int | None = None, encap: bool = False) -> Reason | None:
    """A ``size``-byte packet (IP length, outer headers included) that device ``to`` cannot take.

    ``own``: the device it leaves by; the kernel itself refuses a DF packet bigger than that MTU
    (``ping -M do`` says "message too long"; a router answers "fragmentation needed"). ``planned``: the MTU the
    plan gives ``to`` (the fix sets it back), if the plan makes it. ``encap``: the packet is encapsulated (VXLAN)
    there: only then are its outer headers and the overlay's MTU said (QA fx61a 3: a same-node flow was)."""
    mtu = getattr(link, "mtu", 0)
    if not size or not mtu or size <= mtu:
        return None
    plan = _planned_words(mtu, size, planned)
    if own:
        return (f"the packet is {size} bytes but {to[1]} in {to[0]} has MTU {mtu}{plan}: with DF set the kernel "
                f"does not send it (message too long / fragmentation needed)", None)
    outer, overlay = (" (IP, with its encapsulation)", "; the overlay needs the underlay's MTU to be the pods' MTU + 50"
                      ) if encap else (" (IP)", "")
    return (f"the packet is {size} bytes{outer} but {to[1]} in {to[0]} takes at most {mtu}"
            f"{plan}: a veth or bridge port drops a frame bigger than its MTU, and no ICMP comes back (an MTU black "
            f"hole{overlay})",
            _mtu_fix(to[0], to[1], mtu, size, planned, "   (or lower the pods' MTU)"))


def forwarded_too_big(link: Any, size: int, ns: str, planned: int | None = None,
                      ports: tuple[tuple[str, int, int], ...] = (), follows: bool = True) -> Reason | None:
    """A forwarded ``size``-byte packet with DF bigger than the MTU of the device ``link`` it is routed out of:
    the router drops it and answers an ICMP fragmentation needed (ip_forward's ip_exceeds_mtu). ``ports``: a
    bridge's ports below their planned MTU, as (name, MTU, planned): the kernel gives a bridge its smallest port's
    MTU, so they are the cause, and their fix comes first (the bridge follows them back). ``follows``: False for a
    bridge whose MTU is not its smallest port's: one set by hand (``ip link set cni0 mtu``), which the kernel no
    longer changes as its ports change (br_mtu_auto_adjust): its own fix is needed too."""
    mtu = getattr(link, "mtu", 0)
    if not size or not mtu or size <= mtu:
        return None
    dev = link.name
    why = ""
    fixes = [f"ip -n {ns} link set {p} mtu {want}" for p, _, want in ports]
    own = _mtu_fix(ns, dev, mtu, size, planned)
    if ports:
        said = ", ".join(f"{p} has MTU {have} (the plan says {want})" for p, have, want in ports)
        why = f"; the kernel gives a bridge its smallest port's MTU, and its port {said}" if follows else \
            (f"; its port {said}, and {dev}'s own MTU was set by hand: the kernel no longer gives it its smallest "
             f"port's, so it stays at {mtu} when the port{'s are' if len(ports) > 1 else ' is'} set back")
        if follows and own:
            why += f" ({dev} follows {'them' if len(ports) > 1 else 'it'} back, unless its own MTU was set by hand)"
    if own and (not ports or not follows or planned is None or min(want for _, _, want in ports) < planned):
        fixes.append(own)  # a bridge follows its ports back, but not above the MTU it had been given, nor once set
    return (f"the packet is {size} bytes with DF set but {dev} in {ns}, the device it is routed out of, has MTU "
            f"{mtu}{_planned_words(mtu, size, planned)}{why}: {ns} drops it and answers an ICMP fragmentation "
            f"needed (mtu {mtu})", " && ".join(fixes) or None)


def path_mtu(ns: str, dst: str, ans: Any, size: int, forwarded: bool) -> Reason | None:
    """A ``size``-byte packet with DF that the path MTU of its route lookup's answer (``ans``, a RouteFacts) refuses.

    What a namespace sends itself meets the MTU it learned from an ICMP fragmentation needed (a cache entry,
    ``mtu_expires``) or the route's own mtu: the kernel refuses it (EMSGSIZE, "message too long") and it never
    leaves. What it forwards meets the route's mtu only (ip_dst_mtu_maybe_forward, ip_forward_use_pmtu 0): it
    drops it and answers a fragmentation needed."""
    mtu, learned = ans.mtu, ans.mtu_expires is not None
    if not size or not mtu or size <= mtu or (forwarded and learned):
        return None
    if learned:
        return (f"{ns} has learned a path MTU of {mtu} bytes to {dst} (a router on the way answered an earlier "
                f"packet with an ICMP fragmentation needed): the packet is {size} bytes with DF set, so the kernel "
                f"refuses to send it (message too long); it never leaves",
                f"ip -n {ns} route flush cache   (forgets it; it is learned again while a hop on the way cannot take "
                f"{size} bytes: trace again)")
    route = ans.matched or f"to {dst}"
    then = f"so {ns} drops it and answers an ICMP fragmentation needed (mtu {mtu})" if forwarded else \
        "so the kernel refuses to send it (message too long); it never leaves"
    plain = re.sub(r" mtu (lock )?\d+", "", ans.matched) if ans.matched else None
    return (f"the route {route} in {ns} has mtu {mtu}: the packet is {size} bytes with DF set, {then}",
            f"ip -n {ns} route replace {plain}" if plain else None)
