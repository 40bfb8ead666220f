"""The CNI side of a pod's sandbox, as data: which networks a runtime attaches a pod to, and the ADD it runs.

A lab whose ``network.cni`` is ``reference`` or a conflist leaves the pod side
to the plugins, as a node does: the kubelet's ``SetupPod`` asks the runtime
(containerd) to attach the pod's namespace, and the runtime runs each plugin of
each network in the node's own namespace (the lab's "host")::

    <lab>-<node>:  loopback   CNI_COMMAND=ADD CNI_NETNS=/run/netns/<lab>-<pod> CNI_IFNAME=lo
                   bridge     CNI_COMMAND=ADD CNI_NETNS=/run/netns/<lab>-<pod> CNI_IFNAME=eth0
                     └─ makes: veth<8 hex> (a cni0 port) ═══ eth0 <pod's address>, its routes

so the plan holds none of the pod's own objects before ``up`` (plan/build.py
``pod_side``): :func:`add_steps` says, one step per pod, what the runtime will
call and what the plugins are expected to make. ``netlab plan`` prints the
steps after the objects, as ``up`` runs the ADDs after it made the network
(netlab.cni.lifecycle). Pure: nothing here runs a plugin (netlab.cni does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, ClassVar

from netlab.errors import UsageError
from netlab.model.cniconf import Conflist, ConflistError, at_least, conflist_bridge, parse_conflist, read_conflist
from netlab.model.bandwidth import pod_bandwidth
from netlab.model.hostlocal import FLANNEL, host_local_config, with_data_dir
from netlab.model.runtime_ranges import declares_ip_ranges, own_ranges
from netlab.model.hostports import port_mappings
from netlab.model.lab import Lab, NodeInfo, PodInfo
from netlab.model import naming
from netlab.model.naming import NETNS_DIR  # where ip-netns(8) and netlab.kernel.netns mount it: CNI_NETNS
from netlab.model.topology import CNI_BIN_DIR, CniConflist

POD_IF = "eth0"
LOOPBACK = Conflist(name="cni-loopback", cni_version="1.0.0", plugins=({"type": "loopback"},),
                    raw={"cniVersion": "1.0.0", "name": "cni-loopback", "plugins": [{"type": "loopback"}]})
# CHECK came with 0.4.0; Flannel's manifest says 0.3.1, so the reference list speaks 1.0.0 to
# the same plugins (they make the same kernel objects) and status can ask them to CHECK.
REFERENCE_VERSION = "1.0.0"
SANDBOX_ID = "<sandbox id>"  # 64 hex, new for each sandbox the runtime sets up (netlab.cni.conf.new_container_id)
HOST_LOCAL_DIR = "<state dir>/cni/networks/<node>"  # host-local's leases: the node's own, in the lab's state directory


def bin_dirs(lab: Lab, debian: str | list[str] = CNI_BIN_DIR) -> list[str]:
    """CNI_PATH: the user's binDir, then Debian's (the runtime's own loopback is there; or the folders
    NETLAB_CNI_PATH names, cni/paths.py)."""
    machine = [debian] if isinstance(debian, str) else list(debian)
    cni = lab.topo.network.cni
    user = [cni.bin_dir] if isinstance(cni, CniConflist) and cni.bin_dir not in machine else []
    return user + machine


def reference_conflist(lab: Lab, node: NodeInfo, data_dir: str) -> Conflist:
    """The bridge plugin as Flannel's CNI plugin delegates to it on ``node`` (plan/flannel.py).

    Three additions: the ``ips`` capability, so host-local gives the pod its
    planned address from ``runtimeConfig.ips``; a host-local ``dataDir`` inside
    the lab's state directory instead of /var/lib/cni/networks; and the
    gateway written into the cluster route. The bridge plugin adds that route
    via the gateway anyway (the kernel holds the same route), but its CHECK
    looks for a route with no gateway when the result has none, and fails
    (containernetworking/plugins#886): with ``gw`` the result says what the
    plugin did, and CHECK can pass.
    """
    from netlab.plan import flannel  # and its rules' modules: not for pod_bridge (probe, trace)

    conf = flannel.delegate_config(lab, node)
    conf.pop("cniVersion", None)
    name = conf.pop("name")
    conf["capabilities"] = {"ips": True}
    conf["ipam"]["dataDir"] = data_dir
    for route in conf["ipam"].get("routes", []):
        route.setdefault("gw", str(node.gateway.ip))
    raw = {"cniVersion": REFERENCE_VERSION, "name": name, "plugins": [conf]}
    return parse_conflist(json.dumps(raw))


def user_conflist(lab: Lab) -> Conflist:
    cni = lab.topo.network.cni
    assert isinstance(cni, CniConflist)
    return read_conflist(cni.conflist)


def pod_bridge(lab: Lab) -> str | None:
    """The bridge whose ports the pods' veths are in every node, for messages: netlab's cni0 (builtin, and the
    reference list's bridge plugin, whose default name it is), or a conflist's bridge plugin's ``bridge`` (the
    plugin's default cni0 when it names none). None when the conflist has no bridge plugin (ptp routes each pod
    alone) or cannot be read now.

    A running lab's pods say it first: the interfaces their plugins' results name on the node (any plugin's
    bridge, such as examples/cni/bash-bridge's bashbr0; ptp's veth alone: none)."""
    if lab.cni != "conflist":
        return naming.BRIDGE
    made = {a.bridge for a in lab.attached.values() if a.host_ifaces and a.host_veth}
    if len(made) == 1:
        return made.pop()
    try:
        net = user_conflist(lab)
    except ConflistError:
        return None
    return conflist_bridge(net)


def lab_bridge(lab: Lab) -> str | None:
    """:func:`pod_bridge`, cached on the lab object (a conflist is read once a run, not once a probe)."""
    if "_probe_bridge" not in lab.__dict__:
        lab.__dict__["_probe_bridge"] = pod_bridge(lab)
    bridge: str | None = lab.__dict__["_probe_bridge"]
    return bridge


PTP_GATEWAY = "pod veths"  # ptp gives each pod's host-side veth the gateway's address (/32)


def gateway_holder(lab: Lab) -> str | None:
    """What holds each node's pod gateway, the first address of its pod CIDR (NodeInfo.gateway), as the conflist
    says (before its plugins ran; :func:`node_gateway` asks a running lab's results first):

    - cni0: netlab's own, the reference list's;
    - a conflist's bridge plugin's bridge (qnbr0) when it is the pods' gateway (isGateway, or isDefaultGateway,
      which implies it);
    - ``PTP_GATEWAY`` for the ptp plugin, which puts the gateway's address on the node's end of every pod's veth
      (a /32 each, the pod's one neighbour: ptp routes each pod alone, no bridge).

    Both plugins only when host-local takes the node's range from the runtime (no ranges, subnet or gateway of
    its own): the gateway is that range's first address. None otherwise: a user's plugins put the gateway where
    they like (another range's, a router's), or nowhere. macvlan and ipvlan attach pods to a parent device with
    no gateway of the node's own (their pods' traffic does not pass the node's namespace): netlab does not plan
    for them, and names no gateway.
    """
    if lab.cni != "conflist":
        return naming.BRIDGE
    bridge = pod_bridge(lab)
    try:
        net = user_conflist(lab)
    except ConflistError:
        return None
    for p in net.plugins:
        ipam = p.get("ipam") if isinstance(p.get("ipam"), dict) else {}
        own_range = any(k in ipam for k in ("ranges", "subnet", "gateway"))
        if ipam.get("type") != "host-local" or own_range:
            continue
        if p["type"] == "ptp":
            return PTP_GATEWAY
        if _bridge_gateway(p) and p.get("bridge", naming.BRIDGE) == bridge:
            return bridge
    return None


def _bridge_gateway(plugin: dict[str, Any]) -> bool:
    """A bridge plugin that gives its bridge the pods' gateway address."""
    return plugin["type"] == "bridge" and bool(plugin.get("isGateway") or plugin.get("isDefaultGateway"))


def node_gateway(lab: Lab, node: NodeInfo) -> tuple[IPv4Address, str] | None:
    """(address, what holds it) of the gateway the pods of ``node`` route by, an address of the node's own; None
    when not known, or not the node's.

    A running lab's results say the address first: the gateway the plugins gave the node's pods (when they agree),
    wherever their IPAM took it from (its own range, its own gateway). What holds it: the bridge plugin's bridge
    when it is the gateway (isGateway: its result names the IPAM's gateway either way), ptp's pod veths; for a
    plugin netlab does not know, the bridge its results name beside the pod's veth (examples/cni/bash-bridge's
    bashbr0): the pods reach their gateway on that bridge, which the plugin made to be it. A result names no
    interface for the gateway's address itself, so that last one is read from the plugin's words, not the
    kernel's. Without results: :func:`gateway_holder`, at the pod CIDR's first address. netlab's own: cni0's, on a
    node that has it (Lab.bridge_nodes: none before its first pod)."""
    if lab.cni != "conflist":
        return (node.gateway.ip, naming.BRIDGE) if node.name in lab.bridge_nodes() else None
    results = [a for p in lab.pods if p.node == node.name for a in [lab.attached.get(p.name)] if a is not None]
    said = {a.gateway for a in results if a.gateway is not None}
    if len(said) != 1:
        holder = gateway_holder(lab) if not said else None  # pods told different gateways: none is the node's
        return (node.gateway.ip, holder) if holder else None
    gateway = said.pop()
    try:
        plugins = user_conflist(lab).plugins
    except ConflistError:
        return None
    bridges = {a.bridge for a in results}
    if any(p["type"] == "ptp" for p in plugins):
        return gateway, PTP_GATEWAY
    known = [p for p in plugins if p["type"] == "bridge"]
    if known:
        return (gateway, pod_bridge(lab) or naming.BRIDGE) if any(_bridge_gateway(p) for p in known) else None
    bridge = bridges.pop() if len(bridges) == 1 else None
    return (gateway, bridge) if bridge else None


def node_leases(net: Conflist, data_dir: str) -> Conflist:
    """``net`` with host-local's leases in ``data_dir`` (the node's) where a host-local IPAM its plugins hand on names
    no dataDir: a plugin's own ``ipam``, Flannel's (which it hands its delegate, host-local when it names no type,
    also when absent), a wrapper's ``delegate.ipam`` (model/hostlocal.py).

    host-local's default, /var/lib/cni/networks/<network>, is on a real node's own disk; here it would be the
    machine's, shared by every node of every lab: two labs of one conflist took each other's addresses (the
    second's ADD failed, "is not available") and the leases outlived the labs. A dataDir the conflist sets is
    its author's choice, kept."""
    plugins = [with_data_dir(p, data_dir) for p in net.plugins]
    if plugins == list(net.plugins):
        return net
    return parse_conflist(json.dumps({**net.raw, "plugins": plugins}))


def networks(lab: Lab, node: NodeInfo, data_dir: str) -> list[tuple[Conflist, str]]:
    """(network, interface) a pod of ``node`` is attached to, in order: loopback first, as containerd does.
    ``data_dir``: the node's folder for host-local's leases."""
    main = reference_conflist(lab, node, data_dir) if lab.cni == "reference" else node_leases(user_conflist(lab),
                                                                                                 data_dir)
    return [(LOOPBACK, "lo"), (main, POD_IF)]


def cni_args(pod: PodInfo, cid: str, ip: IPv4Address | None) -> list[tuple[str, str]]:
    """CNI_ARGS as the kubelet's runtime sets them (the pod's Kubernetes namespace and name, its sandbox id);
    IP= asks the IPAM (host-local, static) for ``ip``, the address :func:`capability_args` is given for the same
    ADD (one ADD's arguments never contradict each other: QA q20 #2); none when ``ip`` is None (:func:`asked_ip`:
    containerd never sets IP=, the IPAM picks). No K8S_POD_UID: a lab's pods have no API object to take it from.
    The bare address, as recorded; :func:`network_args` gives a static IPAM's network the form it takes."""
    return [("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", pod.spec.namespace), ("K8S_POD_NAME", pod.name),
            ("K8S_POD_INFRA_CONTAINER_ID", cid), *([("IP", str(ip))] if ip is not None else [])]


STATIC = "static"


def static_ipam(net: Conflist) -> bool:
    """Whether a plugin of ``net`` hands the static IPAM its config: its own ``ipam``, or a wrapper's
    ``delegate.ipam``."""
    for plugin in net.plugins:
        delegate = plugin.get("delegate")
        for ipam in (plugin.get("ipam"), delegate.get("ipam") if isinstance(delegate, dict) else None):
            if isinstance(ipam, dict) and ipam.get("type") == STATIC:
                return True
    return False


def network_args(net: Conflist, args: list[tuple[str, str]], caps: dict[str, Any]) -> list[tuple[str, str]]:
    """CNI_ARGS as the plugins of ``net`` get them: a static IPAM's network gets IP= as ``address/prefix``, the
    planned prefix (the node's podCIDR's, what runtimeConfig.ips says for the same ADD): static parses IP= with
    net.ParseCIDR and fails every ADD, CHECK and DEL on a bare address ("the 'ip' field is expected to be in CIDR
    notation"; plugins/ipam/static). Any other network gets the bare address: host-local takes it (and, from
    v1.0.0, also a prefix, which it ignores), and so does a plugin that reads IP= itself
    (examples/cni/bash-bridge)."""
    cidr = next((c for c in caps.get("ips") or [] if isinstance(c, str) and "/" in c), None)
    if cidr is None or not static_ipam(net):
        return args
    return [(k, cidr if k == "IP" and v == cidr.split("/")[0] else v) for k, v in args]


def asked_ip(lab: Lab, pod: PodInfo, net: Conflist | None) -> IPv4Address | None:
    """The address a pod's ADD asks its plugins for (CNI_ARGS IP=, runtimeConfig.ips): its planned one; None for a
    pod without ``ip:`` whose chain ``net`` (the lab's conflist) has a host-local IPAM whose own ranges cannot give
    it (``rangeStart``/``rangeEnd``, or a range that is not the node's podCIDR, without the ipRanges capability):
    host-local refuses an address asked outside its ranges ("failed to allocate all requested IPs", every try),
    where a real node's runtime asks for none (containerd never sets IP=). The plugin picks from its range, and
    netlab uses the address its result names, as for any plugin that picks its own (Lab.with_attachments)."""
    planned = lab.addressing.pod_ip[pod.name]
    if pod.spec.ip is not None or net is None or lab.cni != "conflist":
        return planned
    return None if outside_host_local(net, planned) else planned


def outside_host_local(net: Conflist, ip: IPv4Address) -> bool:
    """Whether a host-local IPAM of ``net``'s plugins, whose ranges are all its own (no ipRanges capability: the
    runtime's podCIDR would come first; not Flannel's, which hands on subnet.env's), has ranges and none gives
    ``ip`` (in its subnet and between its rangeStart and rangeEnd)."""
    for plugin in net.plugins:
        ipam = host_local_config(plugin)
        if ipam is None or plugin.get("type") == FLANNEL or declares_ip_ranges(plugin):
            continue
        ranges = list(own_ranges(ipam))
        if ranges and not any(ip in IPv4Network(subnet, strict=False) and first <= ip <= last
                              for _, subnet, first, last in ranges):
            return True
    return False


def args_text(args: list[tuple[str, str]]) -> str:
    return ";".join(f"{k}={v}" for k, v in args)


def capability_args(lab: Lab, pod: PodInfo, planned_ip: IPv4Address | None) -> dict[str, Any]:
    """What the runtime has for each capability: the planned address (none: :func:`asked_ip`), MAC, the pod's host
    ports (containerd's toCNIPortMappings, model/hostports.py; [] when it has none), the node's pod CIDR, and its
    bandwidth annotations' rates when it has them."""
    node = lab.node(pod.node)
    caps = {**({"ips": [f"{planned_ip}/{node.pod_cidr.prefixlen}"]} if planned_ip is not None else {}),
            "mac": pod.mac,
            "portMappings": port_mappings(pod.spec),
            "ipRanges": [[{"subnet": str(node.pod_cidr)}]]}
    shaping = pod_bandwidth(pod.spec)  # containerd: only for a pod annotated so (model/bandwidth.py)
    return caps if shaping is None else {**caps, "bandwidth": shaping}


def runtime_config(plugin: dict[str, Any], capabilities: dict[str, Any]) -> dict[str, Any]:
    """A plugin's ``runtimeConfig``: libcni hands it only the capabilities it declares."""
    declared = plugin.get("capabilities") or {}
    return {cap: capabilities[cap] for cap, on in declared.items() if on is True and cap in capabilities}


# --- the plan's steps ----------------------------------------------------------------------


@dataclass(frozen=True)
class CniNetwork:
    """One network of a pod's sandbox: its plugins run in this order for ADD, each with CNI_IFNAME=ifname."""

    name: str
    cni_version: str
    ifname: str
    plugins: tuple[str, ...]  # the plugins' types: file names in CNI_PATH
    file: str | None = None  # the user's conflist; None: the runtime's loopback, or netlab's reference list

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "cniVersion": self.cni_version, "ifname": self.ifname,
                "plugins": list(self.plugins), "file": self.file}


