"""A picture of a lab: what is plugged into what, as Mermaid, Graphviz DOT, SVG or PNG.

The picture follows the packet path the tutorials draw, per node::

    pod eth0 ── veth ── cni0 (bridge) ·· routes ·· flannel.1 (VXLAN) ·· eth0 ── veth ── br0 (underlay)
                                                       ╎
                          VXLAN VNI 1 UDP 8472 to every other node's flannel.1

The line from cni0 lists the node's routes to the other nodes' pod CIDRs. In
host-gw mode there is no flannel.1 and no tunnel: each node routes every
other node's pod CIDR via that node's eth0 address. Services (a virtual
ClusterIP that kube-proxy programs in every node) point at the pods backing
them.

The module is pure: :func:`build` turns a resolved :class:`Lab` into a small
:class:`Graph` (boxes, groups, links) and the renderers turn that into text.
Only :func:`run_dot` runs a program (Graphviz's ``dot``) for svg and png.
The same topology always gives the same text.

A traced packet's path can be drawn on the picture (``netlab trace -o svg``):
:func:`with_path` puts each hop on the box where it happened (the graph
knows which box stands for which namespace and device, :attr:`Graph.places`),
numbered in order with the kernel's decision, the stops joined by arrows, and
the hop where the packet was lost in red with the reason.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from netlab.errors import EnvironmentNotReady
from netlab.model import naming
from netlab.outkinds import DOT_MARK, MERMAID_MARK, mark_png

if TYPE_CHECKING:  # the topology's models load only when a lab is drawn (`netlab --help` names FORMATS)
    from netlab.model.lab import Lab

FORMATS = ("mermaid", "dot", "svg", "png")
DOT_TIMEOUT = 120  # seconds


@dataclass(frozen=True)
class Box:
    """One thing in the picture: an interface, a bridge, a pod, a Service, a host."""

    id: str
    label: str  # lines separated by "\n"
    kind: str  # bridge | iface | vtep | pod | service | host


@dataclass(frozen=True)
class Link:
    """A line between two boxes; ``style`` says what kind of connection it is."""

    src: str
    dst: str
    label: str  # lines separated by "\n"
    style: str  # veth | internal | tunnel | service


@dataclass
class Group:
    """A namespace or section drawn as a frame around its boxes."""

    id: str
    title: str
    boxes: list[Box] = field(default_factory=list)


@dataclass(frozen=True)
class PathStep:
    """One hop of a traced packet: where it happened, its number, the kernel's decision, and a loss."""

    netns: str
    device: str
    number: str  # "3", "r2"
    label: str  # "route via 10.244.1.0 dev flannel.1"
    lost: str | None = None  # the reason, on the hop where the packet was lost


@dataclass
class Graph:
    title: str
    groups: list[Group] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    # Which box stands for a namespace's device: (netns, device) or (netns, "*") -> box id.
    places: dict[tuple[str, str], str] = field(default_factory=dict)
    path: list[tuple[str, PathStep]] = field(default_factory=list)  # (box id, step), in order

    def place(self, netns: str, device: str) -> str | None:
        return self.places.get((netns, device)) or self.places.get((netns, "*"))


