"""netlab's node and pod against the real components, field by field and line by line (root).

The proof: Debian's CNI reference plugins (``bridge`` + ``host-local`` +
``loopback``) build one pod inside a scratch node namespace, with exactly the
delegate config Flannel's CNI plugin hands ``bridge`` (netlab.plan.flannel)
and a host-local data directory inside the test's tmp dir; netlab builds the
same pod (the default lab's minikube/fedora-1). ``ip -j -d link``, ``ip -j -d
addr`` and ``ip -j -d route`` of both pods, the host veth, ``cni0`` and
``bridge -j -d link`` are compared field by field: only what the real plugin
leaves to chance (MACs and the bridge ids made of them, the veth name's
suffix, ifindexes and netns ids) and time (timers) may differ, and every
other difference is one of KNOWN, named with its reason.

The tutorial's outputs: on netlab's default lab, the commands of the Red Hat
tutorial and of the network model, normalized (MACs, ifindexes, the lab's
name masked), against golden/fidelity/*.txt, and against what the real
components print (the CNI pod above; the tutorial's own lines; Flannel's and
kube-proxy's rule text from their sources). docs/fidelity.md is the table of
these results, written by this test (NETLAB_REGEN_GOLDEN=1) and otherwise
checked against it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from helpers import in_netns, netlab, unique_lab, write_topology
from netlab.kernel.netns import create_netns, make_tag, remove_netns
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import flannel

pytestmark = pytest.mark.root

ROOT = Path(__file__).parent.parent.parent
DEFAULT = (ROOT / "topologies" / "default-2node.yaml").read_text()
GOLDEN = Path(__file__).parent / "golden" / "fidelity"
DOC = ROOT / "docs" / "fidelity.md"
CNI_BIN = "/usr/lib/cni"
REGEN = bool(os.environ.get("NETLAB_REGEN_GOLDEN"))

# Fields the real plugin leaves to chance or to the clock, by their last key.
RANDOM = {"address": "MAC", "perm_address": "MAC", "bridge_id": "made of the bridge's MAC",
          "root_id": "made of the bridge's MAC", "designated_root": "made of the bridge's MAC",
          "designated_bridge": "made of the bridge's MAC", "ifindex": "ifindex", "link_index": "ifindex",
          "link_netnsid": "netns id", "gc_timer": "a timer", "forward_delay_timer": "a timer",
          "hello_timer": "a timer", "tcn_timer": "a timer", "topology_change_timer": "a timer",
          "hold_timer": "a timer", "message_age_timer": "a timer"}
IPV6 = ("netlab turns IPv6 off in every lab namespace (README, 'What is built, and where'): the real "
        "pod has ::1 on lo and an fe80:: link-local address on eth0")
# Every other difference, named: (object, field path pattern) -> why.
KNOWN = {("pod addr", r"^\[\d\]\.addr_info\[1\]\.\w+$"): IPV6}


def _json(*argv: str) -> list:
    out = subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=30).stdout
    return json.loads(out or "[]")


def _flat(obj, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_flat(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = obj
    return out


def kernel_view(node: str, pod: str, veth: str) -> dict[str, list]:
    """What the kernel says about a pod, its host veth and its bridge, as ip/bridge print it."""
    return {"pod link": _json("ip", "-j", "-d", "-n", pod, "link"),
            "pod addr": _json("ip", "-j", "-d", "-n", pod, "addr"),
            "pod route": _json("ip", "-j", "-d", "-n", pod, "route"),
            "host veth": _json("ip", "-j", "-d", "-n", node, "link", "show", veth),
            "cni0": _json("ip", "-j", "-d", "-n", node, "link", "show", "cni0"),
            "bridge link": _json("bridge", "-j", "-d", "-n", node, "link")}


def differences(real: dict[str, list], mine: dict[str, list]) -> list[tuple[str, str, object, object]]:
    """(object, field, real value, netlab's value) for every field that differs."""
    out = []
    for what in real:
        a, b = _flat(real[what]), _flat(mine[what])
        for key in sorted(set(a) | set(b)):
            if a.get(key, "<absent>") != b.get(key, "<absent>"):
                out.append((what, key, a.get(key, "<absent>"), b.get(key, "<absent>")))
    return out


def explain(what: str, key: str, real: object) -> str | None:
    """Why a field may differ (None: it may not)."""
    last = re.sub(r"\[\d+\]$", "", key.rsplit(".", 1)[-1])
    if last in RANDOM:
        return RANDOM[last]
    if last == "ifname" and str(real).startswith("veth") and len(str(real)) == 12:
        return "the veth name's suffix"
    for (obj, pattern), why in KNOWN.items():
        if obj == what and re.match(pattern, key):
            return why
    return None


# --- the world: netlab's default lab and a CNI-made pod ---------------------------------


class World:
    def __init__(self, lab, cni_node: str, cni_pod: str, result: dict):
        self.resolved, self.lab = lab, lab.name
        self.cni_node, self.cni_pod, self.result = cni_node, cni_pod, result
        self.cni_veth = next(i["name"] for i in result["interfaces"] if i["name"].startswith("veth"))

    def ns(self, name: str) -> str:
        return f"{self.lab}-{name}"


def run_plugin(plugin: str, conf: dict, node_ns: str | None, pod_ns: str, ifname: str, cid: str) -> dict:
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": cid, "CNI_NETNS": f"/run/netns/{pod_ns}",
           "CNI_IFNAME": ifname, "CNI_PATH": CNI_BIN, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    argv = [f"{CNI_BIN}/{plugin}"]
    if node_ns:  # bridge makes cni0 and the host veth in the namespace it runs in: the node's
        argv = ["ip", "netns", "exec", node_ns] + argv
    proc = subprocess.run(argv, input=json.dumps(conf), capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, f"{plugin}: {proc.stdout} {proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    tmp = tmp_path_factory.mktemp("fidelity")
    lab = unique_lab("fi")
    path = write_topology(tmp, DEFAULT.replace("name: demo", f"name: {lab}"))
    resolved = resolve(load_topology(path))
    tag = uuid.uuid4().hex[:6]
    cni_node, cni_pod = f"cni{tag}-node", f"cni{tag}-pod"
    made: list[str] = []
    try:
        netlab("up", "-t", path)
        for ns in (cni_node, cni_pod):
            create_netns(ns, make_tag("fidelity-test", ns))  # kernel defaults otherwise, as a real node's
            made.append(ns)
        conf = flannel.delegate_config(resolved, resolved.node("minikube"))
        conf["ipam"]["dataDir"] = str(tmp / "host-local")  # private, not /var/lib/cni/networks
        result = run_plugin("bridge", conf, cni_node, cni_pod, "eth0", "fidelity")
        run_plugin("loopback", {"cniVersion": flannel.CNI_VERSION, "name": "lo", "type": "loopback"}, None,
                   cni_pod, "lo", "fidelity")
        yield World(resolved, cni_node, cni_pod, result)
    finally:
        for ns in made:
            remove_netns(ns)  # the pod's veth and the node's cni0 go with them
        netlab("down", "--lab", lab, check=False)


def test_cni_plugin_gives_the_pod_netlab_plans(world):
    """host-local hands out .2 first; the plugin's result names the routes of the delegate config."""
    assert world.result["ips"][0]["address"] == "10.244.0.2/24"
    assert [r.get("dst") for r in world.result["routes"]] == ["10.244.0.0/16", "0.0.0.0/0"]


def test_netlab_pod_differs_from_the_cni_pod_only_in_random_fields(world):
    veth = world.resolved.pod("fedora-1").host_veth
    # fedora-3 shares minikube's cni0 in netlab: compare the bridge ports of fedora-1 only.
    real = kernel_view(world.cni_node, world.cni_pod, world.cni_veth)
    mine = kernel_view(world.ns("minikube"), world.ns("fedora-1"), veth)
    mine["bridge link"] = [p for p in mine["bridge link"] if p["ifname"] == veth]
    unexplained = [(what, key, a, b) for what, key, a, b in differences(real, mine) if not explain(what, key, a)]
    assert not unexplained, "\n".join(f"{what}: {key}: real {a!r}, netlab {b!r}" for what, key, a, b in unexplained)
    # Each named difference is still there (else KNOWN is stale and says too much).
    named = {(what, pattern) for what, key, a, _ in differences(real, mine)
             for (obj, pattern), why in KNOWN.items() if obj == what and re.match(pattern, key)}
    assert named == set(KNOWN)