@dataclass(frozen=True)
class CniAdd:
    """A pod attached by its node's runtime: every network's plugins with CNI_COMMAND=ADD, in order.

    ``netns`` is where the plugins run (the node's namespace); ``env`` is the
    environment of the ``eth0`` network's calls; ``runtime_config`` what each
    plugin gets as ``runtimeConfig`` (the capabilities it declares); ``expected``
    what the plugins are expected to make, one line each.
    """

    kind: ClassVar[str] = "cni-add"
    netns: str
    pod: str
    pod_netns: str
    networks: tuple[CniNetwork, ...]
    env: tuple[tuple[str, str], ...]
    expected: tuple[str, ...]
    runtime_config: tuple[tuple[str, str], ...] = field(default=())  # (plugin type, its runtimeConfig as JSON)

    def command(self) -> str:
        """Shell comments: a learner reads what the runtime will run (a plugin call cannot be typed as one line)."""
        out = [f"# CNI ADD of pod {self.pod}: its node's runtime runs in {self.netns}, one after another:"]
        out += [f"#   network {n.name} (cniVersion {n.cni_version}" + (f", {n.file}" if n.file else "")
                + f"), CNI_IFNAME={n.ifname}: " + ", then ".join(n.plugins) for n in self.networks]
        out.append("#   " + " ".join(f"{k}={v}" for k, v in self.env))
        out += [f"#   runtimeConfig of {kind}: {conf}" for kind, conf in self.runtime_config]
        out += [f"#   expected: {line}" for line in self.expected]
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "netns": self.netns, "pod": self.pod, "pod_netns": self.pod_netns,
                "networks": [n.to_json() for n in self.networks], "env": dict(self.env),
                "runtimeConfig": {kind: json.loads(conf) for kind, conf in self.runtime_config},
                "expected": list(self.expected)}


