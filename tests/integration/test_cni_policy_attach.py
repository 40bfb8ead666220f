"""A NetworkPolicy on a lab whose pods the CNI plugins attach (root; QA q57 #1, a regression of 5a25be03).

After the plugins' ADDs, ``up`` reads the nodes that hold a policy hook once more, to put the hook above the
plugins' jumps. In a ``cni: reference`` lab it read them against the plan made before those ADDs, which knew no
veth of the pods just attached: the bridge plugin's veths looked like extra links and were deleted, the pods left
without eth0, and up exited 0. The plan now follows the attachments of the run before anything reads the lab
again. Checked on a fresh up, on a pod added to the running lab and on a pod whose namespace was deleted by hand
(a new sandbox), with ``ip -j``, ``status`` and real TCP connects (the policy enforced); and the same on a
conflist lab (Debian's bridge, host-local with its leases in the test's folder).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from helpers import in_netns, ip_json, netlab

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"


def connects(src: str, ip: str, port: int = 8080) -> bool:
    code = ("import socket,sys; s=socket.socket(); s.settimeout(3); "
            f"sys.exit(s.connect_ex(({ip!r}, {port})))")
    return in_netns(src, "python3", "-c", code).returncode == 0


def topology(lab: str, cni: str, pods: list[tuple[str, str]]) -> str:
    listed = "".join(f"  - {{name: {name}, node: n1, labels: {{{labels}}}}}\n" for name, labels in pods)
    return f"""name: {lab}
network: {{mode: vxlan, cni: {cni}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods:
{listed}networkPolicies:
  - name: web-from-cli
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress: [{{from: [{{podSelector: {{matchLabels: {{role: cli}}}}}}]}}]
"""


def attached(lab: str, pod: str) -> str:
    """The pod's eth0 address, with its default route, and its veth's other end a port of the node's cni0, as
    `ip -j` shows them: the pod is whole."""
    (link,) = ip_json("addr", "show", "dev", "eth0", netns=f"{lab}-{pod}")
    (addr,) = [a["local"] for a in link["addr_info"] if a["family"] == "inet"]
    routes = ip_json("route", "show", "default", netns=f"{lab}-{pod}")
    assert [r["dev"] for r in routes] == ["eth0"], routes
    ports = [p["ifname"] for p in ip_json("link", "show", "master", "cni0", netns=f"{lab}-n1")]
    assert any(p.startswith("veth") for p in ports), ports
    return addr


def whole(lab: str, pods: list[str]) -> dict[str, str]:
    ips = {pod: attached(lab, pod) for pod in pods}
    ports = ip_json("link", "show", "master", "cni0", netns=f"{lab}-n1")
    assert len(ports) == len(pods), ports  # one port a pod, none deleted, none left over
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0 and status.stdout.endswith("all as planned\n"), status.stdout
    return ips


@pytest.mark.parametrize("cni", ["reference", "conflist"])
def test_pods_attached_through_cni_keep_their_veths_with_a_policy(labs, tmp_path, cni):
    if cni == "conflist":
        assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
        (tmp_path / "br.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "pol-br", "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
             "mtu": 1450, "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases"),
                                   "ranges": [[{"subnet": "10.244.0.0/24"}]]}}]}))
        cni = "{conflist: br.conflist}"
    lab = labs.name("cp")
    pods = [("web", "app: web"), ("cli", "role: cli"), ("other", "")]
    path, proc = labs.up(topology(lab, cni, pods))
    ips = whole(lab, ["web", "cli", "other"])
    assert connects(f"{lab}-cli", ips["web"]) and not connects(f"{lab}-other", ips["web"]), proc.stdout

    # A pod added to the running lab: attached through its plugins, the others' veths kept.
    path, proc = labs.up(topology(lab, cni, pods + [("c", "role: cli")]))
    assert "deleted" not in proc.stdout, proc.stdout
    ips = whole(lab, ["web", "cli", "other", "c"])
    assert connects(f"{lab}-c", ips["web"]) and connects(f"{lab}-cli", ips["web"])
    assert not connects(f"{lab}-other", ips["web"])

    # A pod whose namespace was deleted by hand: a new sandbox, ADDed again, its new veth kept.
    subprocess.run(["ip", "netns", "del", f"{lab}-other"], check=True)
    proc = netlab("up", "-t", path)
    ips = whole(lab, ["web", "cli", "other", "c"])
    assert connects(f"{lab}-cli", ips["web"]) and not connects(f"{lab}-other", ips["web"]), proc.stdout
    assert connects(f"{lab}-other", ips["c"])  # c is selected by no policy


@pytest.mark.parametrize("cni", ["reference", "conflist"])
def test_a_loss_on_a_cni_pods_eth0_is_dropped_on_its_veth_from_the_first_up(labs, tmp_path, cni):
    """The loss of a pod's eth0 is dropped on the ingress of its veth's node end; in a lab whose CNI plugins attach
    the pods that end is the bridge plugin's, named by its ADD: the plan made before the ADD hooked a veth no
    kernel had (status: "different: nftables table netdev netlab-impair ... missing chain ... extra chain ...") and
    no frame was lost until a second up. Then the plan made after the ADD wrote the table again, which a fresh up
    said as a repair ("restore nftables table netdev netlab-impair in L-n1"): the loss is planned only once the
    ADD has named the veth, and made then, as the plan follows the ADD, not repaired."""
    if cni == "conflist":
        (tmp_path / "br.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "loss-br", "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True,
             "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases"),
                      "ranges": [[{"subnet": "10.244.0.0/24"}]]}}]}))
        cni = "{conflist: br.conflist}"
    lab = labs.name("ct")
    _, proc = labs.up(f"""name: {lab}
network: {{mode: vxlan, cni: {cni}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods: [{{name: a, node: n1, impair: {{eth0: {{loss: 100%}}}}}}, {{name: b, node: n1}}]
""", "topo.yaml", "-o", "json")
    fixed = json.loads(proc.stdout)["fixed"]
    assert not [line for line in fixed if "netlab-impair" in line or line.startswith("restore")], fixed
    ips = whole(lab, ["a", "b"])
    (peer,) = ip_json("link", "show", "eth0", netns=f"{lab}-a")
    ports = {p["ifindex"]: p["ifname"] for p in ip_json("link", "show", "master", "cni0", netns=f"{lab}-n1")}
    listed = subprocess.run(["ip", "netns", "exec", f"{lab}-n1", "nft", "list", "table", "netdev",
                             "netlab-impair"], check=True, capture_output=True, text=True).stdout
    hooks = re.findall(r'chain (\S+) \{\s*type filter hook ingress device "([^"]+)"', listed)
    assert hooks == [("loss-a-eth0", ports[peer["link_index"]])], listed
    assert not connects(f"{lab}-a", ips["b"])
    assert connects(f"{lab}-n1", ips["b"])  # the lab works but for the lossy wire