class _Ids:
    """Identifiers safe in both Mermaid and DOT, unique, readable and stable."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, ...], str] = {}

    def __call__(self, *key: str) -> str:
        if key not in self.by_key:
            base = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(key)).strip("_")
            ident, n = base, 1
            while ident in self.by_key.values():
                n += 1
                ident = f"{base}_{n}"
            self.by_key[key] = ident
        return self.by_key[key]


def build(lab: Lab) -> Graph:
    """The picture of a resolved lab, in topology order."""
    from netlab.model.addressing import underlay_gateway

    ids = _Ids()
    topo = lab.topo
    net = topo.network
    underlay = net.underlay.cidr
    vtep_name = naming.vxlan_name(net.vxlan.vni)
    tunnel_label = f"VXLAN VNI {net.vxlan.vni} UDP {net.vxlan.port}"
    g = Graph(title=f"lab {lab.name} ({lab.mode}, pod MTU {lab.pod_mtu})")

    # The underlay: one Linux bridge standing in for the nodes' LAN switch.
    br0 = ids("underlay", naming.UNDERLAY_BRIDGE)
    g.groups.append(Group(ids("grp", "underlay"), f"underlay  netns {lab.underlay_netns}", [
        Box(br0, f"{naming.UNDERLAY_BRIDGE} (bridge)\n{underlay}\nMTU {lab.underlay_mtu}", "bridge"),
    ]))
    g.places[(lab.underlay_netns, "*")] = br0

    bridged = lab.bridge_nodes(pod_side=True)
    for node in lab.nodes:
        eth0, cni0, vtep = (ids("node", node.name, dev) for dev in ("eth0", "cni0", "vtep"))
        grp = Group(ids("grp", "node", node.name), f"node {node.name}  netns {node.netns}")
        # eth0: the node's leg on the underlay, the address other nodes know it by.
        grp.boxes.append(Box(eth0, f"{naming.NODE_IF}\n{node.ip}/{underlay.prefixlen}\n{node.eth0_mac}", "iface"))
        # cni0: the node's pod bridge; its address is every local pod's default gateway.
        # With a user's conflist the pod side is whatever the plugins make (a bridge, or only routes).
        conflist = lab.cni == "conflist"
        pod_side = ("made by the CNI plugins\n(network.cni: conflist)" if conflist and node.name in bridged
                    else f"{naming.BRIDGE} (bridge)\n{node.gateway}" if node.name in bridged
                    else "nothing yet: the CNI plugins\nmake it at the first pod" if conflist
                    else f"no {naming.BRIDGE} yet: the bridge plugin\nmakes it at the first pod")
        grp.boxes.append(Box(cni0, f"{pod_side}\npod CIDR {node.pod_cidr}", "bridge"))
        # The node's routes to the other pod CIDRs leave from its pod side; without one (no pod yet) they are the
        # node's own, drawn from its eth0 (host-gw: they go out of it, said in its box)
        routes_from = cni0 if node.name in bridged else eth0
        g.links.append(Link(eth0, br0, f"veth {node.underlay_veth}", "veth"))
        g.places.update({(node.netns, "*"): eth0, (node.netns, naming.NODE_IF): eth0,
                         (node.netns, naming.BRIDGE): cni0})
        # The node routes between cni0 and the other nodes (ip_forward=1): the
        # link from cni0 carries the node's routes to every other pod CIDR.
        peers = [p for p in lab.nodes if p.name != node.name]
        if lab.mode == "vxlan":
            # flannel.1: the VTEP; wraps pod packets in UDP and sends them out of eth0.
            grp.boxes.append(Box(vtep, f"{vtep_name} (VXLAN)\n{node.vtep_ip}/32\n"
                                       f"VNI {net.vxlan.vni} UDP {net.vxlan.port}\n{node.vxlan_mac}", "vtep"))
            g.places[(node.netns, vtep_name)] = vtep
            routes = [f"{p.pod_cidr} via {p.vtep_ip} onlink" for p in peers]
            how = "routed (ip_forward)" if routes_from == cni0 else "the node's routes"
            g.links.append(Link(routes_from, vtep, "\n".join([how, *routes]), "internal"))
            g.links.append(Link(vtep, eth0, f"encap, local {node.ip}", "internal"))
        else:
            # host-gw: no tunnel, the other nodes' eth0 addresses are the gateways.
            routes = [f"{p.pod_cidr} via {p.ip}" for p in peers]
            if routes_from == cni0:
                g.links.append(Link(cni0, eth0, "\n".join(["routed (ip_forward), host-gw", *routes]), "internal"))
            else:  # the node's own routes go out of eth0 itself: said in its box, no line from the absent bridge
                at = next(i for i, b in enumerate(grp.boxes) if b.id == eth0)
                grp.boxes[at] = replace(grp.boxes[at], label="\n".join([grp.boxes[at].label, "host-gw routes:",
                                                                          *routes]))
        for pod in lab.pods_on(node.name):
            # A pod is a namespace whose eth0 is one end of a veth; the other end is a cni0 port.
            lines = [f"pod {pod.name}", f"eth0 {pod.ip}/{node.pod_cidr.prefixlen}", f"netns {pod.netns}"]
            lines += [f"{k}={v}" for k, v in sorted(pod.labels.items())]
            grp.boxes.append(Box(ids("pod", pod.name), "\n".join(lines), "pod"))
            veth = f"veth {pod.host_veth}" if lab.cni == "builtin" or pod.name in lab.attached else "CNI ADD"
            g.links.append(Link(ids("pod", pod.name), cni0, veth, "veth"))
            g.places.update({(pod.netns, "*"): ids("pod", pod.name), (node.netns, pod.host_veth): cni0})
        g.groups.append(grp)

    # VXLAN: a tunnel between every pair of flannel.1 devices (each node has
    # the other's MAC in its ARP and FDB tables).
    if lab.mode == "vxlan":
        for i, a in enumerate(lab.nodes):
            for b in lab.nodes[i + 1:]:
                g.links.append(Link(ids("node", a.name, "vtep"), ids("node", b.name, "vtep"), tunnel_label, "tunnel"))

    # Services: a ClusterIP that kube-proxy DNATs, in every node, to one of its endpoints.
    if lab.services:
        mode = lab.topo.cluster.kube_proxy_mode  # nftables: kube-proxy's table ip kube-proxy, no iptables rule
        grp = Group(ids("grp", "services"), f"Services (kube-proxy {mode} DNAT in every node)")
        for svc in lab.services:
            sid = ids("svc", svc.namespace, svc.name)
            cip = lab.cluster_ip(svc)
            lines = [f"svc {svc.name}.{svc.namespace}", f"{svc.type} {cip}" if cip else "headless (clusterIP None)"]
            if svc.load_balancer_ip:
                lines.append(f"load balancer {svc.load_balancer_ip}")
            for port in svc.ports:
                line = f"{port.port}/{port.protocol}, targetPort {port.target_port or port.port}"
                lines.append(line + (f", nodePort {port.node_port}" if port.node_port else ""))
                for pod, target in lab.endpoints(svc, port):
                    how = "DNS A" if svc.headless else "DNAT to"  # headless: its name answers the pod IPs
                    g.links.append(Link(sid, ids("pod", pod.name), f"{port.port}/{port.protocol} {how} :{target}",
                                        "service"))
            if not svc.ports:  # headless without ports: every pod it selects is an endpoint, of no port
                for pod in lab.serving(svc):
                    g.links.append(Link(sid, ids("pod", pod.name), "DNS A", "service"))
            if not (any(lab.endpoints(svc, p) for p in svc.ports) or not svc.ports and lab.serving(svc)):
                lines.append("no endpoints (its name answers nothing)" if svc.headless else "no endpoints (rejects)")
            grp.boxes.append(Box(sid, "\n".join(lines), "service"))
        g.groups.append(grp)

    # The simulated internet, reached through the lab's gateway on the underlay.
    if topo.internet:
        inet = topo.internet
        gw = ids("inet", "gateway")
        grp = Group(ids("grp", "internet"), f"internet {inet.cidr}")
        # The LoadBalancer IPs it routes to the nodes (a passthrough balancer: plan/internet.py).
        from netlab.plan.internet import balanced_nodes

        routed = balanced_nodes(lab)
        addrs = [f"{ip} ({svc}) → {', '.join(n.name for n in routed.get(ip, []))}"
                 for (_, svc), ip in sorted(lab.addressing.lb_ip.items())]
        grp.boxes.append(Box(gw, "\n".join([f"gateway\nnetns {naming.netns_name(lab.name, 'gateway')}\n"
                                            f"{underlay_gateway(underlay)} on the underlay\n{inet.gateway.ip} on the "
                                            "internet", *addrs]), "host"))
        g.links.append(Link(gw, br0, "underlay", "veth"))
        g.places[(naming.netns_name(lab.name, "gateway"), "*")] = gw
        hosts = dict(lab.internet_hosts)
        for host in inet.hosts:
            hid = ids("host", host.name)
            grp.boxes.append(Box(hid, f"host {host.name}\n{host.ip}", "host"))
            g.links.append(Link(hid, gw, "internet", "veth"))
            g.places[(hosts[host.name], "*")] = hid
        g.groups.append(grp)
    return g


def with_path(g: Graph, steps: list[PathStep], title: str | None = None) -> Graph:
    """The picture with a traced packet's path on it; a hop in a namespace the picture lacks gets a box."""
    other: Group | None = None
    for step in steps:
        box = g.place(step.netns, step.device)
        if box is None:
            if other is None:
                other = Group("grp_other", "other namespaces")
                g.groups.append(other)
            box = "other_" + re.sub(r"[^A-Za-z0-9]+", "_", step.netns).strip("_")
            if box not in {b.id for b in other.boxes}:
                other.boxes.append(Box(box, f"netns {step.netns}", "host"))
            g.places[(step.netns, "*")] = box
        g.path.append((box, step))
    if title:
        g.title = title
    return g