def add_steps(lab: Lab, machine: str | list[str] = CNI_BIN_DIR) -> list[CniAdd]:
    """One ADD step per pod of a CNI lab, in the lab's pod order (none for builtin: netlab makes the pods).
    ``machine``: the folders of the machine's plugins, CNI_PATH after a conflist's binDir (Debian's, or
    NETLAB_CNI_PATH's, or those a running lab was made with: realize/cni_path.py, which the caller asks).

    A conflist is read again here, as the runtime reads it; one that became
    unreadable since the topology was loaded is a UsageError (one line).
    """
    if lab.cni == "builtin":
        return []
    main: Conflist | None = None
    if lab.cni == "conflist":
        try:
            main = user_conflist(lab)
        except ConflistError as exc:
            raise UsageError(f"network.cni.conflist: {exc}") from None
    return [_step(lab, pod, main, machine) for pod in lab.pods]


def _step(lab: Lab, pod: PodInfo, user: Conflist | None, machine: str | list[str]) -> CniAdd:
    node = lab.node(pod.node)
    main = user or reference_conflist(lab, node, HOST_LOCAL_DIR)
    file = lab.topo.network.cni.conflist if isinstance(lab.topo.network.cni, CniConflist) else None
    nets = (CniNetwork(LOOPBACK.name, LOOPBACK.cni_version, "lo", tuple(LOOPBACK.types)),
            CniNetwork(main.name, main.cni_version, POD_IF, tuple(main.types), file))
    env = (("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", SANDBOX_ID), ("CNI_NETNS", f"{NETNS_DIR}/{pod.netns}"),
           ("CNI_IFNAME", POD_IF), ("CNI_PATH", ":".join(bin_dirs(lab, machine))),
           ("CNI_ARGS", args_text(network_args(main, cni_args(pod, SANDBOX_ID, asked := asked_ip(lab, pod, user)),
                                               caps := capability_args(lab, pod, asked)))))
    runtime = [(p["type"], json.dumps(conf, sort_keys=True)) for p in main.plugins if (conf := runtime_config(p, caps))]
    expected = _reference_makes(lab, node, pod) if user is None else _conflist_makes(lab, node, pod, caps, main)
    return CniAdd(netns=node.netns, pod=pod.name, pod_netns=pod.netns, networks=nets, env=env,
                  expected=tuple(expected), runtime_config=tuple(runtime))


