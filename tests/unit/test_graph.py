"""netlab graph: the picture of a lab as Mermaid, DOT and SVG. No root needed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_inprocess import run_cli
from graph_layout import drawn_over, text_under

from netlab import graph
from netlab.errors import EnvironmentNotReady
from netlab.kernel import netns
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state_dir

REPO = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
TUNNEL_COLOR = graph.COLORS["vtep"][1]  # the tunnels' dashed lines

# Three nodes, host-gw routing, Services with and without endpoints, an internet.
HOST_GW = """\
name: hg
network: {{mode: {mode}}}
nodes:
  - {{name: n1, ip: 192.168.122.11}}
  - {{name: n2, ip: 192.168.122.12}}
  - {{name: n3, ip: 192.168.122.13}}
pods:
  - {{name: web-a, node: n1, labels: {{app: web}}}}
  - {{name: web-b, node: n2, labels: {{app: web}}}}
  - name: db
    node: n3
    labels: {{app: db}}
    containers: [{{name: pg, command: [sleep, infinity], ports: [{{containerPort: 5432}}]}}]
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
  - {{name: db, selector: {{app: db}}, type: NodePort, ports: [{{port: 5432, nodePort: 30432}}]}}
  - {{name: orphan, selector: {{app: nothing}}, ports: [{{port: 9}}]}}
internet:
  hosts: [{{name: example, ip: 203.0.113.10}}]
