"""What the lab's state remembers of each pod's CNI attachment (``state.extra["cni"]``), without running anything.

``{"pods": {POD: {"phase": "adding" | "added" | "detaching" | "deleted" | "terminated", "node", "containerId", "netns",
"networks": [[conflist, ifname], ...], "capabilityArgs", "attachment": {ip, mac, host_veth, host_mac, host_ifaces,
gateway, prefixlen}}}}``.
"adding" is written before the first plugin runs, so a crash or a failed ADD
still leaves the lab a record to DEL; "deleted": the ADD failed and the DEL
that followed it ran (nothing to DEL); "detaching" is written before a re-attach's
DEL, so a run cut short before the ADD that follows leaves a pod the next up
and status know has no interface (up DELs it again, then ADDs it); "terminated": the pod's containers exited for
good and its sandbox's DEL ran, as a kubelet stops a terminal pod's sandbox (cni/terminated.py). A pod ADDed
again keeps the attachment it had until the new one is there (its node-side devices stay the plugins').
``"devices": {NODE_NETNS: [bridge, ...]}``: what the plugins keep on a node, pods or not (node_devices).
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from netlab.errors import UsageError, down_command
from netlab.model.lab import CniAttachment, Lab

if TYPE_CHECKING:
    from netlab.realize.state import LabState

KEY = "cni"


def pod_records(state: "LabState") -> dict[str, dict[str, Any]]:
    rec = state.extra.get(KEY)
    if not isinstance(rec, dict) or not isinstance(rec.get("pods"), dict):
        rec = {"pods": {}}
        state.extra[KEY] = rec
    pods: dict[str, dict[str, Any]] = rec["pods"]
    return pods


DETACHING = "detaching"  # a record's phase: a re-attach's DEL is about to run (or ran) and its ADD has not
DELETED = "deleted"  # a record's phase: its ADD failed and the DEL that followed it ran (nothing to DEL)
# A record's phase: the pod is terminal (Completed or Error) and the DEL of its stopped sandbox ran (cni/terminated.py);
# the record keeps the attachment it had: the pod's IP stays in its status, as the API keeps a terminal pod's podIPs
TERMINATED = "terminated"
# A record's mark: the pod's network namespace was deleted under it (the kubelet's SandboxChanged). Its sandbox is
# DELed with an empty CNI_NETNS, as containerd's StopPodSandbox does for a closed namespace, then a new sandbox ADDed.
SANDBOX_GONE = "sandbox_gone"
# A record's mark: no CHECK ran since the pod's ADD (up runs none after a first ADD, as containerd runs none): the
# first CHECK that fails while the pod is as that ADD made it is the plugin's own, marked as one (cni/first_check.py)
UNCHECKED = "unchecked"


def mark_gone_sandboxes(state: "LabState", mounted: Callable[[str], bool]) -> list[str]:
    """Mark the records of the pods whose namespace the lab made and the kernel has no more (``mounted`` says):
    their sandbox is gone; the pods marked. Only the record changes (saved with it): no plugin runs here."""
    out = []
    rec = state.extra.get(KEY)
    pods = rec.get("pods") if isinstance(rec, dict) else None
    for pod, prec in (pods if isinstance(pods, dict) else {}).items():
        if not isinstance(prec, dict) or prec.get("phase") == DELETED or prec.get(SANDBOX_GONE):
            continue
        netns = prec.get("netns")
        if isinstance(netns, str) and state.netns.get(netns) == "created" and not mounted(netns):
            prec[SANDBOX_GONE] = True
            out.append(pod)
    return out


def detached(state: "LabState", lab: Lab) -> frozenset[str]:
    """The pods of ``lab`` (a lab whose CNI plugins attach its pods) with no network from those plugins: a
    re-attach cut short between its DEL and its ADD (phase "detaching"), one whose ADD failed, and then the ADD
    with the config it had too, its DEL run (phase "deleted": "left detached", up's failure says), or one never
    attached (no record, or one whose ADD had begun, "adding": an `up` killed before its ADDs, or during one):
    no eth0, no address, until the next up ADDs them. Those are the pods status says are detached or "not attached
    through CNI" (cni/lifecycle.drift); a builtin lab has none. A terminal pod whose stopped sandbox was DELed (phase
    "terminated") is none of those: it keeps its IP in ``get pods``, as a Completed pod does (:func:`terminated_ips`).
    Reads the record only (pod_records makes one where none is)."""
    if lab.cni == "builtin":
        return frozenset()
    rec = state.extra.get(KEY)
    pods = rec.get("pods") if isinstance(rec, dict) else None
    pods = pods if isinstance(pods, dict) else {}
    return frozenset(p.name for p in lab.pods
                     if not isinstance(prec := pods.get(p.name), dict)
                     or prec.get("phase") not in ("added", TERMINATED))


def terminated_ips(state: "LabState") -> dict[str, str]:
    """The terminal pods whose stopped sandbox was DELed (phase "terminated") -> the address their plugins gave them:
    a Succeeded or Failed pod keeps its podIPs in the API (the kubelet copies them from its last status once the
    sandbox reports none), though host-local released the lease."""
    rec = state.extra.get(KEY)
    pods = rec.get("pods") if isinstance(rec, dict) else None
    return {name: att["ip"] for name, prec in (pods if isinstance(pods, dict) else {}).items()
            if isinstance(prec, dict) and prec.get("phase") == TERMINATED
            and isinstance(att := prec.get("attachment"), dict) and isinstance(att.get("ip"), str)}


def record_leases(state: "LabState") -> dict[str, IPv4Address]:
    """Pod -> the address its plugins may still hold a lease of, as its record says: attached (phase "added", its
    DEL not run or failed: a removed pod's record stays so until a DEL succeeds), or its ADD begun ("adding": the
    address it asked for). None for a pod whose DEL ran (deleted, detaching, terminated): its lease was released.
    Reads the records only."""
    rec = state.extra.get(KEY)
    pods = rec.get("pods") if isinstance(rec, dict) else None
    out: dict[str, IPv4Address] = {}
    for name, prec in (pods if isinstance(pods, dict) else {}).items():
        if not isinstance(prec, dict) or prec.get("phase") not in ("added", "adding"):
            continue
        att = prec.get("attachment")
        had = [att.get("ip")] if isinstance(att, dict) else []
        asked = [a[1] for a in prec.get("args") or [] if isinstance(a, list) and len(a) == 2 and a[0] == "IP"]
        for text in had + asked if prec.get("phase") == "added" else asked + had:
            try:
                out[name] = IPv4Address(text.split("/")[0])
                break
            except (ValueError, AttributeError):
                continue
    return out


def node_devices(state: "LabState") -> dict[str, list[str]]:
    """Node namespace -> the devices the lab's CNI plugins keep there (a bridge), whatever became of the pods whose
    ADD made them: a bridge plugin makes its bridge at the node's first ADD and never deletes it, also when a
    later plugin of the chain fails or when the node's last pod goes (DEL takes the pod's veth, not the bridge)."""
    pod_records(state)
    rec = state.extra[KEY]
    devs = rec.get("devices")
    if not isinstance(devs, dict):
        devs = rec["devices"] = {}
    out: dict[str, list[str]] = devs
    return out


def note_devices(state: "LabState", node_netns: str, names: Iterable[str]) -> None:
    """Record ``names`` as the plugins' devices on that node (see node_devices)."""
    have = node_devices(state).setdefault(node_netns, [])
    have += [n for n in dict.fromkeys(names) if isinstance(n, str) and n and n not in have]