def _reference_makes(lab: Lab, node: NodeInfo, pod: PodInfo) -> list[str]:
    """What Debian's bridge plugin makes with Flannel's delegate config: the builtin mode's pod side, but for
    the names and MACs the plugin picks (plan/build.py, pod_side)."""
    from netlab.plan import flannel  # and its rules' modules: not for pod_bridge (probe, trace)

    conf = flannel.delegate_config(lab, node)
    bridge, gw = conf.get("bridge", "cni0"), node.gateway.ip
    routes = [f"{r['dst']} via {gw} dev {POD_IF}" for r in conf["ipam"].get("routes", [])]
    if conf.get("isDefaultGateway"):
        routes.append(f"default via {gw} dev {POD_IF}")
    hairpin = ", hairpin on" if conf.get("hairpinMode") else ""
    return [f"loopback: lo up in {pod.netns} (127.0.0.1/8)",
            f"bridge: a veth pair, {POD_IF} in {pod.netns} (mtu {conf['mtu']}) and its peer veth<8 hex> in "
            f"{node.netns}, a port of {bridge}{hairpin} ({bridge} and its {node.gateway} are netlab's, made above)",
            f"host-local: {POD_IF} {pod.ip}/{node.pod_cidr.prefixlen} in {pod.netns} (runtimeConfig.ips; "
            f"its lease under the lab's state directory)",
            f"bridge: routes in {pod.netns}: " + ", ".join(routes),
            "the result (interfaces, ips, routes) cached for CHECK and DEL; status compares the pod with the plan"]