"""


def topo_file(tmp_path: Path, mode: str = "host-gw") -> Path:
    path = tmp_path / f"{mode}.yaml"
    path.write_text(HOST_GW.format(mode=mode))
    return path


@pytest.fixture
def default_lab():
    return resolve(load_topology(None))


@pytest.fixture
def hg_lab(tmp_path):
    return resolve(load_topology(str(topo_file(tmp_path))))


def links(g: graph.Graph, style: str) -> list[tuple[str, str, str]]:
    return [(link.src, link.dst, link.label) for link in g.links if link.style == style]


def box_ids(g: graph.Graph) -> set[str]:
    return {b.id for grp in g.groups for b in grp.boxes}


# ---------------------------------------------------------------- the model


def test_default_lab_model(default_lab):
    g = graph.build(default_lab)
    titles = [grp.title for grp in g.groups]
    assert titles == ["underlay  netns demo-underlay", "node minikube  netns demo-minikube",
                      "node minikube-m02  netns demo-minikube-m02"]
    node = {grp.title.split()[1]: {b.id: b.label for b in grp.boxes} for grp in g.groups[1:]}
    mk = node["minikube"]
    assert mk["node_minikube_eth0"].split("\n")[:2] == ["eth0", "192.168.122.215/24"]
    assert mk["node_minikube_cni0"].split("\n")[:2] == ["cni0 (bridge)", "10.244.0.1/24"]
    vtep = mk["node_minikube_vtep"].split("\n")
    assert vtep[:3] == ["flannel.1 (VXLAN)", "10.244.0.0/32", "VNI 1 UDP 8472"]
    assert vtep[3] == default_lab.node("minikube").vxlan_mac
    assert mk["pod_fedora_1"].split("\n") == ["pod fedora-1", "eth0 10.244.0.2/24", "netns demo-fedora-1", "app=web"]
    assert "pod_fedora_2" in node["minikube-m02"] and "pod_fedora_2" not in mk

    # Every pod's veth pair: pod eth0 <-> its host end, a port of its node's cni0.
    veths = links(g, "veth")
    for pod in default_lab.pods:
        assert (f"pod_{pod.name.replace('-', '_')}", f"node_{pod.node.replace('-', '_')}_cni0",
                f"veth {pod.host_veth}") in veths
    # Every node's eth0 is a port of the underlay bridge.
    for n in default_lab.nodes:
        assert (f"node_{n.name.replace('-', '_')}_eth0", "underlay_br0", f"veth {n.underlay_veth}") in veths
    assert links(g, "tunnel") == [("node_minikube_vtep", "node_minikube_m02_vtep", "VXLAN VNI 1 UDP 8472")]
    assert links(g, "service") == []
    # The node's route to the other node's pods, Flannel-style, on the link from cni0.
    assert ("node_minikube_cni0", "node_minikube_vtep",
            "routed (ip_forward)\n10.244.1.0/24 via 10.244.1.0 onlink") in links(g, "internal")
    # Every link joins two boxes that exist.
    assert {x for link in g.links for x in (link.src, link.dst)} <= box_ids(g)


def test_vxlan_tunnel_between_every_pair_of_nodes(tmp_path):
    g = graph.build(resolve(load_topology(str(topo_file(tmp_path, "vxlan")))))
    pairs = {(src, dst) for src, dst, label in links(g, "tunnel") if label == "VXLAN VNI 1 UDP 8472"}
    assert pairs == {("node_n1_vtep", "node_n2_vtep"), ("node_n1_vtep", "node_n3_vtep"),
                     ("node_n2_vtep", "node_n3_vtep")}


def test_host_gw_model(hg_lab):
    g = graph.build(hg_lab)
    assert not [b for grp in g.groups for b in grp.boxes if b.kind == "vtep"]
    assert links(g, "tunnel") == []
    # Each node routes the other nodes' pod CIDRs via their eth0 addresses.
    assert ("node_n2_cni0", "node_n2_eth0", "routed (ip_forward), host-gw\n"
            "10.244.0.0/24 via 192.168.122.11\n10.244.2.0/24 via 192.168.122.13") in links(g, "internal")
    # Services point at their endpoints, with the DNAT target port.
    # (cluster DNS, added to every lab with Services, has its own edges)
    svc = [edge for edge in links(g, "service") if "kube_dns" not in edge[0]]
    assert svc == [("svc_default_web", "pod_web_a", "80/TCP DNAT to :8080"),
                   ("svc_default_web", "pod_web_b", "80/TCP DNAT to :8080"),
                   ("svc_default_db", "pod_db", "5432/TCP DNAT to :5432")]
    labels = {b.id: b.label for grp in g.groups for b in grp.boxes}
    assert labels["svc_default_web"].split("\n")[:3] == ["svc web.default", "ClusterIP 10.96.0.11",
                                                         "80/TCP, targetPort 8080"]
    assert "nodePort 30432" in labels["svc_default_db"]
    assert labels["svc_default_orphan"].endswith("no endpoints (rejects)")
    # The internet: the gateway on the underlay, the hosts behind it.
    assert "192.168.122.1 on the underlay" in labels["inet_gateway"]
    assert ("inet_gateway", "underlay_br0", "underlay") in links(g, "veth")
    assert ("host_example", "inet_gateway", "internet") in links(g, "veth")
    assert {x for link in g.links for x in (link.src, link.dst)} <= box_ids(g)


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_the_services_box_names_kube_proxys_mode(tmp_path, mode):
    """In nftables mode kube-proxy DNATs in nft's table ip kube-proxy (no iptables rule of its own): the picture
    said "kube-proxy iptables DNAT" whatever the mode, in every format."""
    path = tmp_path / "lab.yaml"
    text = HOST_GW.format(mode="host-gw")
    path.write_text(text.replace("nodes:\n", f"cluster: {{kubeProxyMode: {mode}}}\nnodes:\n", 1))
    g = graph.build(resolve(load_topology(str(path))))
    title = f"Services (kube-proxy {mode} DNAT in every node)"
    assert [grp.title for grp in g.groups if grp.id == "grp_services"] == [title]
    other = "iptables" if mode == "nftables" else "nftables"
    for text in (graph.to_mermaid(g), graph.to_dot(g)):
        assert title in text and f"kube-proxy {other}" not in text


# ---------------------------------------------------------------- renderers


def test_mermaid_default(default_lab):
    text = graph.to_mermaid(graph.build(default_lab))
    assert "\nflowchart TB\n" in text
    assert '  subgraph grp_node_minikube ["node minikube  netns demo-minikube"]' in text
    assert '    pod_fedora_1["pod fedora-1<br/>eth0 10.244.0.2/24<br/>netns demo-fedora-1<br/>app=web"]' in text
    assert '  node_minikube_vtep -.-|"VXLAN VNI 1 UDP 8472"| node_minikube_m02_vtep' in text
    assert re.search(r'\n  pod_fedora_2 ---\|"veth veth[0-9a-f]{8}"\| node_minikube_m02_cni0\n', text)
    assert re.search(r'\n  node_minikube_eth0 ---\|"veth veth[0-9a-f]{8}"\| underlay_br0\n', text)
    assert text.count("subgraph ") == text.count("\n  end\n") == 3


def test_mermaid_host_gw(hg_lab):
    text = graph.to_mermaid(graph.build(hg_lab))
    assert "VXLAN" not in text and "flannel.1" not in text
    assert ('  node_n1_cni0 -.-|"routed (ip_forward), host-gw<br/>10.244.1.0/24 via 192.168.122.12<br/>'
            '10.244.2.0/24 via 192.168.122.13"| node_n1_eth0') in text
    assert '  svc_default_web -->|"80/TCP DNAT to :8080"| pod_web_b' in text
    assert 'subgraph grp_internet ["internet 203.0.113.0/24"]' in text


def test_dot_default_and_host_gw(default_lab, hg_lab):
    text = graph.to_dot(graph.build(default_lab))
    assert text.startswith("digraph netlab {") and text.rstrip().endswith("}")
    assert 'subgraph "cluster_grp_node_minikube_m02" {' in text
    assert '  tunnel_1 -> node_minikube_vtep [dir=none, style=dashed' in text
    assert 'pod_fedora_3 [label="pod fedora-3\\neth0 10.244.0.3/24\\nnetns demo-fedora-3"' in text
    hg = graph.to_dot(graph.build(hg_lab))
    assert 'svc_default_db -> pod_db [label="5432/TCP DNAT to :5432"' in hg
    assert "VXLAN" not in hg


def test_a_tunnels_text_is_a_box_of_its_own_not_an_edge_label(tmp_path):
    """The tunnel's text gets its own place in the layout: a text-only box with a dashed line to each flannel.1.

    As an xlabel on the line between two flannel.1 boxes, Graphviz put it wherever
    it fitted after the layout: on the line itself, over the boxes, over the routes' text.
    """
    text = graph.to_dot(graph.build(resolve(load_topology(str(topo_file(tmp_path, "vxlan"))))))
    assert "xlabel" not in text and "VXLAN VNI 1 UDP 8472" in text
    edges = [line.strip() for line in text.splitlines() if "_vtep" in line and " -> " in line]
    # No line joins two flannel.1 boxes directly; each tunnel is one box and two lines.
    assert not [e for e in edges if re.match(r"node_\w+_vtep -> node_\w+_vtep", e)], edges
    for i, (a, b) in enumerate([("n1", "n2"), ("n1", "n3"), ("n2", "n3")], 1):
        assert (f'  tunnel_{i} [label="VXLAN VNI 1 UDP 8472", shape=plaintext, style="", fontcolor="#c0392b", '
                'fontsize=9];') in text
        assert f"tunnel_{i} -> node_{a}_vtep [dir=none, style=dashed" in text
        assert f"tunnel_{i} -> node_{b}_vtep [dir=none, style=dashed" in text


@needs_dot
@pytest.mark.parametrize("topology", [None, "topologies/vxlan-3node.yaml"])
def test_nothing_is_drawn_over_a_tunnels_text(topology):
    """Laid out by Graphviz, the tunnel's text crosses no line, no box and no other text.

    Two nodes: the tunnel's lines cross no text either. (With three nodes in a
    row, the line from the outer two's tunnel may cross a node's routes.)
    """
    lab = resolve(load_topology(str(REPO / topology) if topology else None))
    text = f"VXLAN VNI {lab.topo.network.vxlan.vni} UDP {lab.topo.network.vxlan.port}"
    dot = graph.to_dot(graph.build(lab))
    assert drawn_over(dot, text) == []
    if len(lab.nodes) == 2:
        assert text_under(dot, TUNNEL_COLOR) == []


@pytest.mark.parametrize("mode", ["host-gw", "vxlan"])  # vxlan: the tunnels' boxes and lines
def test_deterministic(tmp_path, mode):
    """Same topology, same text: across loads and across Python hash seeds."""
    path = topo_file(tmp_path, mode)
    first = graph.render(resolve(load_topology(str(path))), "mermaid")
    assert graph.render(resolve(load_topology(str(path))), "mermaid") == first
    # One process per hash seed renders both formats, separated by a NUL (in neither format).
    code = ("import sys; from netlab import graph; from netlab.model.lab import resolve; "
            "from netlab.model.load import load_topology; lab = resolve(load_topology(sys.argv[1])); "
            "sys.stdout.buffer.write(graph.render(lab, 'mermaid') + b'\\0' + graph.render(lab, 'dot'))")
    outs = {subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outs) == 1
    mermaid, dot = outs.pop().split(b"\0")
    assert mermaid == first
    assert dot == graph.render(resolve(load_topology(str(path))), "dot")


NASTY = 'a "q" <b>&amp; |p| #x; `t` [s] {c} \\N \\n\u00fc'


def test_escaping_mermaid():
    esc = graph.mermaid_text(NASTY + "\nline 2")
    assert esc.endswith("<br/>line 2")
    # Only letters, digits, space and ._:/=,+()- stay raw; the rest become #code;
    # so nothing can end the label, open a tag or start a markdown string.
    assert re.fullmatch(r"([A-Za-z0-9 ._:/=,+()-]|#[0-9]+;)*", esc.removesuffix("<br/>line 2"))
    assert graph.mermaid_text('say "hi"') == "say #34;hi#34;"
    assert graph.mermaid_text("10.244.0.2/24 (eth0), app=web") == "10.244.0.2/24 (eth0), app=web"


def test_escaping_dot():
    assert graph.dot_text('a "b" \\N &amp;\nc') == 'a \\"b\\" \\\\N &amp;amp;\\nc'


@needs_dot
def test_escaped_labels_survive_graphviz():
    g = graph.Graph(title=NASTY, groups=[graph.Group("grp", NASTY, [graph.Box("a", NASTY + "\nsecond", "pod"),
                                                                     graph.Box("b", "end", "host")])],
                    links=[graph.Link("a", "b", NASTY, "service")])
    root = ET.fromstring(graph.run_dot(graph.to_dot(g), "svg"))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts.count(NASTY) == 4  # graph title, frame, box, edge
    assert "second" in texts


@needs_dot
def test_svg_is_valid(default_lab):
    svg = graph.render(default_lab, "svg")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    texts = {t.text for t in root.iter(f"{SVG}text")}  # one <text> per label line
    assert {"pod fedora-1", "eth0 10.244.1.3/24", "VXLAN VNI 1 UDP 8472", "br0 (bridge)", "flannel.1 (VXLAN)"} <= texts
    png = graph.render(default_lab, "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@needs_dot
def test_svg_of_a_bigger_lab(tmp_path):
    """Ten nodes, 45 tunnels: Graphviz must lay it out (labelled flat edges used to get lost)."""
    nodes = "".join(f"  - {{name: n{i}}}\n" for i in range(10))
    pods = "".join(f"  - {{name: p{i}-{j}, node: n{i}, labels: {{app: a{j}}}}}\n" for i in range(10) for j in range(3))
    svcs = "".join(f"  - {{name: s{j}, selector: {{app: a{j}}}, ports: [{{port: 80, targetPort: 8080}}]}}\n"
                   for j in range(3))
    path = tmp_path / "big.yaml"
    path.write_text(f"name: big\nnodes:\n{nodes}pods:\n{pods}services:\n{svcs}")
    lab = resolve(load_topology(str(path)))
    root = ET.fromstring(graph.render(lab, "svg"))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts.count("VXLAN VNI 1 UDP 8472") == 45
    assert texts.count("80/TCP DNAT to :8080") == 30


def fake_dot(tmp_path: Path) -> Path:
    """A ``dot`` in tmp_path/bin that leaves tmp_path/ran and prints a fake picture; the folder, absolute."""
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "dot"
    fake.write_text(f"#!/bin/sh\ntouch {tmp_path / 'ran'}\necho '<svg>fake</svg>'\n")
    fake.chmod(0o755)
    return tmp_path / "bin"


def test_missing_dot_says_install_graphviz(default_lab, monkeypatch, tmp_path):
    # dot is looked for in netlab's tool folders alone (kernel/netns.TOOL_DIRS): here none has it. A "dot" first on
    # $PATH (absolute, or relative to the working directory) is never run: under sudo, $PATH is the caller's.
    monkeypatch.setattr(netns, "TOOL_DIRS", (str(tmp_path / "empty"),))
    bin_dir = fake_dot(tmp_path)
    monkeypatch.chdir(tmp_path)
    for path in (f"{bin_dir}:{os.environ['PATH']}", "bin"):
        monkeypatch.setenv("PATH", path)
        with pytest.raises(EnvironmentNotReady, match=r"install graphviz.*not \$PATH|not \$PATH.*install graphviz"):
            graph.render(default_lab, "svg")
    assert not (tmp_path / "ran").exists()
    assert graph.render(default_lab, "mermaid")  # text formats need no Graphviz


@pytest.mark.skipif(netns.find_tool("dot") is None, reason="Graphviz dot is not installed in netlab's tool folders")
def test_dot_on_path_is_not_run(default_lab, monkeypatch, tmp_path):
    # The dot netlab runs (as root, under sudo) is the one in its tool folders, whatever $PATH names first.
    monkeypatch.setenv("PATH", f"{fake_dot(tmp_path)}:{os.environ['PATH']}")
    svg = graph.render(default_lab, "svg")
    assert not (tmp_path / "ran").exists()
    assert b"fake" not in svg and ET.fromstring(svg).tag == f"{SVG}svg"


# ---------------------------------------------------------------- the command


def netlab(*args: str, tmp_path: Path, **kw) -> subprocess.CompletedProcess:
    # An empty state directory: no running lab, whatever this machine has up.
    env = {**os.environ, "NETLAB_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "netlab", *args], cwd=REPO, env=env, **kw)


@pytest.fixture
def netlab_here(tmp_path, monkeypatch):
    """The CLI in this process (cli_inprocess.py), with the same empty state directory."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    monkeypatch.chdir(REPO)
    return run_cli


