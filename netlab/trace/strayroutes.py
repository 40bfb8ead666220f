"""Routes that are not the plan's, in a node's or a pod's namespace: where the packet goes instead, and the fix.

The walker asks the kernel which route it took (``ip route get``, and with
``fibmatch`` the table entry that matched); here that entry is held against
the lab's plan for the namespace:

- a route to a CIDR the plan routes, with another next hop or device (host-gw:
  via a third node, which masquerades the pod traffic it forwards, or drops as
  INVALID a reply to a flow whose start it never saw; vxlan: straight over the
  underlay to the node whose pod CIDR it is, which takes it in by eth0, not
  flannel.1, an asymmetric path that strict rp_filter there drops; a pod's route
  to the cluster via another address than its node's bridge): the fix puts the
  plan's back (``ip route replace``);
- a route the plan does not have, more specific than the plan's route for the
  packet, which it overrides (the routes the kernel makes for the plan's
  addresses count: a pod reaches the pods of its own node straight on the
  link, not through a gateway): a route added by hand, status calls it extra;
  the packet goes its way instead, and the fix deletes it (``ip route del``);
  a route a user's CNI plugins made (on a device their results name: ptp's
  /32 to each pod of the node) is theirs, as status takes it, not extra;
- the kernel refused the lookup because of a route the plan does not have: a
  blackhole ("Invalid argument"), unreachable ("No route to host") or prohibit
  ("Permission denied") route, which ``fibmatch`` does not name either; it is
  read from the namespace's table, and the fix deletes it, or puts the plan's
  route back where it took that route's place.

A packet that goes on by such a route and arrives all the same still took a
path the lab did not plan: trace fails on it (render.TraceResult.astray).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

Reason = tuple[str, str | None]  # (why, fix)
REFUSING = ("blackhole", "unreachable", "prohibit")  # route types the kernel answers a lookup with an error for


def checked(lab: Any, ns: str) -> bool:
    """Whether trace holds the routes of ``ns`` against the plan: a node's or a pod's namespace (not a pod's that
    a user's CNI plugins made: its routes are theirs, as status takes them)."""
    if ns in getattr(lab, "plugin_devs", {}) and lab.plugin_devs[ns] is None:
        return False
    nodes = {n for n, _ in getattr(lab, "node_pod_cidrs", {}).values()}
    return ns in nodes or str(getattr(lab, "names", {}).get(ns, "")).startswith("pod ")


def plugins_route(lab: Any, ns: str, dev: str | None) -> bool:
    """Whether a route out of ``dev`` in ``ns`` is one a user's CNI plugins made: on a device they made (ptp's /32
    to each pod of the node, on the pod's veth; a bridge's), as status takes them (LabMap.plugins_live: a veth no
    result names but whose peer is in a pod is theirs; one added by hand is not): status does not call it extra,
    nor trace."""
    devs = getattr(lab, "plugin_devs", {}).get(ns, frozenset())
    return devs is None or (dev is not None and dev in devs)


def wrong_next_hop(lab: Any, ns: str, gateway: str | None, oif: str | None, matched: str | None) -> Reason | None:
    """The route the kernel took is to a CIDR the plan routes, but another way: another next hop (host-gw: via a
    third node, which forwards it on), or another device. A node's default route is left alone (a pod's is not:
    its Service and internet traffic goes by it). Returns (why, the plan's route put back)."""
    if not matched or not checked(lab, ns):
        return None
    cidr = matched_cidr(matched)
    plan = getattr(lab, "planned_route", {})
    pod = str(getattr(lab, "names", {}).get(ns, "")).startswith("pod ")
    fix = plan.get((ns, cidr)) if cidr is not None and (cidr != "0.0.0.0/0" or pod) else None
    if fix is None:
        return None
    took = _path(lab, ns, cidr, gateway, oif)
    if took is None:
        return None
    return (f"the route to {_named(lab, cidr)} in {ns} goes {took}", fix.replace(" route add ", " route replace ", 1))


def extra_route(lab: Any, ns: str, dst: str, gateway: str | None, oif: str | None,
                matched: str | None) -> Reason | None:
    """The route the kernel took to ``dst`` is none of the plan's, and more specific than the plan's route for
    ``dst`` (its longest prefix that covers it, an address's connected route included), which it overrides: a
    route added by hand (status calls it extra), which sends the packet another way than the plan's (host-gw: via a
    third node; vxlan: out of eth0 or cni0 instead of flannel.1; a pod: through its node's bridge to a pod of the
    same node, or elsewhere). Routes the kernel makes for an address (proto kernel) are not the plan's routes but
    its addresses'. Returns (why, the extra route deleted)."""
    if not matched or not oif or not checked(lab, ns) or plugins_route(lab, ns, oif):
        return None
    cidr = matched_cidr(matched)
    if cidr is None or " proto kernel" in matched or (ns, cidr) in getattr(lab, "planned_connected", ()) \
            or (ns, cidr) in getattr(lab, "planned_route", {}):
        return None
    want = lab.planned_route_for(ns, dst, connected=True) if hasattr(lab, "planned_route_for") else None
    if want is None or IPv4Network(want).prefixlen >= IPv4Network(cidr).prefixlen:
        return None  # wider than the plan's: the plan's route is missing (pod_cidr_by_default, route_fix)
    took = _path(lab, ns, want, gateway, oif)
    if took is None:
        return None  # the same way as the plan's: extra, but harmless to this packet
    plans = "default route" if want == "0.0.0.0/0" else f"route to {_named(lab, want)}"
    via = f" via {gateway}" if gateway else ""
    return (f"the route to {dst} in {ns} is {cidr}, a route the plan does not have (status calls it extra), more "
            f"specific than the plan's {plans}, which it overrides: it goes {took}",
            f"ip -n {ns} route del {cidr}{via} dev {oif}")


def balancer_route(lab: Any, ns: str, gateway: str | None, hops: tuple[str, ...] | list[str], oif: str | None,
                   matched: str | None) -> Reason | None:
    """The internet gateway's route for a LoadBalancer IP (or an externalIP) sent the packet to a node the plan's
    route does not (plan/internet.py: for externalTrafficPolicy Local only the nodes with an endpoint of the
    Service's), e.g. a route replaced by hand: that node's kube-proxy drops an outside client's packet of a Local
    Service ("has no local endpoints"). A route that differs but picked one of the plan's nodes for this packet is
    not its cause. Returns (why, the plan's route put back); None when it took the plan's way."""
    if not matched or getattr(lab, "names", {}).get(ns) != "internet gateway":
        return None
    cidr = matched_cidr(matched)
    fix = getattr(lab, "planned_route", {}).get((ns, cidr)) if cidr is not None else None
    if fix is None or not cidr.endswith("/32"):
        return None
    want = getattr(lab, "planned_route_hops", {}).get((ns, cidr)) or \
        tuple(v for v in [getattr(lab, "planned_route_via", {}).get((ns, cidr))] if v)
    want_dev = getattr(lab, "planned_route_dev", {}).get((ns, cidr))
    if not want or (gateway in want and (want_dev is None or want_dev == oif)):
        return None
    names = getattr(lab, "ip_names", {})
    took = tuple(hops) or ((gateway,) if gateway else ())

    def name(ip: str | None) -> str:
        return names.get(ip or "", ip or "nowhere")
    where = name(gateway) if gateway else f"{oif} directly"
    ip = cidr.split("/")[0]
    return (f"the gateway's route for {ip} sends it to {where}, which the plan does not: the route's hops are "
            f"{', '.join(name(h) for h in took) or 'none'} (want {', '.join(name(h) for h in want)})",
            fix.replace(" route add ", " route replace ", 1))


def refusing_route(k: Any, lab: Any, ns: str, dst: str, message: str) -> Reason | None:
    """The kernel refused the lookup for ``dst`` (``message``, as ``ip route get`` says it), and the route of the
    namespace's table that refused it is a blackhole, unreachable or prohibit route the plan does not have (or has
    as a route that goes somewhere): the most specific route that covers ``dst``. Kernels that cannot list their
    routes (the unit tests' fakes without ``routes``) skip the check. Returns (why, the fix)."""
    read = getattr(k, "routes", None)
    if read is None or not checked(lab, ns):
        return None
    best: tuple[IPv4Network, dict[str, Any]] | None = None
    for r in read(ns):
        try:
            net = IPv4Network("0.0.0.0/0" if r.get("dst") == "default" else str(r.get("dst")), strict=False)
        except ValueError:
            continue
        if IPv4Address(dst) in net and (best is None or net.prefixlen > best[0].prefixlen
                                        or (net.prefixlen == best[0].prefixlen and r.get("type") in REFUSING)):
            best = (net, r)
    if best is None or best[1].get("type") not in REFUSING:
        return None
    net, r = best
    cidr, kind, text = str(net), str(r["type"]), str(r.get("text") or f"{r['type']} {net}")
    planned = getattr(lab, "planned_route", {}).get((ns, cidr))
    want = lab.planned_route_for(ns, dst, connected=True) if hasattr(lab, "planned_route_for") else None
    what = {"blackhole": "drops the packet without a word", "unreachable": "refuses it (ICMP host unreachable)",
            "prohibit": "refuses it (ICMP administratively prohibited)"}[kind]
    if planned is not None:
        return (f"the route to {_named(lab, cidr)} in {ns} is `{text}`, not the plan's route, which goes "
                f"{_way(lab, ns, cidr)}: the kernel {what} (route get says: {message})",
                planned.replace(" route add ", " route replace ", 1))
    plans = "" if want is None else (" the plan's default route" if want == "0.0.0.0/0"
                                     else f" the plan's route to {_named(lab, want)}")
    over = f", which it overrides ({plans.strip()} goes {_way(lab, ns, want)})" if want is not None and \
        IPv4Network(want).prefixlen < net.prefixlen else ""
    return (f"the route to {dst} in {ns} is `{text}`, a route the plan does not have (status calls it extra)"
            f"{over}: the kernel {what} (route get says: {message})", f"ip -n {ns} route del {text}")


def matched_cidr(matched: str) -> str | None:
    """The destination of a route as ``ip route`` prints it: "10.244.1.0/24 via ..." -> "10.244.1.0/24" (a
    blackhole's, "blackhole 10.244.1.0/24", too)."""
    words = matched.split()
    first = words[1] if words[0] in REFUSING + ("local", "broadcast", "unicast") and len(words) > 1 else words[0]
    try:
        return "0.0.0.0/0" if first == "default" else str(IPv4Network(first, strict=False))
    except ValueError:
        return None


def _named(lab: Any, cidr: str) -> str:
    """``10.244.0.0/24 (a's pod CIDR)``: a CIDR, and whose pod CIDR it is."""
    return cidr + next((f" ({node}'s pod CIDR)" for node, (_, c) in lab.node_pod_cidrs.items() if c == cidr), "")


def _way(lab: Any, ns: str, cidr: str) -> str:
    """How the plan's route to ``cidr`` in ``ns`` goes, in words: "via A (a) dev eth0", "directly dev eth0"."""
    want = lab.planned_path(ns, cidr) if hasattr(lab, "planned_path") else None
    if want is None:
        return "elsewhere"
    via, dev = want
    return (f"via {lab.name_ip(via)}" if via else "directly") + (f" dev {dev}" if dev else "")


def _path(lab: Any, ns: str, cidr: str, gateway: str | None, oif: str | None) -> str | None:
    """How the packet goes (``gateway``, ``oif``) against the plan's route to ``cidr`` in ``ns``, in words (None:
    the same way): "via A dev eth0, but the plan's goes via B dev eth0" and the detour that makes. A route the plan
    has with no gateway (a connected one: on the link) sends straight to the destination."""
    want = lab.planned_path(ns, cidr) if hasattr(lab, "planned_path") else \
        (lab.planned_route_via.get((ns, cidr)), lab.planned_route_dev.get((ns, cidr)))
    if want is None:
        return None
    want_via, want_dev = want
    if want_via == gateway and (want_dev is None or want_dev == oif):
        return None
    took = (f"via {lab.name_ip(gateway)}" if gateway else "directly") + f" dev {oif}"
    way = (f"via {lab.name_ip(want_via)}" if want_via else "directly") + f" dev {want_dev or oif}"
    detour = f": the packet takes a detour through {lab.name_ip(gateway)}" if gateway else ""
    if detour and want_via and gateway in getattr(lab, "node_ips", ()):
        if _owner(lab, gateway) == cidr:
            # Straight to the node whose pod CIDR it is (Flannel's DirectRouting on one side only): that node
            # delivers to its pods without NAT (Flannel's RETURN for pod to pod) and saw the flow's start, but
            # the packet comes in by another device than the one its route back leaves by.
            return (f"{took}, but the plan's goes {way}: the packet goes straight to {lab.name_ip(gateway)}, the "
                    f"node of {cidr} itself, and comes in by its {oif}, not {want_dev or oif}: a path that is not "
                    f"the same both ways (asymmetric), which that node drops if its rp_filter is strict")
        detour += (", a node, which masquerades the pod traffic it forwards (Flannel's rule) and drops as INVALID "
                   "a reply to a flow whose start it never saw (kube-proxy's KUBE-FORWARD)")
    return f"{took}, but the plan's goes {way}{detour}"


def _owner(lab: Any, ip: str | None) -> str | None:
    """The pod CIDR of the node whose underlay address is ``ip``."""
    node = getattr(lab, "ip_names", {}).get(ip or "")
    return getattr(lab, "node_pod_cidrs", {}).get(node, (None, None))[1]