def _conflist_makes(lab: Lab, node: NodeInfo, pod: PodInfo, caps: dict[str, Any], net: Conflist) -> list[str]:
    """What a user's chain is asked for; what else it makes (a bridge, a veth, routes) is its own."""
    declared = {c for p in net.plugins for c, on in (p.get("capabilities") or {}).items() if on is True}
    asks = [f"CNI_ARGS IP={caps['ips'][0] if static_ipam(net) else pod.ip}"] if "ips" in caps else \
        [f"no IP=: its host-local's own range does not hold {pod.ip}, it picks one there, and netlab uses it"]
    if "ips" in declared and "ips" in caps:
        asks.append(f"runtimeConfig.ips {caps['ips'][0]}")
    if "ipRanges" in declared:
        asks.append(f"the node's range {node.pod_cidr} in runtimeConfig.ipRanges")
    maps = [f"{m['hostIP'] or node.ip}:{m['hostPort']}/{m['protocol']} to {m['containerPort']}"
            for m in caps["portMappings"]] if "portMappings" in declared else []
    ports = [f"{', '.join(p['type'] for p in net.plugins if (p.get('capabilities') or {}).get('portMappings') is True)}"
             f": host ports of {node.netns} to the pod (runtimeConfig.portMappings): {', '.join(maps)}"] if maps else []
    return [f"loopback: lo up in {pod.netns} (127.0.0.1/8)",
            f"{', '.join(net.types)}: {POD_IF} in {pod.netns} with an address ({'; '.join(asks)})", *ports,
            f"the result names {POD_IF}'s address; netlab uses it for Services, probe and trace, and the plugins' "
            + ("CHECK judges what they made" if at_least(net.cni_version, "0.4.0") else
               f"cached result is what netlab holds the pod to (cniVersion {net.cni_version} has no CHECK)")]