@needs_dot
def test_cli_svg_from_file(tmp_path, netlab_here):
    out = tmp_path / "lab.svg"
    done = netlab("graph", "-t", str(topo_file(tmp_path)), "-o", "svg", "-w", str(out),
                  tmp_path=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    assert "pod web-a" in {t.text for t in root.iter(f"{SVG}text")}
    # And to stdout, as the acceptance line runs it.
    done = netlab_here("graph", "-t", str(topo_file(tmp_path)), "-o", "svg")
    assert done.returncode == 0 and ET.fromstring(done.stdout).tag == f"{SVG}svg"


def test_cli_defaults_to_builtin_lab(netlab_here):
    done = netlab_here("graph")
    assert done.returncode == 0, done.stderr
    assert done.stdout == graph.to_mermaid(graph.build(resolve(load_topology(None))))
    assert "built-in default" in done.stderr


def test_cli_errors(tmp_path, netlab_here):
    both = netlab_here("graph", "--lab", "demo", "-t", str(topo_file(tmp_path)))
    assert both.returncode == 2 and "not both" in both.stderr
    # PNG to a terminal is refused; the message says how to write it instead.
    master, slave = os.openpty()
    try:
        png = netlab("graph", "-o", "png", tmp_path=tmp_path, stdout=slave, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(slave)
        os.close(master)
    assert png.returncode == 2 and "-w FILE.png" in png.stderr


def test_the_load_balancer_is_drawn_and_every_namespace_has_its_box():
    lab = resolve(load_topology(str(REPO / "topologies/services.yaml")))
    g = graph.build(lab)
    inet = next(grp for grp in g.groups if grp.title.startswith("internet"))
    gw = next(b for b in inet.boxes if b.id == "inet_gateway")
    # The gateway routes the LoadBalancer IP to the nodes (web-lb's endpoints run on both: both health checks 200).
    assert gw.label.split("\n")[-1] == "203.0.113.100 (web-lb) → node-1, node-2"
    assert not [b for b in inet.boxes if b.id == "inet_lb"]
    # Where a traced packet's hops are drawn: each namespace of the lab, and each node's devices.
    assert g.place("svc-gateway", "inet0") == "inet_gateway"
    assert g.place("svc-node-1", "flannel.1") == "node_node_1_vtep"
    assert g.place("svc-node-1", lab.pod("client").host_veth) == "node_node_1_cni0"
    assert g.place("svc-node-1", "-") == "node_node_1_eth0" and g.place("svc-underlay", "vethx") == "underlay_br0"
    assert g.place("svc-client", "lo") == "pod_client" and g.place("svc-example", "eth0") == "host_example"
    assert g.place("elsewhere", "eth0") is None


POLICY_LAB = """\
name: gp
nodes: [{name: n1}]
pods:
  - {name: a, node: n1, labels: {app: a}}
  - {name: b, node: n1, labels: {app: b}, containers: [{name: c, ports: [{containerPort: 80}, {containerPort: 81}]}]}
networkPolicies:
  - name: b-80-only
    spec:
      podSelector: {matchLabels: {app: b}}
      ingress: [{ports: [{port: 80}]}]
"""


def test_policy_graph_labels_an_all_ports_arrow_as_such(tmp_path):
    """An arrow whose every served port is allowed says "all served ports", in both formats; it was an empty label,
    like no label at all, then "all ports", though only the ports the destination serves are evaluated (QA q21
    #3). The title says so too."""
    path = tmp_path / "t.yaml"
    path.write_text(POLICY_LAB)
    proc = run_cli("graph", "-t", str(path), "--policy")
    assert proc.returncode == 0, proc.stderr
    arrows = sorted(line.strip() for line in proc.stdout.splitlines() if "==>" in line)
    assert arrows == ['pod_a ==>|"tcp/80"| pod_b', 'pod_b ==>|"all served ports"| pod_a'], arrows
    assert "NetworkPolicies allow on the ports each destination serves (no arrow: denied on every port it serves)" \
        in proc.stdout, proc.stdout
    proc = run_cli("graph", "-t", str(path), "--policy", "-o", "dot")
    arrows = sorted(line.strip() for line in proc.stdout.splitlines() if " -> " in line)
    assert [a.split(" [")[0] + " " + re.search(r'label="([^"]*)"', a).group(1) for a in arrows] == \
        ["pod_a -> pod_b tcp/80", "pod_b -> pod_a all served ports"], arrows