def attachments(state: "LabState") -> dict[str, CniAttachment]:
    out = {}
    rec = state.extra.get(KEY)
    pods = rec.get("pods") if isinstance(rec, dict) else None
    for name, prec in (pods or {}).items():
        att = prec.get("attachment") if isinstance(prec, dict) and prec.get("phase") == "added" \
            and not prec.get(SANDBOX_GONE) else None  # a gone namespace's: the plugins ADD its new sandbox
        if not isinstance(att, dict):
            continue
        try:
            out[name] = CniAttachment(ip=IPv4Address(att["ip"]), mac=att.get("mac"), host_veth=att.get("host_veth"),
                                      host_mac=att.get("host_mac"),
                                      host_ifaces=tuple(i for i in att.get("host_ifaces") or () if isinstance(i, str)),
                                      gateway=IPv4Address(att["gateway"]) if att.get("gateway") else None,
                                      prefixlen=_prefixlen(att.get("prefixlen")))
        except (KeyError, ValueError, TypeError):
            continue  # a damaged record: status shows the pod as netlab planned it
    return out


def _prefixlen(value: Any) -> int | None:
    """A saved attachment's on-link prefix length; None when not one (an older state's, or damaged)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 32 else None


def node_moves(lab: Lab, state: "LabState | None") -> list[tuple[str, str, str]]:
    """Pods of a running lab that ``lab`` puts on another node: (pod, old node, new node), never refused here."""
    if state is None or not isinstance(state.topology, dict):
        return []
    was = {p.get("name"): p.get("node") for p in state.topology.get("pods") or [] if isinstance(p, dict)}
    return [(p.name, was[p.name], p.node) for p in lab.pods if was.get(p.name) not in (None, p.node)]


# The words of every line that says a CNI pod's move (:func:`move_refused`): `up` of the file refuses it whole, so
# status names no `up` of it as the repair (workload/policy.up_leaves, api/internals; QA q29 #2)
MOVE_WORDS = ", and its CNI plugins attached it on "


def move_refused(lab: Lab, move: tuple[str, str, str], edited: str = "", first: str = "`up`") -> str:
    """Why ``up`` refuses to move a pod its CNI plugins attached, with the two steps (README, Topologies).
    ``edited``: what else changed since its ADD (a conflist edited in place: cni/edited.py), said after it, and
    ``first`` the `up` of the first step then."""
    pod, old, new = move
    return (f"lab {lab.name}: pod {pod} moves from node {old} to {new}{MOVE_WORDS}{old}"
            f"{edited}: take the pod out of the file and {first} (its plugins' DEL runs), then put it back on {new} "
            f"and `up` again")


def moved_pods(lab: Lab, state: "LabState | None") -> list[tuple[str, str, str]]:
    """Pods of a running lab that ``lab`` puts on another node: (pod, old node, new node).

    Kubernetes never moves a pod: it deletes it and makes a new one, with a new sandbox, on the other node.
    So does ``up`` (lab/up.py). Through CNI plugins it would need the old chain's DEL on the old node and an ADD
    on the new one in one run: refused, with the two-step way."""
    moved = node_moves(lab, state)
    if moved and lab.cni != "builtin":
        raise UsageError(move_refused(lab, moved[0]))
    return moved


def remade_pods(lab: Lab, state: "LabState | None") -> list[tuple[str, str]]:
    """Pods of a running lab that ``lab`` makes anew: (pod, what changed, in words).

    A pod's address never changes while it lives (its CNI IPAM's lease): Kubernetes makes a new pod, with a new
    sandbox, on another node (:func:`moved_pods`), in another namespace (:func:`renamespaced_pods`), or when its
    node's block changed (a new ``spec.podCIDR`` is a
    node deleted and registered again), or when its file pins another address (``ip:``, or another pod's pin takes
    its own). So does ``up``, the same way for each. With CNI plugins the address is their IPAM's: only moves (to
    another node or namespace)."""
    out = [(pod, f"moves from node {old} to {new}") for pod, old, new in moved_pods(lab, state)]
    moving = {pod for pod, _ in out}
    out += [(pod, f"moves from Kubernetes namespace {old} to {new}") for pod, old, new in renamespaced_pods(lab, state)
            if pod not in moving]
    held = lab.held_before
    if state is None or held is None or lab.cni != "builtin":
        return out
    moving = {pod for pod, _ in out}
    for p in lab.pods:
        was = held.pods.get(p.name)
        if p.name in moving or was is None or (was.namespace, was.node) != (p.spec.namespace, p.node) or was.ip == p.ip:
            continue
        block = lab.addressing.node_pod_cidr.get(p.node)
        why = (f"node {p.node}'s pod CIDR is now {block}" if block != was.node_cidr
               else "its file's ip: asks for it" if p.spec.ip == p.ip else f"another pod's ip: takes {was.ip}")
        out.append((p.name, f"changes address from {was.ip} to {p.ip} ({why})"))
    return out


def remade_line(pod: str, why: str, ahead: bool = False) -> str:
    """What ``up`` says of a pod it makes anew (:func:`remade_pods`), and (``ahead``) what its previews, `status -t
    FILE` and `plan`, say it will do: one sentence for both."""
    if not ahead:
        return f"pod {pod} {why}: made anew in a new namespace (Kubernetes makes a new pod)"
    return (f"pod {pod} {why}: up makes it anew in a new namespace, its containers started again (Kubernetes "
            "makes a new pod)")


def up_ahead(lab: Lab, state: "LabState | None", status: bool = False) -> list[str]:
    """What the ``up`` of ``lab`` (resolved with what the running lab holds) does to the running lab ``state``
    that its plan's objects do not show: the warnings it gives of addresses another's ip: takes, and the pods it
    makes anew (or the line it refuses with); nothing for a lab that is not up. ``status``: for `status -t FILE`,
    whose drift says a CNI pod's move to another node (cni/edited.drift: its record's node is not the file's),
    so no warning says it again (QA q24 #2)."""
    if state is None:
        return []
    out = lab.displaced()
    try:
        out += [remade_line(pod, why, ahead=True) for pod, why in remade_pods(lab, state)]
    except UsageError as exc:  # a CNI plugins' pod moved: up refuses, and says how
        if not (status and recorded_moves(lab, state)):
            out.append(f"up refuses: {exc}")
    return out


def recorded_moves(lab: Lab, state: "LabState") -> list[tuple[str, str, str]]:
    """Pods ``lab`` puts on another node than the one their CNI plugins attached them on, as their records say:
    (pod, old node, new node). A move `up` refuses (:func:`moved_pods`), and `status -t FILE`'s drift."""
    if lab.cni == "builtin":
        return []
    records = pod_records(state)
    return [(p.name, old, p.node) for p in lab.pods if isinstance(prec := records.get(p.name), dict)
            and isinstance(old := prec.get("node"), str) and old != p.node]


def renamespaced_pods(lab: Lab, state: "LabState | None") -> list[tuple[str, str, str]]:
    """Pods of a running lab that ``lab`` puts in another Kubernetes namespace: (pod, old namespace, new one).

    A pod's namespace is part of its identity (namespace/name, as the API server stores it): a pod in another
    namespace is another pod, made with a new sandbox, whatever its name. Through CNI plugins that is their DEL
    and an ADD in one run: refused, with the two-step way, as a move to another node is (:func:`moved_pods`)."""
    if state is None or not isinstance(state.topology, dict):
        return []
    was = {p.get("name"): p.get("namespace") or "default" for p in state.topology.get("pods") or []
           if isinstance(p, dict)}
    out = [(p.name, was[p.name], p.spec.namespace) for p in lab.pods
           if was.get(p.name) not in (None, p.spec.namespace)]
    if out and lab.cni != "builtin":
        pod, old, new = out[0]
        raise UsageError(f"lab {lab.name}: pod {pod} moves from Kubernetes namespace {old} to {new}, and its CNI "
                         f"plugins attached it as {old}/{pod}: take the pod out of the file and `up` (its plugins' "
                         f"DEL runs), then put it back in namespace {new} and `up` again")
    return out


def check_cni_change(lab: Lab, state: "LabState | None") -> None:
    """A running lab whose pods a CNI chain attached keeps that chain: another ``network.cni`` needs a new lab.

    From builtin to a CNI mode netlab's own pod side is replaced (extras, then
    ADD); the other way round the plugins' objects and netlab's would meet
    half-made, and from one chain to another the old chain's DEL must run
    with the old config first. ``down`` then ``up`` does both in order.
    """
    if state is None or not isinstance(state.topology, dict):
        return
    old = (state.topology.get("network") or {}).get("cni", "builtin")
    new = lab.topo.network.cni
    new_json = new if isinstance(new, str) else new.model_dump(mode="json", by_alias=True)
    if old == "builtin" or old == new_json:
        return
    show = lambda v: v if isinstance(v, str) else f"conflist {v.get('conflist')}"  # noqa: E731
    raise UsageError(f"lab {lab.name}: network.cni changed from {show(old)} to {show(new_json)} while the lab "
                     f"is up; its pods were attached by the old chain: take it down first "
                     f"(`{down_command(lab.name)}`), then `up`")


def attachment_json(att: CniAttachment, host_ifaces: list[str] | None = None) -> dict[str, Any]:
    return {"ip": str(att.ip), "mac": att.mac, "host_veth": att.host_veth, "host_mac": att.host_mac,
            "host_ifaces": list(host_ifaces if host_ifaces is not None else att.host_ifaces),
            "gateway": str(att.gateway) if att.gateway is not None else None, "prefixlen": att.prefixlen}


def plugin_made(lab: Lab, state: "LabState | None") -> dict[str, set[str] | None]:
    """Namespace -> devices a user's plugins made there (None: the whole namespace is theirs).

    With a user's conflist the pod side is whatever the plugins did: a pod's
    namespace is theirs (but for what netlab itself plans there: lo, sysctls),
    and so are the node-side interfaces their results name (a bridge, veths)
    with the addresses and routes on them. Status and up leave those to the
    plugins' CHECK instead of calling them extra (or deleting them).
    """
    if state is None or lab.cni != "conflist":
        return {}
    out: dict[str, set[str] | None] = {}
    rec = state.extra.get(KEY)
    pods = rec.get("pods") if isinstance(rec, dict) else None
    kept = rec.get("devices") if isinstance(rec, dict) else None  # a node's bridge, with or without pods
    for node_ns, names in (kept if isinstance(kept, dict) else {}).items():
        if isinstance(node_ns, str) and isinstance(names, list):
            out.setdefault(node_ns, set()).update(n for n in names if isinstance(n, str))
    for name, prec in (pods or {}).items():
        if not isinstance(prec, dict):
            continue
        if isinstance(prec.get("netns"), str):
            out[prec["netns"]] = None
        att = prec.get("attachment")
        node_ns = prec.get("node_netns")
        if isinstance(att, dict) and isinstance(node_ns, str):
            devs = out.setdefault(node_ns, set())
            if devs is not None:
                devs.update(d for d in att.get("host_ifaces") or [] if isinstance(d, str))
    if pods or kept:  # every node, once the plugins ran (live_made); before, a lab that was builtin keeps its own
        for node in lab.nodes:  # cni0 and veths, extra until up deletes them, then ADDs (check_cni_change)
            out.setdefault(node.netns, set())
    return out


def is_plugin_made(drift: Any, made: dict[str, set[str] | None]) -> bool:
    """An ``extra`` drift that is the plugins' (see plugin_made; a node's devices as they are now: live_made)."""
    if not made or drift.state != "extra":
        return False
    res = drift.resource
    if res.netns not in made:
        return False
    devs = made[res.netns]
    if devs is None:
        return res.kind not in ("nat",)
    return any(getattr(res, attr, None) in devs for attr in ("name", "dev", "master"))


def plugin_pods(state: "LabState | None") -> dict[str, dict[str, frozenset[str]]]:
    """Node namespace -> the namespaces of the pods its plugins were asked to attach there -> the interfaces the
    runtime asked their chains for (CNI_IFNAME, as the pod's record has them)."""
    rec = state.extra.get(KEY) if state is not None else None
    pods = rec.get("pods") if isinstance(rec, dict) else None
    out: dict[str, dict[str, frozenset[str]]] = {}
    for prec in (pods if isinstance(pods, dict) else {}).values():
        if isinstance(prec, dict) and isinstance(prec.get("netns"), str) and isinstance(prec.get("node_netns"), str):
            nets = prec.get("networks")
            ifs = frozenset(n[1] for n in nets if isinstance(n, list) and len(n) > 1 and isinstance(n[1], str)) \
                if isinstance(nets, list) else frozenset()
            out.setdefault(prec["node_netns"], {})[prec["netns"]] = ifs
    return out


def plugin_pairs(node_links: Iterable[Any], pods: Mapping[str, tuple[frozenset[str], Iterable[Any]]],
                 nsids: Mapping[str, int]) -> dict[str, tuple[str, str]]:
    """A node's veths (its links, as the kernel dumps them: rtnl_parse.LinkMsg) whose peer is the interface the
    runtime asked one of the node's own pods' chains for (``pods``: pod namespace -> (its CNI_IFNAMEs, its
    links)): veth name -> (pod namespace, that interface). The peer is that interface only when the veth's
    IFLA_LINK_NETNSID is the id the node gives the pod's namespace (``nsids``: kernel/nsid.py) and the pod's link
    of that index is the interface named, paired back: ifindexes and ids are per namespace, and a veth a hand made
    to another namespace may have the very numbers of another node's pod pair (QA q31 #2)."""
    ends = {(nsids[ns], p.index, p.peer): (ns, p.name) for ns, (ifnames, plinks) in pods.items() if ns in nsids
            for p in plinks if p.kind == "veth" and p.name in ifnames and p.peer_netnsid is not None}
    return {n.name: ends[key] for n in node_links
            if n.kind == "veth" and (key := (n.peer_netnsid, n.peer, n.index)) in ends}


def plugin_node_devices(node_links: Iterable[Any], pods: Mapping[str, tuple[frozenset[str], Iterable[Any]]],
                        nsids: Mapping[str, int], named: Iterable[str]) -> set[str]:
    """The devices of a node (its links, as the kernel dumps them: rtnl_parse.LinkMsg) that a user's CNI plugins
    made: those their conflist or results name (``named``: a bridge, veths), a veth paired with one of the node's
    own pods (:func:`plugin_pairs`, ``pods`` and ``nsids`` as there), the bridge such a veth is a port of (one the
    plugin names nowhere: its name hardcoded, or its ``bridge`` key under a wrapper's ``delegate``; QA q38 #3),
    and a port of one of those bridges that is no veth (a plugin's VXLAN or tap). That is the host end of a pod's
    pair, which a 0.1.0/0.2.0 result, read as libcni reads it, does not name, nor a 1.0.0 one without
    ``interfaces`` (QA q24 #1). A veth port of their bridge is theirs only as any veth is, paired with a pod of
    the node: a bridge plugin puts its pods' veths there and nothing else (QA q38 #2). Anything else there netlab
    does not plan is someone's: a veth added by hand (its peer in the node itself, or elsewhere; a port of their
    bridge or not), and the routes and addresses on it, are extra (QA q29 #1)."""
    links = list(node_links)
    by_index = {n.index: n for n in links}
    paired = set(plugin_pairs(links, pods, nsids))
    bridges = {m.name for n in links if n.name in paired and (m := by_index.get(n.master)) is not None
               and m.kind == "bridge"}
    out = set(named) | paired | bridges
    return out | {n.name for n in links if n.kind != "veth" and n.master is not None
                  and getattr(by_index.get(n.master), "name", None) in out}


def live_made(made: dict[str, set[str] | None], ns: str, snaps: Mapping[str, Any],
              pods: Mapping[str, Mapping[str, frozenset[str]]],
              nsids: Callable[[str, Sequence[str]], dict[str, int]]) -> dict[str, set[str] | None]:
    """``made`` with node ``ns``'s devices as its snapshot in ``snaps`` has them (plugin_node_devices), the
    snapshots there of its own pods (``pods``: plugin_pods) giving their veths' peers and ``nsids`` (a Kernel's)
    the ids the node gives their namespaces; ``made`` itself for a pod or another namespace."""
    devs = made.get(ns)
    if devs is None or ns not in snaps:
        return made
    mine = {p: (ifs, snaps[p].links.values()) for p, ifs in pods.get(ns, {}).items() if p in snaps}
    return {**made, ns: plugin_node_devices(snaps[ns].links.values(), mine, nsids(ns, sorted(mine)) if mine else {},
                                            devs)}


def attached_lab(lab: Lab, state: "LabState | None") -> Lab:
    """``lab`` with its pods as their plugins made them (a builtin lab is left as it is)."""
    if state is None or lab.cni == "builtin":
        return lab
    known = {p.name for p in lab.pods}
    return lab.with_attachments({k: v for k, v in attachments(state).items() if k in known})