# Box colours (fill, stroke) by kind, shared by both renderers.
COLORS = {
    "bridge": ("#fff4cc", "#b08900"),
    "iface": ("#ffffff", "#555555"),
    "vtep": ("#fde2e1", "#c0392b"),
    "pod": ("#e3f0ff", "#2e6bc6"),
    "service": ("#e2f7e2", "#2e8b57"),
    "host": ("#eeeeee", "#777777"),
}


# ---------------------------------------------------------------- Mermaid

# Characters that stay as they are in a Mermaid label; every other one
# becomes an entity code (#34; for ") so no input can end the label early.
_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 ._:/=,+()-]")

_MERMAID_LINKS = {  # style -> Mermaid edge
    "veth": "---",
    "internal": "-.-",
    "tunnel": "-.-",
    "service": "-->",
    "policy": "==>",
}


def mermaid_text(text: str) -> str:
    """A label for inside Mermaid double quotes; "\n" becomes a line break."""
    return "<br/>".join("".join(c if _MERMAID_SAFE.match(c) else f"#{ord(c)};" for c in line)
                        for line in text.split("\n"))


def to_mermaid(g: Graph) -> str:
    out = ["---", f'title: "{mermaid_text(g.title)}"', "---", "flowchart TB", f"  {MERMAID_MARK}"]
    for grp in g.groups:
        out.append(f'  subgraph {grp.id} ["{mermaid_text(grp.title)}"]')
        for box in grp.boxes:
            out.append(f'    {box.id}["{mermaid_text(box.label)}"]')
        out.append("  end")
    for link in g.links:
        out.append(f'  {link.src} {_MERMAID_LINKS[link.style]}|"{mermaid_text(link.label)}"| {link.dst}')
    for kind, (fill, stroke) in COLORS.items():
        members = [b.id for grp in g.groups for b in grp.boxes if b.kind == kind]
        if members:
            out.append(f"  classDef {kind} fill:{fill},stroke:{stroke}")
            out.append(f"  class {','.join(members)} {kind}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- Graphviz

_DOT_LINKS = {  # style -> edge attributes
    "veth": 'dir=none, penwidth=1.5',
    "internal": 'dir=none, style=dotted',
    "tunnel": 'dir=none, style=dashed, color="#c0392b", penwidth=2',
    "service": 'color="#2e8b57", fontcolor="#2e8b57"',
    "policy": 'color="#8e44ad", fontcolor="#8e44ad"',
}


def dot_text(text: str) -> str:
    """A string for inside DOT double quotes; "\n" becomes a line break.

    Other backslashes stay literal (``\\N`` is not the node name), and so does
    ``&`` (Graphviz decodes entities such as ``&amp;`` in labels).
    """
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
    return text.replace("\r", "").replace("\n", "\\n")


def to_dot(g: Graph) -> str:
    out = [
        "digraph netlab {",
        f"  {DOT_MARK}",  # what tells a DOT file netlab drew from anyone's (outkinds._picture)
        f'  graph [label="{dot_text(g.title)}", labelloc=t, fontname="Helvetica", newrank=true, nodesep=0.4];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    stops = _stops(g.path)
    for grp in g.groups:
        out.append(f'  subgraph "cluster_{grp.id}" {{')
        out.append(f'    label="{dot_text(grp.title)}"; style=rounded; color="#999999";')
        for box in grp.boxes:
            fill, stroke = COLORS[box.kind]
            out.append(f'    {box.id} [label="{dot_text(box.label)}", fillcolor="{fill}", color="{stroke}"];')
            # The path's notes sit in the frame of the box they are about.
            out += [f"    {line}" for i, stop in enumerate(stops) if stop[0] == box.id for line in _dot_note(i, stop)]
        out.append("  }")
    tunnels = 0
    for link in g.links:
        if link.style == "tunnel":
            tunnels += 1
            out += _dot_tunnel(f"tunnel_{tunnels}", link)
        else:
            out.append(f'  {link.src} -> {link.dst} [label="{dot_text(link.label)}", {_DOT_LINKS[link.style]}];')
    out += _dot_path(stops)
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_tunnel(box: str, link: Link) -> list[str]:
    """A VXLAN tunnel between two flannel.1 boxes: its text is a box of its own, dashed lines to both ends.

    The two flannel.1 boxes sit side by side, so a line between them is a flat
    edge across two node frames. A plain label on it makes Graphviz (2.43)
    fail with "lost edge" on labs of many nodes; an xlabel is placed after the
    layout, in no space of its own, and lands on the line, on the flannel.1
    boxes or on the routes' text. A box above both ends (the lines run down
    to the tunnel's two VTEPs) gets its own place in the layout, between the
    two nodes' frames, so nothing is drawn over it.
    """
    line = _DOT_LINKS[link.style]
    return [f'  {box} [label="{dot_text(link.label)}", shape=plaintext, style="", fontcolor="#c0392b", '
            'fontsize=9];',
            f"  {box} -> {link.src} [{line}];",
            f"  {box} -> {link.dst} [{line}];"]


# ---------------------------------------------------------------- a packet's path

PATH_COLOR, LOST_COLOR = "#1f6feb", "#d1242f"
NOTE_WIDTH = 56  # characters per line of a note


def _stops(path: list[tuple[str, PathStep]]) -> list[tuple[str, list[PathStep]]]:
    """Consecutive hops on one box make one stop: (box id, its hops), in path order."""
    stops: list[tuple[str, list[PathStep]]] = []
    for box, step in path:
        if stops and stops[-1][0] == box:
            stops[-1][1].append(step)
        else:
            stops.append((box, [step]))
    return stops


def _note_lines(step: PathStep) -> list[str]:
    """A hop in a note: its number, then its decision (and for the lost one, the reason), wrapped."""
    text = f"{step.number}  {step.label}"
    lines = textwrap.wrap(text, NOTE_WIDTH, subsequent_indent="     ", break_long_words=False,
                          break_on_hyphens=False) or [text]
    if step.lost:
        lines += textwrap.wrap(f"LOST here: {step.lost}", NOTE_WIDTH, initial_indent="     ",
                               subsequent_indent="     ", break_long_words=False, break_on_hyphens=False)
    return lines


def _dot_note(i: int, stop: tuple[str, list[PathStep]]) -> list[str]:
    """One stop's note (hop numbers and decisions, left-aligned), tied to its box by a dotted line."""
    box, steps = stop
    lost = any(s.lost for s in steps)
    color = LOST_COLOR if lost else PATH_COLOR
    fill = "#fde2e1" if lost else "#eef5ff"
    # "\l" ends a left-aligned line in a DOT label.
    label = "".join(dot_text(line) + "\\l" for s in steps for line in _note_lines(s))
    return [f'path_{i} [shape=note, style=filled, label="{label}", fillcolor="{fill}", color="{color}", '
            f'fontcolor="{color if lost else "#1b1f24"}", fontsize=9];',
            f'{box} -> path_{i} [dir=none, style=dotted, color="{color}"];']


def _dot_path(stops: list[tuple[str, list[PathStep]]]) -> list[str]:
    """Arrows from stop to stop, each labelled with the hop it leads to; the lost hop's box outlined in red."""
    out = []
    for (a, _), (b, steps) in zip(stops, stops[1:], strict=False):
        out.append(f'  {a} -> {b} [xlabel="{dot_text(steps[0].number)}", color="{PATH_COLOR}", '
                   f'fontcolor="{PATH_COLOR}", penwidth=2.5, constraint=false];')
    for box, steps in stops:
        if any(s.lost for s in steps):
            out.append(f'  {box} [color="{LOST_COLOR}", penwidth=3];')
    return out


def run_dot(dot_source: str, fmt: str) -> bytes:
    """Lay out DOT text with Graphviz's ``dot`` into svg or png bytes."""
    # here: --help and completion load graph, and no kernel code
    from netlab.kernel.netns import find_tool, looked_in
    from netlab.kernel.sigpipe import run_fed

    if fmt not in ("svg", "png"):
        raise ValueError(f"dot renders svg or png, not {fmt!r}")
    # Found like every program netlab runs as root: in its tool folders, never through $PATH (the caller's, under
    # sudo, which could name a "dot" anyone may write).
    dot = find_tool("dot")
    if dot is None:
        raise EnvironmentNotReady(f"-o {fmt} needs Graphviz's dot ({looked_in()}); install graphviz "
                                  "(apt install graphviz, dnf install graphviz), or use -o mermaid / -o dot")
    try:
        done = run_fed([dot, f"-T{fmt}"], dot_source.encode(), DOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise EnvironmentNotReady(f"{dot} took more than {DOT_TIMEOUT}s; try -o dot and lay it out yourself") from None
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise EnvironmentNotReady(f"{dot} -T{fmt} failed: {err[-1] if err else f'exit {done.returncode}'}"
                                  " (is graphviz installed with its cairo/png plugins?)")
    return done.stdout


def render(lab: Lab, fmt: str, path: list[PathStep] | None = None, title: str | None = None) -> bytes:
    """The lab's picture in one of :data:`FORMATS`, as bytes ready to write (with a packet's ``path`` on it)."""
    g = build(lab)
    if path:
        g = with_path(g, path, title)
        if fmt == "mermaid":
            raise ValueError("a packet's path is drawn with dot (dot, svg, png)")
    return render_graph(g, fmt)


def render_graph(g: Graph, fmt: str) -> bytes:
    """A built picture in one of :data:`FORMATS`."""
    if fmt == "mermaid":
        return to_mermaid(g).encode()
    if fmt == "dot":
        return to_dot(g).encode()
    return mark_png(run_dot(to_dot(g), fmt)) if fmt == "png" else run_dot(to_dot(g), fmt)
