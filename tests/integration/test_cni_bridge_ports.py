"""A bridge plugin whose bridge nothing names, and a hand's veth on the plugins' bridge (QA q38 #1, #2, #3; root,
Debian's bridge and host-local behind a tiny wrapper the test writes into its tmp_path).

The wrapper ``nbw`` runs the plugin under its ``delegate`` key (Flannel's own conflist shape), with the runtime's
``runtimeConfig``, and answers with a 1.0.0 result that names the pod's eth0 only, as many small plugins do: no
host veth, no bridge. #3: status called the bridge (and its gateway address) extra and `up` deleted it, cutting
every pod off. #1: trace could not leave a pod ("eth0 in POD leads nowhere the lab knows") while ping worked. #2:
a veth added by hand as a port of the plugins' bridge, its peer in a namespace that is no pod's, with a route
hijacking a pod's address, was the plugins' (a port of their bridge): "all as planned", `up` "nothing to change",
trace never named the route. Checked with ``ip -j``, real traffic, status, trace and up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import in_netns, ip, ip_json, ipv4_of, netlab

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"
PORT = 8080
BRIDGE = "nbr0"

NBW = """#!/usr/bin/python3
import json, os, subprocess, sys
conf = json.load(sys.stdin)
cmd = os.environ["CNI_COMMAND"]
if cmd == "VERSION":
    print(json.dumps({{"cniVersion": conf["cniVersion"], "supportedVersions": ["0.4.0", "1.0.0"]}}))
    sys.exit(0)
sub = dict(conf["delegate"], cniVersion=conf["cniVersion"], name=conf["name"])
if "runtimeConfig" in conf:
    sub["runtimeConfig"] = conf["runtimeConfig"]
env = dict(os.environ, CNI_PATH=os.environ.get("CNI_PATH", "") + ":" + {bin!r})
proc = subprocess.run([{bin!r} + "/" + sub["type"]], input=json.dumps(sub).encode(), env=env, capture_output=True)
out = proc.stdout
if cmd == "ADD" and proc.returncode == 0:
    res = json.loads(out)
    ifs = res.get("interfaces", [])
    keep = [i for i, x in enumerate(ifs) if x.get("sandbox")]
    res["interfaces"] = [ifs[i] for i in keep]
    for a in res.get("ips", []):
        if "interface" in a:
            a["interface"] = keep.index(a["interface"])
    out = json.dumps(res).encode()
sys.stdout.buffer.write(out)
sys.stderr.buffer.write(proc.stderr)
sys.exit(proc.returncode)
"""


def _lab(labs, tmp_path: Path, prefix: str, **top) -> tuple[str, str]:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nbw").write_text(NBW.format(bin=CNI_BIN))
    (tmp_path / "bin" / "nbw").chmod(0o755)
    delegate = {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "isDefaultGateway": True,
                # host-local's leases in the test's own folder (a dataDir the conflist sets is kept; without one,
                # netlab gives this delegate's ipam the lab's: test_cni_delegate_leases.py)
                "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam")}}
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "nbw", "disableCheck": True,
                                                       "plugins": [{"type": "nbw", "delegate": delegate, **top,
                                                                    "capabilities": {"ipRanges": True}}]}))
    lab = labs.name(prefix)
    path, _ = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                      "nodes: [{name: n1}, {name: n2}]\n"
                      "pods:\n  - {name: a, node: n1}\n  - {name: b, node: n1}\n  - {name: c, node: n2}\n")
    return lab, path


def _ports(node: str) -> list[str]:
    return sorted(ln["ifname"] for ln in ip_json("link", "show", "master", BRIDGE, netns=node))


@pytest.fixture(autouse=True)
def plugins_installed():
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"


def test_a_bridge_nothing_names_stays_and_trace_leaves_a_pod_by_its_unnamed_veth(labs, tmp_path: Path):
    lab, path = _lab(labs, tmp_path, "cn")
    n1, a, c = f"{lab}-n1", f"{lab}-a", f"{lab}-c"
    ports = _ports(n1)
    assert len(ports) == 2, ports  # a's and b's host veths, ports of nbr0
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0 and "extra" not in status.stdout, status.stdout  # "extra: link nbr0 in ..."
    for _ in range(2):
        again = netlab("up", "-t", path)
        assert "del link" not in again.stdout, again.stdout  # "del link nbr0" on both nodes: every pod cut off
        assert _ports(n1) == ports
    c_ip, b_ip = ipv4_of(c, "eth0"), ipv4_of(f"{lab}-b", "eth0")
    assert in_netns(a, "ping", "-c1", "-W2", c_ip).returncode == 0
    assert in_netns(a, "ping", "-c1", "-W2", b_ip).returncode == 0
    for src, dst in (("a", "c"), ("c", "a"), ("a", "b")):  # "eth0 in ...-a leads nowhere the lab knows"
        trace = netlab("trace", "--lab", lab, src, dst, "--proto", "tcp", "--port", str(PORT), check=False,
                       timeout=60)
        assert trace.returncode == 0 and "reply received" in trace.stdout, trace.stdout
        assert "leads nowhere" not in trace.stdout and "!!" not in trace.stdout, trace.stdout
    assert netlab("status", "--lab", lab).returncode == 0


def test_a_hand_veth_on_the_plugins_bridge_with_a_hijacking_route_is_extra(labs, tmp_path: Path):
    # the wrapper's own `bridge` key names nbr0 (as before: its ports were all theirs), so this holds without #3
    lab, path = _lab(labs, tmp_path, "cn", bridge=BRIDGE)
    n1, a, c = f"{lab}-n1", f"{lab}-a", f"{lab}-c"
    ports, c_ip = _ports(n1), ipv4_of(c, "eth0")
    assert in_netns(a, "ping", "-c1", "-W2", c_ip).returncode == 0
    rogue = f"{lab}x"
    ip("netns", "add", rogue)
    try:
        ip("link", "add", "hx0", "type", "veth", "peer", "name", "hx1", "netns", rogue, netns=n1)
        ip("link", "set", "hx0", "master", BRIDGE, "up", netns=n1)
        ip("link", "set", "hx1", "up", netns=rogue)
        ip("route", "add", f"{c_ip}/32", "dev", "hx0", netns=n1)  # hijacks c's address
        assert _ports(n1) == sorted([*ports, "hx0"])
        assert in_netns(a, "ping", "-c1", "-W1", c_ip).returncode == 1
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 1, status.stdout  # "all as planned", exit 0
        assert "extra: link hx0" in status.stdout and f"extra: route {c_ip}/32 dev hx0" in status.stdout, \
            status.stdout
        assert not [p for p in ports if p in status.stdout], status.stdout  # the plugin's own ports are not
        trace = netlab("trace", "--lab", lab, "a", "c", check=False, timeout=60)  # "LOST ... no ARP answer"
        assert "a route the plan does not have (status calls it extra)" in trace.stdout, trace.stdout
        assert f"ip -n {n1} route del {c_ip}/32 dev hx0" in trace.stdout, trace.stdout
        again = netlab("up", "-t", path)
        assert "del link hx0" in again.stdout, again.stdout  # "nothing to change"
        assert _ports(n1) == ports
        assert in_netns(a, "ping", "-c1", "-W2", c_ip).returncode == 0
        assert netlab("status", "--lab", lab).returncode == 0
    finally:
        ip("netns", "delete", rogue)
